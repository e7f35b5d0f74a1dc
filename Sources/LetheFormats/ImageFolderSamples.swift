import Dispatch
import Foundation
import LetheCore
import LetheIR
import LetheImages

/// How images become model inputs beyond `ImagePreprocessing`: torchvision's `Resize(n)` and
/// `CenterCrop(n)`, and what to do with files that cannot be read.
public struct ImageOptions: Sendable {
    /// Shorter side resized to this (bilinear, antialiased), or nil to keep the size.
    public var resize: Int?
    /// Centre crop to this square, or nil.
    public var crop: Int?
    /// Skip unreadable files (counted) instead of stopping at the first.
    public var skipBad: Bool

    public init(resize: Int? = nil, crop: Int? = nil, skipBad: Bool = false) {
        self.resize = resize
        self.crop = crop
        self.skipBad = skipBad
    }
}

/// What the model's first input asks of an image: the channel count (1 or 3), whether the tensor
/// has a channel axis (N×C×H×W, or N×H×W for gray), and the height and width when they are fixed.
public struct ImageLayout: Sendable, Equatable {
    public var channels: Int
    public var channelAxis: Bool
    public var height: Int?
    public var width: Int?

    public init(channels: Int, channelAxis: Bool = true, height: Int? = nil, width: Int? = nil) {
        self.channels = channels
        self.channelAxis = channelAxis
        self.height = height
        self.width = width
    }

    /// Read from the input's declared shape; RGB with a channel axis when the shape says nothing.
    public static func of(_ input: ValueInfo?) throws -> ImageLayout {
        func fixed(_ dimension: LetheIR.Dimension) -> Int? { if case .fixed(let n) = dimension { n } else { nil } }
        guard let shape = input?.shape else { return ImageLayout(channels: 3) }
        switch shape.count {
        case 4:
            let channels = fixed(shape[1]) ?? 3
            guard channels == 1 || channels == 3 else {
                throw UsageError("the model's input has \(channels) channels; images give 1 (gray) or 3 (RGB)")
            }
            return ImageLayout(channels: channels, height: fixed(shape[2]), width: fixed(shape[3]))
        case 3:
            return ImageLayout(channels: 1, channelAxis: false, height: fixed(shape[1]), width: fixed(shape[2]))
        default:
            throw UsageError("the model's input has rank \(shape.count); images feed N×C×H×W or N×H×W inputs")
        }
    }
}

/// An image folder read on demand. As a `SampleSource` it is read range by range: each range's
/// files are decoded in parallel, given the model's channels, resized, cropped and normalised, and
/// nothing is kept between ranges, so memory holds one range whatever the folder's size. As a
/// `SampleDecoder` it serves a `LazySampleStore`, which decodes each file once, when first needed.
public final class ImageFolderSamples: SampleSource, @unchecked Sendable {
    public let folder: ImageFolder
    public let layout: ImageLayout
    public let preprocessing: ImagePreprocessing
    public let options: ImageOptions

    private let lock = NSLock()
    /// The size every image must have after preprocessing: the model's, else the crop, else the
    /// first image's.
    private var referenceSize: (height: Int, width: Int)?
    private var skippedFiles: [(path: String, reason: String)] = []
    /// The size fixed before any file is read (the model's, else the crop), if any.
    private let fixedSize: (height: Int, width: Int)?

    public init(
        folder: ImageFolder, layout: ImageLayout, preprocessing: ImagePreprocessing, options: ImageOptions
    ) throws {
        for (name, values) in [(Setting.mean, preprocessing.mean), (Setting.std, preprocessing.std)]
        where values.count != 1 && values.count != layout.channels {
            throw UsageError("\(name) has \(values.count) values for \(layout.channels) channels")
        }
        if preprocessing.std.contains(0) { throw UsageError("\(Setting.std) must not be 0") }
        self.folder = folder
        self.layout = layout
        self.preprocessing = preprocessing
        self.options = options
        if let height = layout.height, let width = layout.width {
            fixedSize = (height, width)
        } else if let crop = options.crop {
            fixedSize = (crop, crop)
        } else {
            fixedSize = nil
        }
        referenceSize = fixedSize
    }

    public var count: Int { folder.entries.count }

    /// Files skipped so far (with `skipBad`), with the reason.
    public var skipped: [(path: String, reason: String)] {
        lock.lock(); defer { lock.unlock() }
        return skippedFiles
    }

    public func load(_ range: Range<Int>) throws -> SampleSet {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        var kept: [(image: PixelImage, label: Int)] = []
        for (offset, result) in prepared(Array(range)).enumerated() {
            let entry = folder.entries[range.lowerBound + offset]
            do {
                kept.append((try result.get(), entry.label))
            } catch {
                guard options.skipBad else { throw error }
                let reason = (error as? FileError).map { "\($0.underlying)" } ?? "\(error)"
                lock.lock(); skippedFiles.append((entry.path, reason)); lock.unlock()
            }
        }
        return tensor(kept)
    }

