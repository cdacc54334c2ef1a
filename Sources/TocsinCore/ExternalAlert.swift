import Foundation

/// What an external alert (posted to the Alertmanager API) has that a rule
/// alert has not: its identity is the fingerprint of its label set, and it
/// resolves at `endsAt` unless its sender posts it again.
public struct ExternalAlertInfo: Sendable, Equatable, Codable {
    public var fingerprint: String
    public var annotations: [String: String]
    public var generatorURL: String?
    /// When it resolves unless re-posted: the endsAt its sender gave, or
    /// `lastReceivedAt` + the resolve timeout.
    public var endsAt: Date
    public var lastReceivedAt: Date

    public init(fingerprint: String, annotations: [String: String], generatorURL: String?, endsAt: Date, lastReceivedAt: Date) {
        self.fingerprint = fingerprint
        self.annotations = annotations
        self.generatorURL = generatorURL
        self.endsAt = endsAt
        self.lastReceivedAt = lastReceivedAt
    }

    enum CodingKeys: String, CodingKey {
        case fingerprint, annotations
        case generatorURL = "generator_url", endsAt = "ends_at", lastReceivedAt = "last_received_at"
    }
}

/// One alert of a `POST /api/v2/alerts` body, validated.
public struct PostedAlert: Sendable, Equatable {
    public var labels: [String: String]
    public var annotations: [String: String]
    public var startsAt: Date?
    public var endsAt: Date?
    public var generatorURL: String?

    public init(labels: [String: String], annotations: [String: String] = [:], startsAt: Date? = nil, endsAt: Date? = nil,
                generatorURL: String? = nil) {
        self.labels = labels
        self.annotations = annotations
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.generatorURL = generatorURL
    }

    /// The `alertname` label: the alert's `rule` in Tocsin.
    public var alertname: String { labels["alertname"] ?? "" }

    public var fingerprint: String { Fingerprint.of(labels) }

    /// The `severity` label when it is one of Tocsin's severities, else
    /// `warning` (the label itself is kept and routes match on it).
    public var severity: Rule.Severity {
        labels["severity"].flatMap { Rule.Severity(rawValue: $0.lowercased()) } ?? .warning
    }
}

