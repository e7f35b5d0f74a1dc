import LetheCore

/// The parsed header of a `.npy` array.
struct NPYHeader: Sendable {
    var major: UInt8
    var dtype: DType
    /// The data is big-endian and must be swapped to be read.
    var bigEndian: Bool
    var fortranOrder: Bool
    /// NumPy's shape (without a string array's character axis).
    var shape: [Int]
    /// Characters per element of a string array (`|S n`, `<U n`); nil for numbers.
    var characterWidth: Int?
    /// Bytes before the data: magic, version, length field and the dict with its padding.
    var headerLength: Int
    var dataByteCount: Int

    /// The tensor's shape: NumPy's, plus the character axis for string arrays.
    var tensorShape: [Int] { characterWidth.map { shape + [$0] } ?? shape }
    /// Bytes per NumPy element (a whole string for string arrays).
    var itemByteCount: Int { dtype.byteSize * (characterWidth ?? 1) }

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] // \x93NUMPY
    /// Bytes that always suffice to learn the header's length.
    static let prefixLength = 12

    /// The total header length announced by `prefix` (at least the first 10 or 12 bytes).
    static func totalLength(prefix: UnsafeRawBufferPointer, name: String, limits: Limits) throws -> Int {
        guard prefix.count >= 8 else {
            if prefix.count < magic.count || !prefix.prefix(magic.count).elementsEqual(magic) {
                throw NPYError.badMagic(name: name)
            }
            throw NPYError.invalidHeader(name: name, offset: prefix.count, reason: "truncated before the version")
        }
        guard prefix.prefix(magic.count).elementsEqual(magic) else { throw NPYError.badMagic(name: name) }
        let major = prefix[6], minor = prefix[7]
        guard (1...3).contains(major), minor == 0 else {
            throw NPYError.unsupportedVersion(name: name, major: major, minor: minor)
        }
        let fieldSize = major == 1 ? 2 : 4
        guard prefix.count >= 8 + fieldSize else {
            throw NPYError.invalidHeader(name: name, offset: prefix.count, reason: "truncated in the header length")
        }
        let dictLength =
            major == 1
            ? Int(UInt16(littleEndian: prefix.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
            : Int(UInt32(littleEndian: prefix.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
        guard dictLength <= limits.maxNPYHeader else {
            throw NPYError.headerTooLarge(name: name, length: dictLength, limit: limits.maxNPYHeader)
        }
        return 8 + fieldSize + dictLength
    }

    /// Parses the header at the start of `bytes` (which must hold at least the whole header).
    static func parse(_ bytes: UnsafeRawBufferPointer, name: String, limits: Limits) throws -> NPYHeader {
        let total = try totalLength(
            prefix: UnsafeRawBufferPointer(rebasing: bytes.prefix(prefixLength)),
            name: name, limits: limits)
        guard total <= bytes.count else {
            throw NPYError.invalidHeader(
                name: name, offset: bytes.count,
                reason: "header of \(total) bytes is truncated at \(bytes.count)")
        }
        let major = bytes[6]
        let dictStart = major == 1 ? 10 : 12
        let dictBytes = UnsafeRawBufferPointer(rebasing: bytes[dictStart..<total])
        let text: String
        if major == 3 {
            guard let decoded = String(validating: dictBytes, as: UTF8.self) else {
                throw NPYError.invalidHeader(name: name, offset: dictStart, reason: "version 3.0 header is not UTF-8")
            }
            text = decoded
        } else {
            // Versions 1.0 and 2.0 are latin-1: every byte is one code point.
            var scalars = String.UnicodeScalarView()
            for byte in dictBytes { scalars.append(Unicode.Scalar(byte)) }
            text = String(scalars)
        }
        var parser = PythonLiteralParser(text: text, name: name, baseOffset: dictStart, allowLongSuffix: major < 3)
        let dict = try parser.parseHeaderDict()

        guard let descrValue = dict["descr"], let orderValue = dict["fortran_order"], let shapeValue = dict["shape"],
            dict.count == 3
        else {
            throw NPYError.invalidHeader(
                name: name, offset: dictStart,
                reason: "keys are \(dict.keys.sorted()), expected descr, fortran_order, shape")
        }
        guard case .bool(let fortranOrder) = orderValue else {
            throw NPYError.invalidHeader(name: name, offset: dictStart, reason: "fortran_order is not True or False")
        }
        guard case .tuple(let dims) = shapeValue else {
            throw NPYError.invalidHeader(name: name, offset: dictStart, reason: "shape is not a tuple")
        }
        guard dims.count <= limits.maxRank else {
            throw LimitError(what: "\(name): rank", value: dims.count, limit: limits.maxRank)
        }
        var shape: [Int] = []
        for dim in dims {
            guard case .int(let value) = dim else {
                throw NPYError.invalidHeader(name: name, offset: dictStart, reason: "shape holds a non-integer")
            }
            guard let value, value >= 0 else {
                throw NPYError.invalidHeader(
                    name: name, offset: dictStart,
                    reason: "shape holds a negative or too large dimension")
            }
            shape.append(value)
        }
        let (dtype, bigEndian, characterWidth) = try parseDescr(descrValue, name: name)
        let tensorShape = characterWidth.map { shape + [$0] } ?? shape
        guard let size = Tensor.byteCount(dtype: dtype, shape: tensorShape) else {
            throw NPYError.shapeOverflow(name: name, shape: shape)
        }
        guard size <= limits.maxTensorBytes else {
            throw LimitError(what: "\(name): array byte size", value: size, limit: limits.maxTensorBytes)
        }
        guard size / dtype.byteSize <= limits.maxElements else {
            throw LimitError(what: "\(name): element count", value: size / dtype.byteSize, limit: limits.maxElements)
        }
        return NPYHeader(
            major: major, dtype: dtype, bigEndian: bigEndian, fortranOrder: fortranOrder, shape: shape,
            characterWidth: characterWidth, headerLength: total, dataByteCount: size)
    }

    /// The dtype, whether its data is big-endian, and a string array's width in characters.
    private static func parseDescr(_ value: PythonLiteral, name: String) throws -> (DType, Bool, Int?) {
        guard case .string(let descr) = value else {
            if case .list = value {
                throw NPYError.unsupportedDescr(
                    name: name, descr: "[...]", reason: "structured dtypes are not supported")
            }
            throw NPYError.invalidHeader(name: name, offset: 0, reason: "descr is not a string")
        }
        var code = Substring(descr)
        var order: Character = "="
        if let first = code.first, "<>|=".contains(first) {
            order = first
            code = code.dropFirst()
        }
        if let kind = code.first, "SaU".contains(kind) {
            // `a` is NumPy's old spelling of `S`; the width must be given (`|S0` is the empty string).
            guard code.count > 1, code.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }),
                let width = Int(code.dropFirst())
            else {
                throw NPYError.unsupportedDescr(name: name, descr: descr, reason: "string width is not a number")
            }
            let dtype: DType = kind == "U" ? .unicode : .bytes
            return (dtype, order == ">" && dtype == .unicode, width)
        }
        let dtype: DType
        switch code {
        case "b1", "?": dtype = .bool
        case "i1": dtype = .int8
        case "i2": dtype = .int16
        case "i4": dtype = .int32
        case "i8": dtype = .int64
        case "u1": dtype = .uint8
        case "u2": dtype = .uint16
        case "u4": dtype = .uint32
        case "u8": dtype = .uint64
        case "f2": dtype = .float16
        case "f4": dtype = .float32
        case "f8": dtype = .float64
        case "c8": dtype = .complex64
        case "c16": dtype = .complex128
        default:
            if code.hasPrefix("O") { throw NPYError.pickledArray(name: name) }
            let reason: String
            switch code.first {
            case "V": reason = "void and structured dtypes are not supported"
            case "M", "m": reason = "datetime arrays are not supported"
            case "f", "c": reason = "extended-precision floats are not supported"
            default: reason = "not a numeric dtype Lethe reads"
            }
            throw NPYError.unsupportedDescr(name: name, descr: descr, reason: reason)
        }
        // '=' is native order, little-endian on every machine Lethe runs on; '|' means "not applicable".
        return (dtype, order == ">" && dtype.byteSize > 1, nil)
    }

    /// The header NumPy's `format.write_array` would write for a tensor of `dtype` and `shape`
    /// (C order, little-endian); a string tensor's last axis is its width.
    static func encode(dtype: DType, shape tensorShape: [Int], name: String) throws -> [UInt8] {
        let (descr, shape) = try numPyType(dtype: dtype, shape: tensorShape, name: name)
        let shapeText: String
        switch shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(shape[0]),)"
        default: shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // NumPy leaves room to grow the first axis in place.
        if let first = shape.first { dict += String(repeating: " ", count: max(0, 21 - String(first).count)) }
        let dictBytes = Array(dict.utf8)
        let withNewline = dictBytes.count + 1
        for (major, field) in [(UInt8(1), 2), (UInt8(2), 4)] {
            let padding = 64 - ((8 + field + withNewline) % 64)
            let length = withNewline + padding
            if major == 1 && length > Int(UInt16.max) { continue }
            var out = magic + [major, 0]
            if field == 2 {
                out += withUnsafeBytes(of: UInt16(length).littleEndian) { Array($0) }
            } else {
                out += withUnsafeBytes(of: UInt32(length).littleEndian) { Array($0) }
            }
            out += dictBytes
            out += repeatElement(UInt8(ascii: " "), count: padding)
            out.append(UInt8(ascii: "\n"))
            return out
        }
        throw NPYError.headerTooLarge(name: name, length: withNewline, limit: Int(UInt32.max))
    }

    /// NumPy's `dtype.str` and shape for a tensor of `dtype` and `shape`: a string tensor's last
    /// axis becomes the width in the dtype (`[3, 5]` bytes → `|S5`, `(3,)`).
    static func numPyType(dtype: DType, shape: [Int], name: String) throws -> (descr: String, shape: [Int]) {
        if dtype.isCharacter {
            guard let width = shape.last else { throw NPYError.missingCharacterAxis(name: name, dtype: dtype) }
            return ((dtype == .bytes ? "|S" : "<U") + String(width), Array(shape.dropLast()))
        }
        guard let descr = descr(of: dtype) else { throw NPYError.noNumPyDType(name: name, dtype: dtype) }
        return (descr, shape)
    }

    /// NumPy's `dtype.str` for `dtype`; nil for kinds NumPy lacks (bfloat16, float8) and for the
    /// string kinds, whose `dtype.str` carries the width (see `numPyType`).
    static func descr(of dtype: DType) -> String? {
        switch dtype {
        case .bool: "|b1"
        case .int8: "|i1"
        case .uint8: "|u1"
        case .int16: "<i2"
        case .uint16: "<u2"
        case .int32: "<i4"
        case .uint32: "<u4"
        case .int64: "<i8"
        case .uint64: "<u8"
        case .float16: "<f2"
        case .float32: "<f4"
        case .float64: "<f8"
        case .complex64: "<c8"
        case .complex128: "<c16"
        case .bfloat16, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .bytes, .unicode: nil
        }
    }
}

