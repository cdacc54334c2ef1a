import Foundation
import PostgresClient
import TocsinCore

/// The read side of metric events: the summary, the events table and chart
/// series. Every query is bounded by a time range on the partition key, so
/// its cost follows the range, not the history.
public struct MetricReads: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    // MARK: Summary

    /// Up to this many latency samples in the range, p95 is computed exactly
    /// from the events; above it, from the rollups' histograms (within 5 %).
    public static let exactPercentileLimit = 20_000

    /// The metrics summary of a range. Whole hours come from the hourly
    /// rollups and the partial hours at either end from the events, so the
    /// cost follows the number of hours, not the number of events. Counts
    /// and averages are exact; p95 is exact up to `exactPercentileLimit`
    /// samples.
    public func summary(range: TimeRange, platform: String?) async throws -> MetricsSummary {
        // [hoursFrom, hoursTo) is read from the rollups (empty when the range
        // holds no whole hour); the rest of [since, until) from the events.
        var hoursFrom = (range.since / 3600).rounded(.up) * 3600
        var hoursTo = (range.until / 3600).rounded(.down) * 3600
        if hoursTo <= hoursFrom {
            hoursFrom = range.until
            hoursTo = range.until
        }
        let parameters: [any PostgresEncodable] = [
            MetricsSummary.names, MetricsSummary.percentileNames, Date(timeIntervalSince1970: range.since),
            Date(timeIntervalSince1970: hoursFrom), Date(timeIntervalSince1970: hoursTo),
            Date(timeIntervalSince1970: range.until), platform, Self.exactPercentileLimit,
        ]
        // One round trip: the parts are tagged by `part`; the exact p95 and
        // the histogram buckets of the partial hours are each computed only
        // when needed (the one-time filter on the sample count skips the
        // other).
        let rows = try await pool.query(
            """
            WITH hours AS (
                SELECT nullif(platform, '') AS platform, grouping(platform) = 1 AS is_total, name, sum(count)::int8 AS n,
                       sum(sum) AS total, min(min) AS lo, max(max) AS hi,
                       tocsin_histogram_sum(histogram) FILTER (WHERE name = ANY($2::text[])) AS histogram
                FROM metric_rollups
                WHERE hour >= $4 AND hour < $5 AND name = ANY($1::text[]) AND ($7::text IS NULL OR platform = $7)
                GROUP BY GROUPING SETS ((platform, name), (name))
            ), edges AS (
                SELECT platform, grouping(platform) = 1 AS is_total, name, count(*) AS n, sum(value) AS total,
                       min(value) AS lo, max(value) AS hi
                FROM metric_events
                WHERE name = ANY($1::text[]) AND ($7::text IS NULL OR platform = $7)
                  AND ((occurred_at >= $3 AND occurred_at < $4) OR (occurred_at >= $5 AND occurred_at < $6))
                GROUP BY GROUPING SETS ((platform, name), (name))
            ), samples AS (
                SELECT coalesce((SELECT sum(n) FROM hours WHERE is_total AND name = ANY($2::text[])), 0)
                     + coalesce((SELECT sum(n) FROM edges WHERE is_total AND name = ANY($2::text[])), 0) AS n
            )
            SELECT 'hours' AS part, platform, is_total, name, n, total, lo, hi, histogram::text AS histogram,
                   NULL::int AS bucket, NULL::float8 AS p95 FROM hours
            UNION ALL
            SELECT 'edges', platform, is_total, name, n, total, lo, hi, NULL, NULL, NULL FROM edges
            UNION ALL
            SELECT 'exact', platform, grouping(platform) = 1, name, count(*), NULL, NULL, NULL, NULL, NULL,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY value)
            FROM metric_events
            WHERE (SELECT n FROM samples) <= $8
              AND name = ANY($2::text[]) AND occurred_at >= $3 AND occurred_at < $6 AND ($7::text IS NULL OR platform = $7)
            GROUP BY GROUPING SETS ((platform, name), (name))
            UNION ALL
            SELECT 'bucket', platform, grouping(platform) = 1, name, count(*), NULL, NULL, NULL, NULL,
                   tocsin_histogram_bucket(value), NULL
            FROM metric_events
            WHERE (SELECT n FROM samples) > $8
              AND name = ANY($2::text[]) AND ($7::text IS NULL OR platform = $7)
              AND ((occurred_at >= $3 AND occurred_at < $4) OR (occurred_at >= $5 AND occurred_at < $6))
            GROUP BY GROUPING SETS ((platform, name, tocsin_histogram_bucket(value)), (name, tocsin_histogram_bucket(value)))
            """, parameters)
        var parts = SummaryParts()
        var exact: [SummaryParts.Key: Double] = [:]
        for row in rows {
            switch try row.decode("part", as: String.self) {
            case "hours": try parts.add(row, histogram: try row.decode("histogram", as: [Int]?.self))
            case "edges": try parts.add(row, histogram: nil)
            case "exact": exact[try SummaryParts.key(row)] = try row.decode("p95", as: Double?.self)
            default: try parts.addBucket(row)
            }
        }
        return MetricsSummary(range: range, aggregates: parts.aggregates(exact: exact))
    }

    /// Sums of the rollup rows and raw rows of one summary.
    struct SummaryParts {
        struct Key: Hashable {
            var platform: String?
            var isTotal: Bool
            var name: String
        }

        struct Part {
            var count = 0
            var sum = 0.0
            var min = Double.infinity
            var max = -Double.infinity
            var histogram = Array(repeating: 0, count: LatencyHistogram.bucketCount)
        }

        var parts: [Key: Part] = [:]

        static func key(_ row: PostgresRow) throws -> Key {
            Key(platform: try row.decode("platform"), isTotal: try row.decode("is_total"), name: try row.decode("name"))
        }

        mutating func add(_ row: PostgresRow, histogram: [Int]?) throws {
            let key = try Self.key(row)
            var part = parts[key] ?? Part()
            part.count += try row.decode("n", as: Int.self)
            part.sum += try row.decode("total", as: Double?.self) ?? 0
            part.min = Swift.min(part.min, try row.decode("lo", as: Double?.self) ?? .infinity)
            part.max = Swift.max(part.max, try row.decode("hi", as: Double?.self) ?? -.infinity)
            if let histogram {
                for (i, n) in histogram.enumerated() where i < part.histogram.count { part.histogram[i] += n }
            }
            parts[key] = part
        }

        mutating func addBucket(_ row: PostgresRow) throws {
            let key = try Self.key(row)
            let bucket: Int = try row.decode("bucket")
            parts[key, default: Part()].histogram[bucket] += try row.decode("n", as: Int.self)
        }

        func percentileSamples(_ names: [String]) -> Int {
            parts.filter { $0.key.isTotal && names.contains($0.key.name) }.values.reduce(0) { $0 + $1.count }
        }

        /// With `exact` percentiles when they were computed, else estimates
        /// from the histograms (names without a histogram get none).
        func aggregates(exact: [Key: Double]) -> [MetricsSummary.Aggregate] {
            parts.map { key, part in
                var p95: Double?
                if MetricsSummary.percentileNames.contains(key.name) {
                    p95 = exact[key] ?? LatencyHistogram.percentile(part.histogram, fraction: 0.95, min: part.min, max: part.max)
                }
                return MetricsSummary.Aggregate(
                    platform: key.platform, isTotal: key.isTotal, name: key.name, count: part.count,
                    average: part.count > 0 ? part.sum / Double(part.count) : nil, p95: p95)
            }
        }
    }

    // MARK: Events

    public struct StoredEvent: Sendable, Equatable {
        public var id: Int
        public var occurredAt: Date
        public var receivedAt: Date
        public var name: String
        public var platform: String?
        public var value: Double
        /// The labels object as JSON text.
        public var labelsJSON: String
    }

    public struct EventPage: Sendable {
        public var events: [StoredEvent]
        public var nextCursor: String?
    }

    public struct EventFilter: Sendable {
        /// Exact name, or a prefix ending in `.*` (`upload.*`).
        public var name: String?
        public var platform: String?
        public var range: TimeRange
        public var limit: Int
        public var cursor: String?
        public init(name: String? = nil, platform: String? = nil, range: TimeRange, limit: Int = 100, cursor: String? = nil) {
            self.name = name
            self.platform = platform
            self.range = range
            self.limit = limit
            self.cursor = cursor
        }
    }

    /// Cursors are `<occurred_at in µs>.<id>` of the last row, opaque to
    /// clients.
    public static func decodeCursor(_ cursor: String) -> (micros: Int, id: Int)? {
        let parts = cursor.split(separator: ".")
        guard parts.count == 2, let micros = Int(parts[0]), let id = Int(parts[1]) else { return nil }
        return (micros, id)
    }

    /// Events newest first, `limit` per page, continued with `nextCursor`.
    public func events(_ filter: EventFilter) async throws -> EventPage {
        var exact: String?
        var prefix: String?
        if let name = filter.name {
            if name.hasSuffix(".*") { prefix = String(name.dropLast(1)) } else { exact = name }
        }
        let cursor = filter.cursor.flatMap(Self.decodeCursor)
        let rows = try await pool.query(
            """
            SELECT id, occurred_at, received_at, name, platform, value, labels::text AS labels,
                   (extract(epoch FROM occurred_at) * 1000000)::int8 AS occurred_us
            FROM metric_events
            WHERE occurred_at >= $1 AND occurred_at < $2
              AND ($3::text IS NULL OR name = $3)
              AND ($4::text IS NULL OR starts_with(name, $4))
              AND ($5::text IS NULL OR platform = $5)
              AND ($6::int8 IS NULL OR (occurred_at, id) < ('epoch'::timestamptz + $6::int8 * interval '1 microsecond', $7::int8))
            ORDER BY occurred_at DESC, id DESC
            LIMIT $8
            """,
            [Date(timeIntervalSince1970: filter.range.since), Date(timeIntervalSince1970: filter.range.until),
             exact, prefix, filter.platform, cursor?.micros, cursor?.id, filter.limit + 1])
        var events: [StoredEvent] = []
        var next: String?
        for (i, row) in rows.enumerated() {
            if i == filter.limit {
                let last = rows[i - 1]
                next = "\(try last.decode("occurred_us", as: Int.self)).\(try last.decode("id", as: Int.self))"
                break
            }
            events.append(StoredEvent(
                id: try row.decode("id"), occurredAt: try row.decode("occurred_at"), receivedAt: try row.decode("received_at"),
                name: try row.decode("name"), platform: try row.decode("platform"), value: try row.decode("value"),
                labelsJSON: try row.decode("labels")))
        }
        return EventPage(events: events, nextCursor: next)
    }

    // MARK: Series

    public struct SeriesPoint: Sendable, Equatable {
        public var start: Double
        public var value: Double?
        public var samples: Int
    }

    public struct Series: Sendable, Equatable {
        public var platform: String?
        public var points: [SeriesPoint]
    }

    /// Buckets over the range, per platform (or one series when `platform`
    /// is given, or `perPlatform` is false). Empty buckets are included with
    /// 0 samples (value 0 for count and sum, nil otherwise).
    public func series(_ query: SeriesQuery, range: TimeRange) async throws -> [Series] {
        let since = Date(timeIntervalSince1970: range.since), until = Date(timeIntervalSince1970: range.until)
        let valueExpression: String
        let names: [String]
        switch query.aggregation {
        case .ratio(let numerator, let denominator):
            names = Array(Set(numerator + denominator)).sorted()
            valueExpression = """
                count(*) FILTER (WHERE name = ANY($6::text[]))::float8
                    / NULLIF(count(*) FILTER (WHERE name = ANY($7::text[])), 0) AS value,
                count(*) FILTER (WHERE name = ANY($7::text[])) AS samples
                """
        case .count: names = query.names; valueExpression = "count(*)::float8 AS value, count(*) AS samples"
        case .sum: names = query.names; valueExpression = "sum(value) AS value, count(*) AS samples"
        case .avg: names = query.names; valueExpression = "avg(value) AS value, count(*) AS samples"
        case .max: names = query.names; valueExpression = "max(value) AS value, count(*) AS samples"
        case .min: names = query.names; valueExpression = "min(value) AS value, count(*) AS samples"
        case .p95:
            names = query.names
            valueExpression = "percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS value, count(*) AS samples"
        }
        var parameters: [any PostgresEncodable] = [names, since, until, query.bucketSeconds, query.platform]
        if case .ratio(let numerator, let denominator) = query.aggregation {
            parameters += [numerator, denominator]
        }
        let grouping = query.perPlatform && query.platform == nil ? "platform" : "NULL::text"
        // Only fixed SQL fragments are interpolated; every value is a parameter.
        let rows = try await pool.query(
            """
            SELECT \(grouping) AS platform,
                   (extract(epoch FROM date_bin(make_interval(secs => $4), occurred_at, 'epoch'::timestamptz)))::float8 AS bucket,
                   \(valueExpression)
            FROM metric_events
            WHERE name = ANY($1::text[]) AND occurred_at >= $2 AND occurred_at < $3
              AND ($5::text IS NULL OR platform = $5)
            GROUP BY 1, 2
            """,
            parameters)
        var byPlatform: [String?: [Double: SeriesPoint]] = [:]
        for row in rows {
            let platform: String? = try row.decode("platform")
            let start: Double = try row.decode("bucket")
            byPlatform[platform, default: [:]][start] = SeriesPoint(
                start: start, value: try row.decode("value"), samples: try row.decode("samples"))
        }
        if byPlatform.isEmpty && (query.platform != nil || !query.perPlatform) {
            byPlatform[query.platform] = [:]
        }
        let step = Double(query.bucketSeconds)
        let first = (range.since / step).rounded(.down) * step
        let zeroWhenEmpty: Bool = {
            switch query.aggregation {
            case .count, .sum: return true
            default: return false
            }
        }()
        return byPlatform.keys.sorted { ($0 ?? "") < ($1 ?? "") }.map { platform in
            let found = byPlatform[platform] ?? [:]
            var points: [SeriesPoint] = []
            var t = first
            while t < range.until {
                points.append(found[t] ?? SeriesPoint(start: t, value: zeroWhenEmpty ? 0 : nil, samples: 0))
                t += step
            }
            return Series(platform: query.platform ?? platform, points: points)
        }
    }
}