/// Alertmanager's fingerprint of a label set (prometheus/common model
/// `LabelSet.Fingerprint`): FNV-1a 64 over the names in byte order, each
/// name and value followed by the byte 0xFF, as 16 hex digits.
public enum Fingerprint {
    public static func of(_ labels: [String: String]) -> String {
        var hash: UInt64 = 14_695_981_039_346_656_037
        func add<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 1_099_511_628_211
            }
        }
        if !labels.isEmpty {
            for name in labels.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
                add(name.utf8)
                add(CollectionOfOne(0xFF))
                add(labels[name]!.utf8)
                add(CollectionOfOne(0xFF))
            }
        } else {
            hash = 0
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// An Alertmanager matcher (`name="value"`, `!=`, `=~`, `!~`): the form of
/// its silences and of its API's `filter` parameters. A label an alert does
/// not have is the empty string; a regular expression must match the whole
/// value.
public struct SilenceMatcher: Sendable, Hashable, Codable, CustomStringConvertible {
    public var name: String
    public var value: String
    public var isRegex: Bool
    public var isEqual: Bool

    public init(name: String, value: String, isRegex: Bool, isEqual: Bool = true) {
        self.name = name
        self.value = value
        self.isRegex = isRegex
        self.isEqual = isEqual
    }

    public var op: String {
        switch (isEqual, isRegex) {
        case (true, false): "="
        case (false, false): "!="
        case (true, true): "=~"
        case (false, true): "!~"
        }
    }

    public var description: String {
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
        return "\(name)\(op)\"\(escaped)\""
    }

    public func matches(_ labels: [String: String]) -> Bool {
        let actual = labels[name] ?? ""
        let hit = isRegex ? LabelMatcher.fullMatch(value, actual) : actual == value
        return hit == isEqual
    }

    public static let maxNameLength = 256
    public static let maxValueLength = 2048

    /// Why this matcher is refused, or nil: names 1 to 256 characters,
    /// values at most 2,048, no NUL, regular expressions that compile.
    public var problem: String? {
        if name.isEmpty { return "the label name must not be empty" }
        if name.unicodeScalars.count > Self.maxNameLength { return "the label name is over \(Self.maxNameLength) characters" }
        if value.unicodeScalars.count > Self.maxValueLength { return "the value is over \(Self.maxValueLength) characters" }
        if name.utf8.contains(0) || value.utf8.contains(0) { return "must not contain NUL (U+0000)" }
        if isRegex, let problem = LabelMatcher.regexProblem(value) { return "the value \(problem)" }
        return nil
    }

    /// Parses one matcher as amtool and Alertmanager's `filter` write it:
    /// `name=value`, `name!="value"`, `name=~"re.*"`, `"a name"!~value`.
    /// Names may be any UTF-8 (quoted when they hold operators, quotes or
    /// spaces); quoted values take the escapes `\\`, `\"` and `\n`.
    public static func parse(_ text: String) -> Result<SilenceMatcher, MatcherParseError> {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if rest.hasPrefix("{") && rest.hasSuffix("}") && rest.count >= 2 {
            rest = rest.dropFirst().dropLast()
            rest = Substring(rest.trimmingCharacters(in: .whitespaces))
        }
        let name: String
        if rest.hasPrefix("\"") {
            guard let (quoted, after) = unquote(rest) else { return .failure(.init("unterminated quoted label name")) }
            name = quoted
            rest = after
        } else {
            guard let end = rest.firstIndex(where: { "=!~".contains($0) }) else {
                return .failure(.init("expected an operator: =, !=, =~ or !~"))
            }
            name = rest[..<end].trimmingCharacters(in: .whitespaces)
            rest = rest[end...]
        }
        rest = Substring(rest.drop(while: { $0 == " " }))
        let isEqual: Bool
        let isRegex: Bool
        if rest.hasPrefix("=~") { (isEqual, isRegex) = (true, true); rest = rest.dropFirst(2) }
        else if rest.hasPrefix("!~") { (isEqual, isRegex) = (false, true); rest = rest.dropFirst(2) }
        else if rest.hasPrefix("!=") { (isEqual, isRegex) = (false, false); rest = rest.dropFirst(2) }
        else if rest.hasPrefix("=") { (isEqual, isRegex) = (true, false); rest = rest.dropFirst(1) }
        else { return .failure(.init("expected an operator: =, !=, =~ or !~")) }
        rest = Substring(rest.trimmingCharacters(in: .whitespaces))
        var value = String(rest)
        if rest.hasPrefix("\"") {
            guard let (quoted, after) = unquote(rest), after.allSatisfy({ $0 == " " }) else {
                return .failure(.init("a quoted value must end with a quote"))
            }
            value = quoted
        }
        let matcher = SilenceMatcher(name: name, value: value, isRegex: isRegex, isEqual: isEqual)
        if let problem = matcher.problem { return .failure(.init(problem)) }
        return .success(matcher)
    }

    /// `"…"` at the start of `text` → its content and what follows.
    static func unquote(_ text: Substring) -> (String, Substring)? {
        var out = ""
        var index = text.index(after: text.startIndex)
        while index < text.endIndex {
            let c = text[index]
            if c == "\"" { return (out, text[text.index(after: index)...]) }
            if c == "\\" {
                index = text.index(after: index)
                guard index < text.endIndex else { return nil }
                switch text[index] {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(text[index])
                }
            } else {
                out.append(c)
            }
            index = text.index(after: index)
        }
        return nil
    }
}

public struct MatcherParseError: Error, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Array where Element == SilenceMatcher {
    public func matchAll(_ labels: [String: String]) -> Bool { allSatisfy { $0.matches(labels) } }
}
