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

    /// As amtool writes it, and as `parse` reads it back: the value always
    /// quoted, the name quoted when it holds operators, quotes, braces,
    /// commas or spaces.
    public var description: String {
        let plainName = !name.isEmpty
            && !name.unicodeScalars.contains(where: { "=!~\"{},\\".unicodeScalars.contains($0) || $0.properties.isWhitespace })
        return (plainName ? name : Self.quote(name)) + op + Self.quote(value)
    }

    /// Escaped scalar by scalar: a quote followed by a combining mark is
    /// one Character, and must still be escaped.
    static func quote(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        out.append("\"")
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\"": out.append(contentsOf: "\\\"".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            default: out.append(scalar)
            }
        }
        out.append("\"")
        return String(out)
    }

    public func matches(_ labels: [String: String]) -> Bool {
        let actual = labels[name] ?? ""
        // Byte for byte, as Alertmanager compares (String == would equate canonical equivalents).
        let hit = isRegex ? LabelMatcher.fullMatch(value, actual) : actual.utf8.elementsEqual(value.utf8)
        return hit == isEqual
    }

    public static let maxNameLength = 256
    public static let maxValueLength = 2048
    /// A regular expression's length in UTF-16 code units (`AnchoredRegex`).
    public static let maxRegexLength = AnchoredRegex.maxLength

    /// Why this matcher is refused, or nil: names 1 to 256 characters,
    /// values at most 2,048 (regular expressions 250 UTF-16 code units), no
    /// NUL, regular expressions that compile.
    public var problem: String? {
        if name.isEmpty { return "the label name must not be empty" }
        if name.unicodeScalars.count > Self.maxNameLength { return "the label name is over \(Self.maxNameLength) characters" }
        if value.unicodeScalars.count > Self.maxValueLength { return "the value is over \(Self.maxValueLength) characters" }
        if name.utf8.contains(0) || value.utf8.contains(0) { return "must not contain NUL (U+0000)" }
        if isRegex && value.utf16.count > Self.maxRegexLength {
            return "a regular expression is at most \(Self.maxRegexLength) UTF-16 code units"
        }
        if isRegex, let problem = LabelMatcher.regexProblem(value) { return "the value \(problem)" }
        return nil
    }

    /// Parses one matcher as amtool and Alertmanager's `filter` write it:
    /// `name=value`, `name!="value"`, `name=~"re.*"`, `"a name"!~value`.
    /// Names may be any UTF-8 (quoted when they hold operators, quotes or
    /// spaces); quoted values take the escapes `\\`, `\"`, `\n` and `\t`.
    /// Read scalar by scalar, so a combining mark after a quote is text.
    public static func parse(_ text: String) -> Result<SilenceMatcher, MatcherParseError> {
        var rest = Array(text.unicodeScalars)
        func trim(_ scalars: inout [Unicode.Scalar]) {
            while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
            while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        }
        trim(&rest)
        if rest.count >= 2, rest.first == "{", rest.last == "}" {
            rest = Array(rest.dropFirst().dropLast())
            trim(&rest)
        }
        var name = ""
        if rest.first == "\"" {
            guard let (quoted, after) = unquote(rest) else { return .failure(.init("unterminated quoted label name")) }
            name = quoted
            rest = after
        } else {
            guard let end = rest.firstIndex(where: { $0 == "=" || $0 == "!" || $0 == "~" }) else {
                return .failure(.init("expected an operator: =, !=, =~ or !~"))
            }
            var head = Array(rest[..<end])
            trim(&head)
            name = String(String.UnicodeScalarView(head))
            rest = Array(rest[end...])
        }
        trim(&rest)
        let isEqual: Bool
        let isRegex: Bool
        switch (rest.first, rest.dropFirst().first) {
        case ("=", "~"): (isEqual, isRegex) = (true, true); rest.removeFirst(2)
        case ("!", "~"): (isEqual, isRegex) = (false, true); rest.removeFirst(2)
        case ("!", "="): (isEqual, isRegex) = (false, false); rest.removeFirst(2)
        case ("=", _): (isEqual, isRegex) = (true, false); rest.removeFirst(1)
        default: return .failure(.init("expected an operator: =, !=, =~ or !~"))
        }
        trim(&rest)
        var value = String(String.UnicodeScalarView(rest))
        if rest.first == "\"" {
            guard let (quoted, after) = unquote(rest), after.isEmpty else {
                return .failure(.init("a quoted value must end with its closing quote"))
            }
            value = quoted
        }
        let matcher = SilenceMatcher(name: name, value: value, isRegex: isRegex, isEqual: isEqual)
        if let problem = matcher.problem { return .failure(.init(problem)) }
        return .success(matcher)
    }

    /// `"…"` at the start of `scalars` → its content and what follows.
    static func unquote(_ scalars: [Unicode.Scalar]) -> (String, [Unicode.Scalar])? {
        var out = String.UnicodeScalarView()
        var index = 1
        while index < scalars.count {
            let c = scalars[index]
            if c == "\"" { return (String(out), Array(scalars[(index + 1)...])) }
            if c == "\\" {
                index += 1
                guard index < scalars.count else { return nil }
                switch scalars[index] {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(scalars[index])
                }
            } else {
                out.append(c)
            }
            index += 1
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
