import LetheCore

/// Einsum for one or two operands without repeated labels inside an operand: labels summed out of
/// one side are reduced first, then the product runs as a batched MatMul
/// (`batch × m × k` by `batch × k × n`) and is permuted into the output order.
struct EinsumKernel: Kernel {
    let inputLabels: [[Character]]
    let outputLabels: [Character]?

    init(_ request: KernelRequest) throws {
        let equation = try request.string("equation", "").filter { !$0.isWhitespace }
        var sides = [String(equation)]
        if let arrow = equation.firstRange(of: "->") {
            sides = [String(equation[..<arrow.lowerBound]), String(equation[arrow.upperBound...])]
        }

        // "." marks the three-dot ellipsis; keep one symbol for it.
        func labels(_ text: String) -> [Character] {
            var result: [Character] = []
            var dots = 0
            for c in text {
                if c == "." { dots += 1; if dots == 3 { result.append("."); dots = 0 } } else { result.append(c) }
            }
            return result
        }
        inputLabels = sides[0].split(separator: ",", omittingEmptySubsequences: false).map { labels(String($0)) }
        outputLabels = sides.count == 2 ? labels(sides[1]) : nil
        guard inputLabels.count == 1 || inputLabels.count == 2 else {
            throw Unsupported("Einsum with \(inputLabels.count) operands")
        }
        for operand in inputLabels {
            let letters = operand.filter { $0 != "." }
            guard Set(letters).count == letters.count else {
                throw Unsupported("Einsum diagonal (repeated label) in '\(equation)'")
            }
        }
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let operands = try (0..<inputLabels.count).map { try requireFloat(inputs.required($0)) }
        // Expand the ellipsis into labels of its own, aligned from the right.
        var ellipsisRank = 0
        for (k, labels) in inputLabels.enumerated() where labels.contains(".") {
            ellipsisRank = max(ellipsisRank, operands[k].rank - (labels.count - 1))
        }
        let ellipsisLabels = (0..<ellipsisRank).map { Character(UnicodeScalar(0x100 + $0)!) }
        func expand(_ labels: [Character], rank: Int) throws -> [Character] {
            guard let dot = labels.firstIndex(of: ".") else {
                guard labels.count == rank else {
                    throw RuntimeError("Einsum operand of rank \(rank) has labels \(String(labels))")
                }
                return labels
            }
            let count = rank - (labels.count - 1)
            guard count >= 0 else { throw RuntimeError("Einsum operand rank \(rank) too small") }
            return Array(labels[..<dot]) + ellipsisLabels.suffix(count) + Array(labels[(dot + 1)...])
        }
        let labels = try zip(inputLabels, operands).map { try expand($0, rank: $1.rank) }
        var output: [Character]
        if let outputLabels {
            output =
                outputLabels.contains(".")
                ? try expand(outputLabels, rank: outputLabels.count - 1 + ellipsisRank) : outputLabels
        } else {
            var counts: [Character: Int] = [:]
            for l in labels.joined() { counts[l, default: 0] += 1 }
            output =
                ellipsisLabels + counts.filter { $0.value == 1 && !ellipsisLabels.contains($0.key) }.map(\.key).sorted()
        }
        var size: [Character: Int] = [:]
        for (operand, labels) in zip(operands, labels) {
            for (axis, label) in labels.enumerated() {
                let d = operand.shape[axis]
                if let known = size[label], known != d {
                    if known == 1 {
                        size[label] = d
                    } else if d != 1 {
                        throw RuntimeError("Einsum label \(label) has sizes \(known) and \(d)")
                    }
                } else if size[label] == nil {
                    size[label] = d
                }
            }
        }
        // Sum out labels that appear in one operand only and not in the output.
        var reducedOperands: [Tensor] = [], reducedLabels: [[Character]] = []
        for (k, operand) in operands.enumerated() {
            let others = Set(labels.enumerated().filter { $0.offset != k }.flatMap(\.element))
            let drop = labels[k].indices.filter { !output.contains(labels[k][$0]) && !others.contains(labels[k][$0]) }
            reducedOperands.append(try sumOver(operand, axes: drop, threads: context.threads))
            reducedLabels.append(labels[k].enumerated().filter { !drop.contains($0.offset) }.map(\.element))
        }
        if operands.count == 1 {
            let permutation = try output.map { label -> Int in
                guard let i = reducedLabels[0].firstIndex(of: label) else {
                    throw RuntimeError("Einsum output label \(label) not in input")
                }
                return i
            }
            return [try permute(reducedOperands[0], permutation, threads: context.threads)]
        }
        let a = reducedOperands[0], b = reducedOperands[1], la = reducedLabels[0], lb = reducedLabels[1]
        for label in output where !la.contains(label) && !lb.contains(label) {
            throw RuntimeError("Einsum output label \(label) is in no input")
        }
        let batch = output.filter { la.contains($0) && lb.contains($0) }
        let m = output.filter { la.contains($0) && !lb.contains($0) }
        let n = output.filter { lb.contains($0) && !la.contains($0) }
        let k = la.filter { lb.contains($0) && !output.contains($0) }
        let pa = try permute(a, (batch + m + k).map { la.firstIndex(of: $0)! }, threads: context.threads)
        let pb = try permute(b, (batch + k + n).map { lb.firstIndex(of: $0)! }, threads: context.threads)
        let batchA = batch.map { pa.shape[(batch + m + k).firstIndex(of: $0)!] }
        let batchB = batch.map { pb.shape[(batch + k + n).firstIndex(of: $0)!] }
        func product(_ labels: [Character]) -> Int { labels.map { size[$0] ?? 1 }.reduce(1, *) }
        let ma = pa.reshaped(batchA + [product(m), product(k)])
        let mb = pb.reshaped(batchB + [product(k), product(n)])
        let request = KernelRequest(
            node: .init(opType: "MatMul", inputs: ["a", "b"], outputs: ["y"]), opset: 13, constants: [nil, nil])
        let result = try MatMulKernel(request).run([ma, mb], context)[0]
        let resultBatch = Array(result.shape.dropLast(2))
        let expanded = result.reshaped(resultBatch + m.map { size[$0]! } + n.map { size[$0]! })
        let order = batch + m + n
        return [try permute(expanded, output.map { order.firstIndex(of: $0)! }, threads: context.threads)]
    }
}