/// The Python literals a `.npy` header dict may hold.
indirect enum PythonLiteral {
    case string(String)
    case bool(Bool)
    /// nil when the integer does not fit an `Int`.
    case int(Int?)
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case dict([String: PythonLiteral])
    case none
}

/// Parses the restricted Python literal syntax of `.npy` headers (what `ast.literal_eval`
/// accepts for a dict of strings, booleans, integers, tuples and lists), nothing else.
struct PythonLiteralParser {
    private let scalars: [Unicode.Scalar]
    private var position = 0
    private let name: String
    private let baseOffset: Int
    private let allowLongSuffix: Bool
    private let maxDepth = 16

    init(text: String, name: String, baseOffset: Int, allowLongSuffix: Bool) {
        scalars = Array(text.unicodeScalars)
        self.name = name
        self.baseOffset = baseOffset
        self.allowLongSuffix = allowLongSuffix
    }

    private func error(_ reason: String) -> NPYError {
        .invalidHeader(name: name, offset: baseOffset + position, reason: reason)
    }

    private var current: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

    private mutating func skipWhitespace() {
        while let c = current, c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0C}" || c == "\u{0B}" {
            position += 1
        }
    }

    /// The whole header: one dict with string keys, then only whitespace.
    mutating func parseHeaderDict() throws -> [String: PythonLiteral] {
        skipWhitespace()
        guard current == "{" else { throw error("header is not a dict") }
        guard case .dict(let dict) = try parseValue(depth: 0) else { throw error("header is not a dict") }
        skipWhitespace()
        guard position == scalars.count else { throw error("unexpected text after the header dict") }
        return dict
    }

    private mutating func parseValue(depth: Int) throws -> PythonLiteral {
        guard depth < maxDepth else { throw error("nesting too deep") }
        skipWhitespace()
        guard let c = current else { throw error("unexpected end of header") }
        switch c {
        case "{": return try parseDict(depth: depth)
        case "(": return try parseSequence(close: ")", depth: depth)
        case "[": return try parseSequence(close: "]", depth: depth)
        case "'", "\"": return .string(try parseString())
        case "-", "+", "0"..."9": return .int(try parseInt())
        default:
            for (word, value) in [("True", PythonLiteral.bool(true)), ("False", .bool(false)), ("None", .none)]
            where matches(word) {
                position += word.unicodeScalars.count
                return value
            }
            throw error("unexpected character '\(c)'")
        }
    }

    private func matches(_ word: String) -> Bool {
        let wordScalars = Array(word.unicodeScalars)
        guard scalars.count - position >= wordScalars.count else { return false }
        for (i, s) in wordScalars.enumerated() where scalars[position + i] != s { return false }
        let after = position + wordScalars.count
        if after < scalars.count, scalars[after].properties.isAlphabetic || scalars[after] == "_" { return false }
        return true
    }

    private mutating func parseDict(depth: Int) throws -> PythonLiteral {
        position += 1
        var dict: [String: PythonLiteral] = [:]
        while true {
            skipWhitespace()
            if current == "}" { position += 1; return .dict(dict) }
            guard current == "'" || current == "\"" else { throw error("dict key is not a string") }
            let key = try parseString()
            guard dict[key] == nil else { throw error("duplicate key '\(key)'") }
            skipWhitespace()
            guard current == ":" else { throw error("expected ':' after a dict key") }
            position += 1
            dict[key] = try parseValue(depth: depth + 1)
            skipWhitespace()
            if current == "," { position += 1; continue }
            guard current == "}" else { throw error("expected ',' or '}' in the dict") }
        }
    }

    private mutating func parseSequence(close: Unicode.Scalar, depth: Int) throws -> PythonLiteral {
        position += 1
        var elements: [PythonLiteral] = []
        var sawComma = false
        while true {
            skipWhitespace()
            if current == close {
                position += 1
                if close == ")" {
                    // `(3)` is an int in Python, not a tuple.
                    if elements.count == 1 && !sawComma { return elements[0] }
                    return .tuple(elements)
                }
                return .list(elements)
            }
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            if current == "," {
                position += 1
                sawComma = true
                continue
            }
            guard current == close else { throw error("expected ',' or '\(close)'") }
        }
    }

    private mutating func parseString() throws -> String {
        guard let quote = current else { throw error("expected a string") }
        position += 1
        var out = String.UnicodeScalarView()
        while true {
            guard let c = current else { throw error("unterminated string") }
            position += 1
            if c == quote { return String(out) }
            if c == "\n" { throw error("newline in a string") }
            if c == "\\" {
                guard let escaped = current else { throw error("unterminated escape") }
                position += 1
                switch escaped {
                case "\\", "'", "\"": out.append(escaped)
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: throw error("unsupported escape in a string")
                }
                continue
            }
            out.append(c)
        }
    }

    private mutating func parseInt() throws -> Int? {
        var negative = false
        if current == "-" || current == "+" {
            negative = current == "-"
            position += 1
            skipWhitespace()
        }
        var value: Int? = 0
        var digits = 0
        while let c = current, c.value >= 0x30, c.value <= 0x39 {
            let digit = Int(c.value - 0x30)
            if let v = value {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(digit)
                value = (o1 || o2) ? nil : s
            }
            digits += 1
            position += 1
            if current == "_" { position += 1 }
        }
        guard digits > 0 else { throw error("invalid integer") }
        if allowLongSuffix, current == "L" || current == "l" { position += 1 }
        if let c = current, c.properties.isAlphabetic || c == "." { throw error("invalid integer") }
        if negative, let v = value { return -v }
        return value
    }
}
