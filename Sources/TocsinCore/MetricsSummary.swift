import Foundation

/// `GET /api/monitoring/metrics`: the product's metrics per platform and in
/// total for a time range.
public struct MetricsSummary: Sendable, Equatable {
    public struct Rate: Sendable, Equatable {
        public var success: Int
        public var failure: Int
        /// success ÷ (success + failure); nil when there were no attempts.
        public var successRate: Double?

        init(success: Int, failure: Int) {
            self.success = success
            self.failure = failure
            self.successRate = success + failure > 0 ? Double(success) / Double(success + failure) : nil
        }
    }

    public struct Webhook: Sendable, Equatable {
        public var received: Int
        public var processed: Int
        public var avgLatency: Double?
        public var p95Latency: Double?
    }

    public struct TokenRefresh: Sendable, Equatable {
        public var success: Int
        public var failure: Int
    }

    public struct API: Sendable, Equatable {
        public var calls: Int
        public var avgLatency: Double?
        public var p95Latency: Double?
    }

    public struct Worker: Sendable, Equatable {
        public var runs: Int
        public var avgDuration: Double?
    }

    public struct Group: Sendable, Equatable {
        public var platform: String?
        public var oauth: Rate
        public var upload: Rate
        public var webhook: Webhook
        public var tokenRefresh: TokenRefresh
        public var api: API
        public var worker: Worker
    }

    public var since: Date
    public var until: Date
    public var platforms: [Group]
    public var totals: Group

    /// One aggregate row: the events of `name` (for `platform`, or all
    /// platforms when `isTotal`).
    public struct Aggregate: Sendable, Equatable {
        public var platform: String?
        public var isTotal: Bool
        public var name: String
        public var count: Int
        public var average: Double?
        public var p95: Double?
        public init(platform: String?, isTotal: Bool, name: String, count: Int, average: Double?, p95: Double?) {
            self.platform = platform
            self.isTotal = isTotal
            self.name = name
            self.count = count
            self.average = average
            self.p95 = p95
        }
    }

    /// The names the summary reads.
    public static let names = MetricName.vocabulary
    /// The names whose p95 is reported.
    public static let percentileNames = ["webhook.latency", "api.latency"]

    /// Builds the summary from aggregate rows. Platforms are listed by name;
    /// events without a platform count in the totals only.
    public init(range: TimeRange, aggregates: [Aggregate]) {
        since = range.since
        until = range.until
        var perPlatform: [String: [String: Aggregate]] = [:]
        var total: [String: Aggregate] = [:]
        for row in aggregates {
            if row.isTotal {
                total[row.name] = row
            } else if let platform = row.platform {
                perPlatform[platform, default: [:]][row.name] = row
            }
        }
        platforms = perPlatform.keys.sorted().map { Self.group(platform: $0, perPlatform[$0]!) }
        totals = Self.group(platform: nil, total)
    }

    static func group(platform: String?, _ rows: [String: Aggregate]) -> Group {
        func count(_ name: String) -> Int { rows[name]?.count ?? 0 }
        func average(_ name: String) -> Double? { rows[name].flatMap { $0.count > 0 ? $0.average : nil } }
        func p95(_ name: String) -> Double? { rows[name].flatMap { $0.count > 0 ? $0.p95 : nil } }
        return Group(
            platform: platform,
            oauth: Rate(success: count("oauth.success"), failure: count("oauth.failure")),
            upload: Rate(success: count("upload.success"), failure: count("upload.failure")),
            webhook: Webhook(received: count("webhook.received"), processed: count("webhook.processed"),
                             avgLatency: average("webhook.latency"), p95Latency: p95("webhook.latency")),
            tokenRefresh: TokenRefresh(success: count("token.refresh.success"), failure: count("token.refresh.failure")),
            api: API(calls: count("api.call"), avgLatency: average("api.latency"), p95Latency: p95("api.latency")),
            worker: Worker(runs: count("worker.run"), avgDuration: average("worker.duration"))
        )
    }
}