    /// The files of `indices` decoded in parallel and checked for size in index order; every error
    /// names its file.
    private func prepared(_ indices: [Int]) -> [Result<PixelImage, any Error>] {
        var results = [Result<PixelImage, any Error>?](repeating: nil, count: indices.count)
        results.withUnsafeMutableBufferPointer { slots in
            let slots = UncheckedSendable(slots)
            DispatchQueue.concurrentPerform(iterations: indices.count) { offset in
                let path = folder.entries[indices[offset]].path
                slots.value[offset] = Result { try FileError.wrapping(path) { try prepare(path) } }
            }
        }
        return zip(indices, results).map { index, result in
            let path = folder.entries[index].path
            return result!.flatMap { image in
                Result {
                    try FileError.wrapping(path) {
                        try checkSize(image); return image
                    }
                }
            }
        }
    }

    /// Decodes one file and applies channels, resize and crop, as torchvision's ImageFolder
    /// pipeline does (`convert`, then `Resize`, then `CenterCrop`).
    private func prepare(_ path: String) throws -> PixelImage {
        var image = ChannelConversion.convert(try ImageDecoder.decode(path: path), to: layout.channels)
        if let n = options.resize {
            let size = Resize.shorterSide(to: n, width: image.width, height: image.height)
            guard size.width * size.height <= PixelImage.maxPixels else {
                throw UsageError(
                    "\(Setting.resize) \(n) would make the \(image.width)x\(image.height) image \(size.width)x\(size.height), over the limit of \(PixelImage.maxPixels) pixels"
                )
            }
            image = Resize.resize(image, width: size.width, height: size.height)
        }
        if let n = options.crop { image = CenterCrop.crop(image, size: n) }
        return image
    }

    private func checkSize(_ image: PixelImage) throws {
        lock.lock(); defer { lock.unlock() }
        guard let reference = referenceSize else {
            referenceSize = (image.height, image.width)
            return
        }
        guard reference.height == image.height && reference.width == image.width else {
            if layout.height != nil {
                throw UsageError(
                    "the image is \(image.width)x\(image.height) after preprocessing but the model takes \(reference.width)x\(reference.height); give \(Setting.resize) and \(Setting.crop)"
                )
            }
            throw ImageError.sizeMismatch(
                width: image.width, height: image.height,
                expectedWidth: reference.width, expectedHeight: reference.height)
        }
    }

    /// Channel-first float32 inputs, `(x · scale − mean[c]) / std[c]` as for `.npz` images.
    private func tensor(_ images: [(image: PixelImage, label: Int)]) -> SampleSet {
        let height = images.first?.image.height ?? referenceSize?.height ?? 0
        let width = images.first?.image.width ?? referenceSize?.width ?? 0
        let sampleShape = layout.channelAxis ? [layout.channels, height, width] : [height, width]
        var inputs = Tensor(zeros: .float32, shape: [images.count] + sampleShape)
        let rowElements = layout.channels * height * width
        inputs.withUnsafeMutableBufferPointer(of: Float.self) { out in
            for (n, item) in images.enumerated() {
                write(
                    item.image,
                    to: UnsafeMutableBufferPointer(rebasing: out[(n * rowElements)..<((n + 1) * rowElements)]))
            }
        }
        return SampleSet(inputs: inputs, labels: images.map(\.label))
    }

    /// One image normalised into `row`, channel-first.
    private func write(_ image: PixelImage, to row: UnsafeMutableBufferPointer<Float>) {
        let channels = layout.channels, plane = image.height * image.width
        precondition(row.count == plane * channels && image.channels == channels)
        for c in 0..<channels {
            let mean = preprocessing.mean.count == 1 ? preprocessing.mean[0] : preprocessing.mean[c]
            let std = preprocessing.std.count == 1 ? preprocessing.std[0] : preprocessing.std[c]
            image.samples.withUnsafeBufferPointer { samples in
                for p in 0..<plane {
                    row[c * plane + p] = (samples[p * channels + c] * preprocessing.scale - mean) / std
                }
            }
        }
    }
}

extension ImageFolderSamples: SampleDecoder {
    public var labels: [Int] { folder.entries.map(\.label) }

    /// Known before any file is read only when every image must come out one size: the model's
    /// fixed input size, or the crop (empty otherwise; see `lazyStore`).
    public var sampleShape: [Int] {
        guard let size = fixedSize else { return [] }
        return layout.channelAxis ? [layout.channels, size.height, size.width] : [size.height, size.width]
    }

    /// A store that decodes each file when a pass first needs it and keeps it, or nil when the
    /// sample shape is not known before decoding (no fixed model size and no --crop) or unreadable
    /// files are to be skipped (skipping would renumber the samples).
    public func lazyStore() -> LazySampleStore? {
        guard fixedSize != nil, !options.skipBad else { return nil }
        return LazySampleStore(self)
    }

    public func decode(_ indices: [Int], into rows: UnsafeMutableBufferPointer<Float>) -> [Int: any Error] {
        let rowElements = sampleShape.reduce(1, *)
        var errors: [Int: any Error] = [:]
        for (position, result) in prepared(indices).enumerated() {
            switch result {
            case .success(let image):
                write(
                    image,
                    to: UnsafeMutableBufferPointer(
                        rebasing: rows[(position * rowElements)..<((position + 1) * rowElements)]))
            case .failure(let error):
                errors[position] = error
            }
        }
        return errors
    }
}
