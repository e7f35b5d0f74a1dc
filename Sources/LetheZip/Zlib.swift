import CCRC32
import CZlib
import Foundation
import LetheCore

/// CRC-32 as zip uses it.
public enum CRC32 {
    /// `crc` extended over `bytes` (start from 0): whole 256-byte blocks folded by `lethe_crc32_fold`
    /// where the CPU has the instructions, zlib for the rest.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else { return crc }
        var crc = crc
        var folded: (UInt64, UInt64) = (0, 0)
        let done = withUnsafeMutableBytes(of: &folded) {
            lethe_crc32_fold(UInt32(crc), base, bytes.count, $0.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        if done > 0 {
            crc = withUnsafeBytes(of: folded) {
                UInt32(crc32_z(0xFFFF_FFFF, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), 16))
            }
        }
        return UInt32(crc32_z(UInt(crc), base + done, bytes.count - done))
    }

    /// CRC-32 of `bytes`.
    public static func of(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { update(0, $0) }
    }

    /// CRC-32 of `bytes` in pieces of at least `minimumPart` bytes summed side by side, one thread
    /// each (at most as many as the machine has cores), and combined; each piece streamed through
    /// `TensorStreamer.forEachChunk` with `release`. A 40 MB input's check, run alone before anything
    /// else can start, took 4 ms of a 78 ms run on one thread.
    public static func of(_ bytes: UnsafeRawBufferPointer, release: Bool, minimumPart: Int = 8 << 20) -> UInt32 {
        let parts = max(1, min(ProcessInfo.processInfo.activeProcessorCount, bytes.count / max(minimumPart, 1)))
        // Piece boundaries on 256 bytes, so that every piece but the last is whole folded blocks.
        let step = (bytes.count / parts + 255) / 256 * 256
        let ranges = (0..<parts).map { min(bytes.count, $0 * step)..<min(bytes.count, ($0 + 1) * step) }
            .enumerated().map { $0.offset == parts - 1 ? $0.element.lowerBound..<bytes.count : $0.element }
        let sums = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: parts)
        defer { sums.deallocate() }
        // Each part writes its own sum.
        let shared = UncheckedSendable((bytes, sums))
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let (bytes, sums) = shared.value
            var crc: UInt32 = 0
            TensorStreamer.forEachChunk(UnsafeRawBufferPointer(rebasing: bytes[ranges[part]]), release: release) {
                crc = update(crc, $0)
            }
            sums[part] = crc
        }
        var crc = sums[0]
        for part in 1..<parts { crc = UInt32(crc32_combine(UInt(crc), UInt(sums[part]), ranges[part].count)) }
        return crc
    }
}

/// Raw (headerless) inflate of one zip member, pulled in pieces so that the output can go
/// straight into a tensor and never past the size the archive declares.
public final class RawInflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let input: UnsafeRawBufferPointer
    private var consumed = 0
    private let name: String
    private let declared: Int
    private(set) var finished = false
    /// CRC-32 of the bytes produced so far.
    public private(set) var crc: UInt32 = 0
    private(set) var produced = 0

    /// An inflater over the raw deflate stream `input` of member `name`, which declares `declared`
    /// bytes uncompressed (the bound no read goes past).
    public init(input: UnsafeRawBufferPointer, name: String, declared: Int) throws {
        self.input = input
        self.name = name
        self.declared = declared
        stream.initialize(to: z_stream())
        let status = inflateInit2_(stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            throw ZipError.inflateFailed(name: name, reason: "inflateInit2 returned \(status)")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    /// Fills `output` completely; throws if the stream ends (or the input runs out) first.
    public func read(into output: UnsafeMutableRawBufferPointer) throws {
        var filled = 0
        while filled < output.count {
            guard !finished else {
                throw ZipError.sizeMismatch(name: name, declared: declared, actual: produced)
            }
            filled += try step(output.baseAddress! + filled, capacity: output.count - filled)
        }
    }

    /// Checks that the stream ends exactly here: not one byte more than declared.
    public func finish() throws {
        var spare: UInt8 = 0
        while !finished {
            let got = try withUnsafeMutablePointer(to: &spare) { try step(UnsafeMutableRawPointer($0), capacity: 1) }
            if got > 0 { throw ZipError.sizeMismatch(name: name, declared: declared, actual: declared + got) }
        }
    }

    private func step(_ out: UnsafeMutableRawPointer, capacity: Int) throws -> Int {
        if stream.pointee.avail_in == 0 && consumed < input.count {
            let piece = min(input.count - consumed, 1 << 30)
            stream.pointee.next_in = UnsafeMutablePointer(
                mutating: input.baseAddress!.advanced(by: consumed)
                    .assumingMemoryBound(to: UInt8.self))
            stream.pointee.avail_in = UInt32(piece)
            consumed += piece
        }
        let room = min(capacity, 1 << 30)
        stream.pointee.next_out = out.assumingMemoryBound(to: UInt8.self)
        stream.pointee.avail_out = UInt32(room)
        let status = inflate(stream, Z_NO_FLUSH)
        let got = room - Int(stream.pointee.avail_out)
        crc = CRC32.update(crc, UnsafeRawBufferPointer(start: out, count: got))
        produced += got
        switch status {
        case Z_STREAM_END:
            finished = true
        case Z_OK:
            break
        case Z_BUF_ERROR:
            if got == 0 && stream.pointee.avail_in == 0 && consumed >= input.count {
                throw ZipError.inflateFailed(name: name, reason: "compressed data ends before the stream does")
            }
        default:
            let message = stream.pointee.msg.map { String(cString: $0) } ?? "status \(status)"
            throw ZipError.inflateFailed(name: name, reason: message)
        }
        return got
    }
}

/// Raw deflate with zlib's defaults (level 6, 15-bit window, memLevel 8), as Python's zipfile
/// uses them, so a compressed member matches `np.savez_compressed` byte for byte.
final class RawDeflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var buffer = [UInt8](repeating: 0, count: 1 << 18)

    init() throws {
        stream.initialize(to: z_stream())
        let status = deflateInit2_(
            stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY,
            zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            throw ZipError.cannotWrite("deflateInit2 returned \(status)")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    /// Compresses `input` (and with `finish`, ends the stream), handing output to `sink`.
    func compress(
        _ input: UnsafeRawBufferPointer, finish: Bool,
        sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var offset = 0
        repeat {
            let piece = min(input.count - offset, 1 << 30)
            stream.pointee.next_in =
                piece > 0
                ? UnsafeMutablePointer(
                    mutating: input.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self))
                : nil
            stream.pointee.avail_in = UInt32(piece)
            offset += piece
            let flush = finish && offset == input.count ? Z_FINISH : Z_NO_FLUSH
            var status: Int32 = Z_OK
            repeat {
                try buffer.withUnsafeMutableBytes { out in
                    stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    stream.pointee.avail_out = UInt32(out.count)
                    status = deflate(stream, flush)
                    guard status != Z_STREAM_ERROR else { throw ZipError.cannotWrite("deflate failed") }
                    let got = out.count - Int(stream.pointee.avail_out)
                    if got > 0 { try sink(UnsafeRawBufferPointer(rebasing: out[0..<got])) }
                }
            } while stream.pointee.avail_out == 0 || (flush == Z_FINISH && status != Z_STREAM_END)
        } while offset < input.count
    }
}
