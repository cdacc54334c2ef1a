import Foundation

/// One `where:` entry of a rule (an event matcher): a condition on one label of an event, or
/// on its platform (`label: platform`), which is matched like a label.
///
/// A label the event does not have reads as the empty string, as in
/// Prometheus: `not_equals: x` and `not_matches` hold for it, `equals: ""`
/// does too; `present: false` holds only for it.
public struct EventMatcher: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Operation: Sendable, Equatable {
        case equals(String)
        case notEquals(String)
        case matches(LabelPattern)
        case notMatches(LabelPattern)
        case isIn([String])
        case present(Bool)
    }

    /// The operators of the rules file, by name.
    public static let operators = ["equals", "not_equals", "matches", "not_matches", "in", "present"]
    /// The largest `in:` list.
    public static let maxValues = 100
    /// The longest value (events' label values are at most 256 characters).
    public static let maxValueLength = 256

    public var label: String
    public var operation: Operation

    public init(label: String, _ operation: Operation) {
        self.label = label
        self.operation = operation
    }

    /// Whether an event whose label (or platform) is `value` — nil when it
    /// has none — passes.
    public func matches(_ value: String?) -> Bool {
        switch operation {
        case .equals(let v): (value ?? "") == v
        case .notEquals(let v): (value ?? "") != v
        case .matches(let p): p.matches(value ?? "")
        case .notMatches(let p): !p.matches(value ?? "")
        case .isIn(let values): values.contains(value ?? "")
        case .present(let wanted): (value != nil) == wanted
        }
    }

    /// Whether the matcher is on the platform column rather than a label.
    public var isPlatform: Bool { label == "platform" }

    /// The value of the matcher's label for an event.
    public func value(platform: String?, labels: [String: String]) -> String? {
        isPlatform ? platform : labels[label]
    }

    /// `media = "video"`, `endpoint =~ "/v2/.*"`, `platform in ["tiktok"]`,
    /// `reason present`: for messages, evidence and the dashboard.
    public var description: String {
        func quoted(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        switch operation {
        case .equals(let v): return "\(label) = \(quoted(v))"
        case .notEquals(let v): return "\(label) != \(quoted(v))"
        case .matches(let p): return "\(label) =~ \(quoted(p.source))"
        case .notMatches(let p): return "\(label) !~ \(quoted(p.source))"
        case .isIn(let values): return "\(label) in [\(values.map(quoted).joined(separator: ", "))]"
        case .present(let wanted): return wanted ? "\(label) present" : "\(label) absent"
        }
    }

    /// The text of a whole filter: its matchers joined by `, `.
    public static func text(_ matchers: [EventMatcher]) -> String {
        matchers.map(\.description).joined(separator: ", ")
    }

    /// Label names a rule may use (`where:`, `group_by:`): 1 to 64 of
    /// letters, digits, `_`, `.`, `-` and `/`, starting with a letter or `_`.
    public static func isValidLabelName(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard (1...64).contains(scalars.count), let first = scalars.first,
              first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return scalars.allSatisfy { c in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "_.-/".unicodeScalars.contains(c))
        }
    }

    // The rules file's shape: {"label": "media", "equals": "video"}.
    enum CodingKeys: String, CodingKey {
        case label, equals, notEquals = "not_equals", matches, notMatches = "not_matches", isIn = "in", present
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        label = try c.decode(String.self, forKey: .label)
        func pattern(_ key: CodingKeys) throws -> LabelPattern {
            let text = try c.decode(String.self, forKey: key)
            do {
                return try LabelPattern(text)
            } catch {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: error.message)
            }
        }
        if let v = try c.decodeIfPresent(String.self, forKey: .equals) {
            operation = .equals(v)
        } else if let v = try c.decodeIfPresent(String.self, forKey: .notEquals) {
            operation = .notEquals(v)
        } else if c.contains(.matches) {
            operation = .matches(try pattern(.matches))
        } else if c.contains(.notMatches) {
            operation = .notMatches(try pattern(.notMatches))
        } else if let v = try c.decodeIfPresent([String].self, forKey: .isIn) {
            operation = .isIn(v)
        } else {
            operation = .present(try c.decode(Bool.self, forKey: .present))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(label, forKey: .label)
        switch operation {
        case .equals(let v): try c.encode(v, forKey: .equals)
        case .notEquals(let v): try c.encode(v, forKey: .notEquals)
        case .matches(let p): try c.encode(p.source, forKey: .matches)
        case .notMatches(let p): try c.encode(p.source, forKey: .notMatches)
        case .isIn(let v): try c.encode(v, forKey: .isIn)
        case .present(let v): try c.encode(v, forKey: .present)
        }
    }
}

/// What a rule groups its events by: platform and/or label names, up to 3
/// (`group_by: platform`, `group_by: [platform, endpoint]`). Each group has
/// its own alert.
extension Rule {
public struct GroupBy: Sendable, Hashable, Codable, ExpressibleByArrayLiteral, CustomStringConvertible {
    public var keys: [String]

    public static let maxKeys = 3
    public static let none = GroupBy([])
    public static let platform = GroupBy(["platform"])

    public init(_ keys: [String]) { self.keys = keys }
    public init(arrayLiteral elements: String...) { keys = elements }

    public var isEmpty: Bool { keys.isEmpty }
    public var includesPlatform: Bool { keys.contains("platform") }

    /// The text of `alert_rules.group_by`: `none`, or the keys joined by
    /// commas (label names cannot contain one).
    public var description: String { keys.isEmpty ? "none" : keys.joined(separator: ",") }

    /// The group key of an event: for `[platform]` its platform (as before
    /// labels could be grouped by), `""` for no grouping, otherwise
    /// `key=value` pairs in `group_by` order joined by commas, with `\`, `,`
    /// and `=` escaped — deterministic and distinct for distinct labels.
    public func key(_ values: [String]) -> String {
        if keys.isEmpty { return "" }
        if keys == ["platform"] { return values.first ?? "" }
        func escaped(_ s: String) -> String {
            var out = ""
            for c in s {
                if c == "\\" || c == "," || c == "=" { out.append("\\") }
                out.append(c)
            }
            return out
        }
        return zip(keys, values).map { escaped($0) + "=" + escaped($1) }.joined(separator: ",")
    }

    /// The values of the keys for an event (a missing label reads as "").
    public func values(platform: String?, labels: [String: String]) -> [String] {
        keys.map { $0 == "platform" ? (platform ?? "") : (labels[$0] ?? "") }
    }

    /// The group's labels as alerts carry them: empty values left out.
    public func labels(_ values: [String]) -> [String: String] {
        var out: [String: String] = [:]
        for (key, value) in zip(keys, values) where !value.isEmpty { out[key] = value }
        return out
    }

    /// Reads `"none"`, `"platform"` (what rules stored before label
    /// grouping) or a list of keys; writes the short forms when they apply,
    /// so a stored rule's definition does not change by being re-applied.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let text = try? c.decode(String.self) {
            keys = text == "none" ? [] : [text]
        } else {
            keys = try c.decode([String].self)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if keys.isEmpty {
            try c.encode("none")
        } else if keys == ["platform"] {
            try c.encode("platform")
        } else {
            try c.encode(keys)
        }
    }
}
}
