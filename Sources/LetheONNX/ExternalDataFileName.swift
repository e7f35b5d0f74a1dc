/// The name of the external data file a rewrite writes beside the model.
extension ProtoRebuild {
    /// `<model file>.data`, or a variant when that name is a data file the original still needs
    /// (any but an in-place rewrite of the original model itself).
    static func dataFileName(for path: String, original: ONNXSource?, overwritesOriginal: Bool) -> String {
        let base = ONNXFormat.fileName(of: path)
        let folder = ONNXFormat.folder(of: path)
        let inUse = overwritesOriginal ? [] : Set(original?.externalFiles.keys.map { $0 } ?? [])
        var candidate = base + ".data"
        var counter = 1
        while let resolved = ONNXFormat.existingRealPath(folder + "/" + candidate), inUse.contains(resolved) {
            candidate = "\(base).\(counter).data"
            counter += 1
        }
        return candidate
    }
}
