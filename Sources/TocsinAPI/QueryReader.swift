import Foundation
import Hummingbird
import TocsinCore

/// Reads query parameters strictly. Every value is valid UTF-8 without NUL
/// and at most 2,048 bytes (else a 400 naming the parameter), numbers have
/// ranges, and all the problems of a request are reported together.
struct QueryReader {
    private let parameters: Parameters
    private(set) var issues: [ValidationIssue] = []

    static let maxValueBytes = 2048

    /// How the query string is encoded.
    enum Encoding {
        /// RFC 3986: `%XX` escapes, `+` is a plus sign (so
        /// `since=2026-11-29T00:00:00+02:00` works from curl as typed).
        case uri
        /// HTML forms' and Go's `url.Values`: `+` is a space, names are
        /// escaped too. What Alertmanager's clients (amtool, Grafana)
        /// send, so the routes of `/api/v2` read it.
        case form
    }

    init(_ request: Request, encoding: Encoding = .uri) {
        switch encoding {
        case .uri: parameters = request.uri.queryParameters
        case .form: parameters = Self.formParameters(request.uri.query)
        }
    }

    /// Every value of a repeated parameter, checked as `raw` checks one.
    mutating func all(_ name: String) -> [String] {
        parameters.getAll(name).compactMap { check(name, String($0)) }
    }

    /// Splits a form-encoded query into its pairs, in order. A `%` not
    /// followed by two hex digits is kept as it is; bytes that are not
    /// UTF-8 become U+FFFD, which `raw` refuses.
    static func formParameters(_ query: String?) -> Parameters {
        guard let query, !query.isEmpty else { return .init() }
        return .init(query.split(separator: "&").map { pair -> (key: Substring, value: Substring) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (key: formDecode(parts[0])[...], value: (parts.count > 1 ? formDecode(parts[1]) : "")[...])
        })
    }

    static func formDecode(_ text: Substring) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x41...0x46: c - 0x41 + 10
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x2B {
                out.append(0x20)
            } else if c == 0x25, i + 2 < bytes.count, let high = hex(bytes[i + 1]), let low = hex(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 2
            } else {
                out.append(c)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func issue(_ field: String, _ reason: String) {
        issues.append(ValidationIssue(field: field, reason: reason))
    }

    /// The parameter's text, or nil when absent or refused.
    mutating func raw(_ name: String) -> String? {
        guard let value = parameters[name[...]] else { return nil }
        return check(name, String(value))
    }

    private mutating func check(_ name: String, _ text: String) -> String? {
        guard text.utf8.count <= Self.maxValueBytes else {
            issue(name, "must be at most \(Self.maxValueBytes) bytes")
            return nil
        }
        // %XX escapes of bytes that are not UTF-8 are decoded into U+FFFD.
        guard !text.unicodeScalars.contains(where: { $0.value == 0 || $0.value == 0xFFFD }) else {
            issue(name, "must be valid UTF-8 without NUL characters")
            return nil
        }
        return text
    }

    mutating func string(_ name: String, maxLength: Int) -> String? {
        guard let text = raw(name) else { return nil }
        guard text.unicodeScalars.count <= maxLength else {
            issue(name, "must be at most \(maxLength) characters")
            return nil
        }
        return text
    }

    mutating func integer(_ name: String, _ range: ClosedRange<Int>) -> Int? {
        guard let text = raw(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            issue(name, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }

    mutating func bool(_ name: String) -> Bool? {
        guard let text = raw(name) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default:
            issue(name, "must be true or false")
            return nil
        }
    }

    /// A comma-separated list of enum values.
    mutating func list<T: RawRepresentable & CaseIterable>(_ name: String, _ type: T.Type) -> [T] where T.RawValue == String {
        guard let text = raw(name), !text.isEmpty else { return [] }
        var values: [T] = []
        for part in text.split(separator: ",") {
            if let value = T(rawValue: String(part)) { values.append(value) } else {
                issue(name, "must be one or more of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
                return []
            }
        }
        return values
    }

    /// `window` (15m, 1h, 24h, 7d) or `since`/`until` (RFC 3339).
    mutating func timeRange(now: Date, defaultWindow: String = "24h", maxSeconds: Double = 400 * 86_400) -> TimeRange? {
        let window = raw("window"), since = raw("since"), until = raw("until")
        do {
            return try TimeRange.parse(window: window, since: since, until: until, now: now, defaultWindow: defaultWindow,
                                       maxSeconds: maxSeconds)
        } catch {
            issues += error.issues
            return nil
        }
    }

    /// True when any of the time range's parameters is given.
    func hasTimeRange() -> Bool {
        ["window", "since", "until"].contains { parameters[$0[...]] != nil }
    }

    mutating func platform() -> String? {
        guard let platform = raw("platform") else { return nil }
        guard PlatformName.isValid(platform) else {
            issue("platform", "is not a valid platform label")
            return nil
        }
        return platform
    }

    /// Throws the 400 when anything was wrong.
    func check() throws {
        if !issues.isEmpty { throw APIError.badRequest("invalid query", details: issues) }
    }
}
