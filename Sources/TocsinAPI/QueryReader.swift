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

    init(_ request: Request) {
        parameters = request.uri.queryParameters
    }

    mutating func issue(_ field: String, _ reason: String) {
        issues.append(ValidationIssue(field: field, reason: reason))
    }

    /// The parameter's text, or nil when absent or refused.
    mutating func raw(_ name: String) -> String? {
        guard let value = parameters[name[...]] else { return nil }
        let text = String(value)
        guard text.utf8.count <= Self.maxValueBytes else {
            issue(name, "must be at most \(Self.maxValueBytes) bytes")
            return nil
        }
        // Hummingbird decodes %XX into U+FFFD when the bytes are not UTF-8.
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
