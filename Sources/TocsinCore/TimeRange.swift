import Foundation

/// A half-open time range [since, until).
public struct TimeRange: Sendable, Equatable {
    public var since: Date
    public var until: Date

    public init(since: Date, until: Date) {
        self.since = since
        self.until = until
    }

    public var seconds: Double { until.timeIntervalSince(since) }

    /// The named windows of the dashboard and API.
    public static let windows: [String: Double] = ["15m": 900, "1h": 3600, "24h": 86_400, "7d": 604_800]

    /// Parses `window` (15m, 1h, 24h, 7d) or `since`/`until` (RFC 3339;
    /// `until` defaults to now). Both forms together are refused.
    public static func parse(
        window: String?, since: String?, until: String?, now: Date, defaultWindow: String = "24h",
        maxSeconds: Double = 400 * 86_400
    ) throws(ValidationFailure) -> TimeRange {
        if window != nil, since != nil || until != nil {
            throw ValidationFailure([ValidationIssue(field: "window", reason: "use either window or since/until, not both")])
        }
        if since != nil || until != nil {
            var issues: [ValidationIssue] = []
            let start = since.flatMap(RFC3339.parse)
            let end = until.map { RFC3339.parse($0) } ?? now
            if since == nil {
                issues.append(ValidationIssue(field: "since", reason: "is required with until"))
            } else if start == nil {
                issues.append(ValidationIssue(field: "since", reason: "must be an RFC 3339 timestamp, e.g. 2026-11-29T00:00:00Z"))
            }
            if end == nil {
                issues.append(ValidationIssue(field: "until", reason: "must be an RFC 3339 timestamp, e.g. 2026-11-29T00:00:00Z"))
            }
            if let start, let end {
                if start >= end {
                    issues.append(ValidationIssue(field: "since", reason: "must be before until"))
                } else if end.timeIntervalSince(start) > maxSeconds {
                    issues.append(ValidationIssue(field: "since", reason: "the range is longer than \(Int(maxSeconds / 86_400)) days"))
                }
            }
            guard issues.isEmpty, let start, let end else { throw ValidationFailure(issues) }
            return TimeRange(since: start, until: end)
        }
        let name = window ?? defaultWindow
        guard let seconds = windows[name] else {
            throw ValidationFailure([ValidationIssue(field: "window", reason: "must be one of 15m, 1h, 24h, 7d")])
        }
        return TimeRange(since: now.addingTimeInterval(-seconds), until: now)
    }
}

/// Validation issues, thrown together.
public struct ValidationFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var issues: [ValidationIssue]
    public init(_ issues: [ValidationIssue]) { self.issues = issues }
    public var description: String {
        issues.map { [$0.field, $0.reason].compactMap { $0 }.joined(separator: " ") }.joined(separator: "; ")
    }
}