extension MetricReads {
    public struct TooManyPoints: Error, CustomStringConvertible {
        public var limit: Int
        public var description: String { "more than \(limit) events in the range; backtest a shorter range" }
    }

    /// Events of `names` in [since, until), oldest first, for backtests.
    public func points(names: [String], since: Double, until: Double, limit: Int = 2_000_000) async throws -> [RuleMath.Point] {
        let rows = try await pool.query(
            """
            SELECT extract(epoch FROM occurred_at)::float8 AS t, name, platform, value FROM metric_events
            WHERE name = ANY($1::text[]) AND occurred_at >= $2 AND occurred_at < $3
            ORDER BY occurred_at, id LIMIT $4
            """,
            [names, Date(timeIntervalSince1970: since), Date(timeIntervalSince1970: until), limit + 1])
        guard rows.count <= limit else { throw TooManyPoints(limit: limit) }
        return try rows.map { row in
            RuleMath.Point(time: try row.decode("t"), name: try row.decode("name"), platform: try row.decode("platform"),
                           value: try row.decode("value"))
        }
    }

    /// Backtests `rule` over the stored events of `range`.
    public func backtest(_ rule: Rule, range: TimeRange) async throws -> Backtest.Result {
        let points = try await points(names: rule.metricNames, since: range.since - Backtest.lookback(rule), until: range.until)
        return Backtest.run(rule, points: points, range: range)
    }
}
