/// How reports show a class: its id, followed by its name when the names are known.
public enum ClassNaming {
    public static func label(_ id: Int, _ names: [String]?) -> String {
        guard let names, id >= 0, id < names.count else { return String(id) }
        return "\(id) \(names[id])"
    }

    public static func list(_ ids: [Int], _ names: [String]?) -> String {
        ids.map { label($0, names) }.joined(separator: ", ")
    }
}
