/// A chart series request: which events, how to aggregate them, bucket size.
public struct SeriesQuery: Sendable, Equatable {
    public enum Aggregation: Sendable, Equatable {
        case count, sum, avg, p95, max, min
        /// count(numerator names) ÷ count(denominator names) per bucket.
        case ratio(numerator: [String], denominator: [String])
    }

    public var names: [String]
    public var platform: String?
    public var aggregation: Aggregation
    public var bucketSeconds: Int
    /// One series per platform (default) or one for all.
    public var perPlatform: Bool

    public static let buckets: [String: Int] = ["1m": 60, "5m": 300, "1h": 3600, "1d": 86_400]
    public static let maxPoints = 2_000
    /// Names in one of `name`, `numerator`, `denominator`.
    public static let maxNames = 32

    public init(names: [String], platform: String?, aggregation: Aggregation, bucketSeconds: Int, perPlatform: Bool = true) {
        self.names = names
        self.platform = platform
        self.aggregation = aggregation
        self.bucketSeconds = bucketSeconds
        self.perPlatform = perPlatform
    }

    /// Builds a query from request parameters: `name` (comma-separated),
    /// `agg` (count, sum, avg, p95, max, min, ratio), `numerator` and
    /// `denominator` for ratio, `bucket` (1m, 5m, 1h, 1d), `platform`.
    public static func parse(
        name: String?, agg: String?, numerator: String?, denominator: String?, bucket: String?, platform: String?,
        range: TimeRange
    ) throws(ValidationFailure) -> SeriesQuery {
        var issues: [ValidationIssue] = []
        func names(_ text: String?, field: String) -> [String] {
            guard let text, !text.isEmpty else {
                issues.append(ValidationIssue(field: field, reason: "is required"))
                return []
            }
            let list = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard list.count <= maxNames else {
                issues.append(ValidationIssue(field: field, reason: "at most \(maxNames) metric names"))
                return []
            }
            for item in list where !MetricName.isValid(item) {
                issues.append(ValidationIssue(field: field, reason: "'\(item.prefix(64))' is not a valid metric name"))
            }
            return list
        }
        let bucketName = bucket ?? "5m"
        let seconds = buckets[bucketName]
        if seconds == nil {
            issues.append(ValidationIssue(field: "bucket", reason: "must be one of 1m, 5m, 1h, 1d"))
        }
        if let platform, !PlatformName.isValid(platform) {
            issues.append(ValidationIssue(field: "platform", reason: "is not a valid platform label"))
        }
        var aggregation: Aggregation = .count
        var seriesNames: [String] = []
        switch agg ?? "count" {
        case "count": aggregation = .count
        case "sum": aggregation = .sum
        case "avg": aggregation = .avg
        case "p95": aggregation = .p95
        case "max": aggregation = .max
        case "min": aggregation = .min
        case "ratio":
            let n = names(numerator, field: "numerator")
            let d = names(denominator, field: "denominator")
            aggregation = .ratio(numerator: n, denominator: d)
            seriesNames = Array(Set(n + d)).sorted()
        default:
            issues.append(ValidationIssue(field: "agg", reason: "must be one of count, sum, avg, p95, max, min, ratio"))
        }
        if case .ratio = aggregation {} else { seriesNames = names(name, field: "name") }
        if let seconds, range.seconds / Double(seconds) > Double(maxPoints) {
            issues.append(ValidationIssue(field: "bucket", reason: "too many buckets for the range (at most \(maxPoints)); use a larger bucket"))
        }
        guard issues.isEmpty, let seconds else { throw ValidationFailure(issues) }
        return SeriesQuery(names: seriesNames, platform: platform, aggregation: aggregation, bucketSeconds: seconds)
    }
}
