import Foundation
import PostgresClient
import TocsinCore

/// Chart series: events bucketed over a range, per platform or in total.
extension MetricEventRepository {
    public struct SeriesPoint: Sendable, Equatable {
        public var start: Date
        public var value: Double?
        public var samples: Int
    }

    public struct Series: Sendable, Equatable {
        public var platform: String?
        public var points: [SeriesPoint]
    }

    /// At most this many series (platforms) in one answer, the first by name.
    public static let maxSeries = 100

    /// Buckets over the range, per platform (or one series when `platform`
    /// is given, or `perPlatform` is false). Empty buckets are included with
    /// 0 samples (value 0 for count and sum, nil otherwise).
    public func series(_ query: SeriesQuery, range: TimeRange) async throws -> [Series] {
        let grouping = query.perPlatform && query.platform == nil ? "platform" : "NULL::text"
        let rowLimit = Self.maxSeries * (SeriesQuery.maxPoints + 1)
        let rows = try await database.read(
            """
            SELECT \(unescaped: grouping) AS platform,
                   date_bin(make_interval(secs => \(query.bucketSeconds)), occurred_at, 'epoch'::timestamptz) AS bucket,
                   \(Self.valueExpression(query.aggregation))
            FROM metric_events
            WHERE name = ANY(\(query.names)::text[]) AND occurred_at >= \(range.since) AND occurred_at < \(range.until)
              AND (\(query.platform)::text IS NULL OR platform = \(query.platform))
            GROUP BY 1, 2
            ORDER BY 1, 2
            LIMIT \(rowLimit)
            """)
        var byPlatform: [String?: [Date: SeriesPoint]] = [:]
        for row in rows {
            let platform: String? = try row.decode("platform")
            let start: Date = try row.decode("bucket")
            byPlatform[platform, default: [:]][start] = SeriesPoint(
                start: start, value: try row.decode("value"), samples: try row.decode("samples"))
        }
        if byPlatform.isEmpty && (query.platform != nil || !query.perPlatform) {
            byPlatform[query.platform] = [:]
        }
        let step = Double(query.bucketSeconds)
        let first = Date(timeIntervalSince1970: (range.since.timeIntervalSince1970 / step).rounded(.down) * step)
        let zeroWhenEmpty = query.aggregation == .count || query.aggregation == .sum
        let platforms = byPlatform.keys.sorted { ($0 ?? "") < ($1 ?? "") }.prefix(Self.maxSeries)
        return platforms.map { platform in
            let found = byPlatform[platform] ?? [:]
            var points: [SeriesPoint] = []
            var t = first
            while t < range.until {
                points.append(found[t] ?? SeriesPoint(start: t, value: zeroWhenEmpty ? 0 : nil, samples: 0))
                t = t.addingTimeInterval(step)
            }
            return Series(platform: query.platform ?? platform, points: points)
        }
    }

    /// The value and sample columns of one bucket.
    static func valueExpression(_ aggregation: SeriesQuery.Aggregation) -> PostgresQuery {
        switch aggregation {
        case .ratio(let numerator, let denominator):
            return """
                count(*) FILTER (WHERE name = ANY(\(numerator)::text[]))::float8
                    / NULLIF(count(*) FILTER (WHERE name = ANY(\(denominator)::text[])), 0) AS value,
                count(*) FILTER (WHERE name = ANY(\(denominator)::text[])) AS samples
                """
        case .count: return "count(*)::float8 AS value, count(*) AS samples"
        case .sum: return "sum(value) AS value, count(*) AS samples"
        case .avg: return "avg(value) AS value, count(*) AS samples"
        case .max: return "max(value) AS value, count(*) AS samples"
        case .min: return "min(value) AS value, count(*) AS samples"
        case .p95: return "percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS value, count(*) AS samples"
        }
    }
}
