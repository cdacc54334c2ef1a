/// `GET /api/monitoring/metrics`: the product's metrics per platform and in
/// total for a time range.
public struct MetricsSummary: Sendable, Equatable, Codable {
    public struct Rate: Sendable, Equatable, Codable {
        public var success: Int
        public var failure: Int
        /// success ÷ (success + failure); nil when there were no attempts.
        public var successRate: Double?

        enum CodingKeys: String, CodingKey {
            case success, failure
            case successRate = "success_rate"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(success, forKey: .success)
            try c.encode(failure, forKey: .failure)
            try c.encode(successRate, forKey: .successRate)  // explicit null
        }

        init(success: Int, failure: Int) {
            self.success = success
            self.failure = failure
            self.successRate = success + failure > 0 ? Double(success) / Double(success + failure) : nil
        }
    }

    public struct Webhook: Sendable, Equatable, Codable {
        public var received: Int
        public var processed: Int
        public var avgLatency: Double?
        public var p95Latency: Double?
        enum CodingKeys: String, CodingKey {
            case received, processed
            case avgLatency = "avg_latency_s"
            case p95Latency = "p95_latency_s"
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(received, forKey: .received)
            try c.encode(processed, forKey: .processed)
            try c.encode(avgLatency, forKey: .avgLatency)
            try c.encode(p95Latency, forKey: .p95Latency)
        }
    }

    public struct TokenRefresh: Sendable, Equatable, Codable {
        public var success: Int
        public var failure: Int
    }

    public struct API: Sendable, Equatable, Codable {
        public var calls: Int
        public var avgLatency: Double?
        public var p95Latency: Double?
        enum CodingKeys: String, CodingKey {
            case calls
            case avgLatency = "avg_latency_s"
            case p95Latency = "p95_latency_s"
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(calls, forKey: .calls)
            try c.encode(avgLatency, forKey: .avgLatency)
            try c.encode(p95Latency, forKey: .p95Latency)
        }
    }

    public struct Worker: Sendable, Equatable, Codable {
        public var runs: Int
        public var avgDuration: Double?
        enum CodingKeys: String, CodingKey {
            case runs
            case avgDuration = "avg_duration_s"
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(runs, forKey: .runs)
            try c.encode(avgDuration, forKey: .avgDuration)
        }
    }

    public struct Group: Sendable, Equatable, Codable {
        public var platform: String?
        public var oauth: Rate
        public var upload: Rate
        public var webhook: Webhook
        public var tokenRefresh: TokenRefresh
        public var api: API
        public var worker: Worker
        enum CodingKeys: String, CodingKey {
            case platform, oauth, upload, webhook, api, worker
            case tokenRefresh = "token_refresh"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(platform, forKey: .platform)  // null in the totals
            try c.encode(oauth, forKey: .oauth)
            try c.encode(upload, forKey: .upload)
            try c.encode(webhook, forKey: .webhook)
            try c.encode(tokenRefresh, forKey: .tokenRefresh)
            try c.encode(api, forKey: .api)
            try c.encode(worker, forKey: .worker)
        }
    }

    public var since: String
    public var until: String
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
        since = RFC3339.format(range.since)
        until = RFC3339.format(range.until)
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
