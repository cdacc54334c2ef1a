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

    public func summary(range: TimeRange, platform: String?) async throws -> MetricsSummary {
        let since = Date(timeIntervalSince1970: range.since), until = Date(timeIntervalSince1970: range.until)
        let rows = try await pool.query(
            """
            SELECT platform, grouping(platform) = 1 AS is_total, name, count(*) AS n, avg(value) AS average,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY value) FILTER (WHERE name = ANY($4::text[])) AS p95
            FROM metric_events
            WHERE name = ANY($1::text[]) AND occurred_at >= $2 AND occurred_at < $3
              AND ($5::text IS NULL OR platform = $5)
            GROUP BY GROUPING SETS ((platform, name), (name))
            """,
            [MetricsSummary.names, since, until, MetricsSummary.percentileNames, platform])
        let aggregates = try rows.map { row in
            MetricsSummary.Aggregate(
                platform: try row.decode("platform"),
                isTotal: try row.decode("is_total"),
                name: try row.decode("name"),
                count: try row.decode("n"),
                average: try row.decode("average"),
                p95: try row.decode("p95"))
        }
        return MetricsSummary(range: range, aggregates: aggregates)
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
