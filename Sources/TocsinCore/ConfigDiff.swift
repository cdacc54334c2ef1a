import Foundation

/// What changed between two versions of applied configuration, as lines a
/// person reads: `+ rule x`, `- channel y`, `~ rule z: threshold 0.05 → 0.1`.
public enum ConfigDiff {
    /// One item (a rule, a channel, a route) as a JSON object.
    public struct Item: Sendable, Equatable {
        public var kind: String
        public var name: String
        public var fields: [String: String]

        public init(kind: String, name: String, fields: [String: String]) {
            self.kind = kind
            self.name = name
            self.fields = fields
        }

        /// The item's Codable form, each top-level field as canonical JSON.
        public init(kind: String, name: String, encoding value: some Encodable) throws {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let object = try JSONSerialization.jsonObject(with: try encoder.encode(value)) as? [String: Any] ?? [:]
            var fields: [String: String] = [:]
            for (key, value) in object {
                let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed,
                                                                                       .withoutEscapingSlashes])
                fields[key] = String(decoding: data, as: UTF8.self)
            }
            self.init(kind: kind, name: name, fields: fields)
        }
    }

    /// Lines for the items added, removed and changed, in a stable order.
    public static func lines(before: [Item], after: [Item]) -> [String] {
        let old = Dictionary(before.map { ("\($0.kind) \($0.name)", $0) }, uniquingKeysWith: { a, _ in a })
        let new = Dictionary(after.map { ("\($0.kind) \($0.name)", $0) }, uniquingKeysWith: { a, _ in a })
        var lines: [String] = []
        for key in new.keys.sorted() where old[key] == nil { lines.append("+ \(key)") }
        for key in old.keys.sorted() where new[key] == nil { lines.append("- \(key)") }
        for key in new.keys.sorted() {
            guard let was = old[key], let now = new[key], was.fields != now.fields else { continue }
            let names = Set(was.fields.keys).union(now.fields.keys).sorted()
            let changes = names.compactMap { field -> String? in
                let a = was.fields[field] ?? "null", b = now.fields[field] ?? "null"
                return a == b ? nil : "\(field) \(clip(a)) → \(clip(b))"
            }
            lines.append("~ \(key): " + changes.joined(separator: ", "))
        }
        return lines
    }

    static func clip(_ text: String) -> String {
        text.count <= 80 ? text : String(text.prefix(77)) + "…"
    }
}
