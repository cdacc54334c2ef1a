import Foundation
import PostgresClient
import TocsinCore

/// The metrics summary. Like every read of metric events it is bounded by a
/// time range on the partition key, so its cost follows the range, not the
/// history.
extension MetricEventRepository {

    /// Up to this many latency samples in the range, p95 is computed exactly
    /// from the events; above it, from the rollups' histograms (within 5 %).
    public static let exactPercentileLimit = 20_000

    /// How a summary reads [since, until): the rollups of the hours
    /// [rollupsFrom, rollupsTo) and event ranges added (+1) or taken away
    /// (-1). Counts, sums and histogram buckets subtract, so each partial
    /// hour at an end is read from its side with less of it: the events of
    /// [since, next hour) or the start hour's rollup less those of
    /// [hour, since); at the end, the events of [hour, until) or the end
    /// hour's rollup less those of [until, end of hour) — always the latter
    /// when the range ends at `now` (a rollup is written in the transaction
    /// of its events, so the current hour's is exact in any snapshot, and
    /// after now there are only events stamped ahead, usually none).
    struct SummaryPlan: Equatable {
        var rollupsFrom: Date
        var rollupsTo: Date
        var events: [EventRange]

        struct EventRange: Equatable {
            var from: Date
            var to: Date
            var sign: Int
        }

        init(rollupsFrom: Date, rollupsTo: Date, events: [EventRange]) {
            self.rollupsFrom = rollupsFrom
            self.rollupsTo = rollupsTo
            self.events = events
        }

        /// The plan that reads the fewest events (by time span; after `now`
        /// counts as none): the events of the whole range when no plan
        /// with rollups reads less.
        init(since: Date, until: Date, now: Date) {
            let plain = SummaryPlan(rollupsFrom: until, rollupsTo: until, events: [EventRange(from: since, to: until, sign: 1)])
            let startHour = EvaluationRepository.hourFloor(since), nextHour = EvaluationRepository.hourCeiling(since)
            let endHour = EvaluationRepository.hourFloor(until), endNext = EvaluationRepository.hourCeiling(until)
            var from = since, to = until, cost = 0.0
            var events: [EventRange] = []
            if since != startHour {
                let add = nextHour.timeIntervalSince(since), subtract = since.timeIntervalSince(startHour)
                if add <= subtract {
                    events.append(EventRange(from: since, to: nextHour, sign: 1))
                    from = nextHour
                    cost += add
                } else {
                    events.append(EventRange(from: startHour, to: since, sign: -1))
                    from = startHour
                    cost += subtract
                }
            }
            if until != endHour {
                let atNow = until >= now.addingTimeInterval(-1)
                let add = until.timeIntervalSince(endHour), subtract = atNow ? 0 : endNext.timeIntervalSince(until)
                if subtract < add {
                    events.append(EventRange(from: until, to: endNext, sign: -1))
                    to = endNext
                    cost += subtract
                } else {
                    events.append(EventRange(from: endHour, to: until, sign: 1))
                    to = endHour
                    cost += add
                }
            }
            guard from < to, cost < until.timeIntervalSince(since) else {
                self = plain
                return
            }
            self.init(rollupsFrom: from, rollupsTo: to, events: events)
        }
    }

    /// The metrics summary of a range: whole hours from the hourly rollups,
    /// the partial hours at either end as `SummaryPlan` says, so the cost
    /// follows the number of hours, not the number of events. Counts and
    /// averages are exact; p95 is exact up to `exactPercentileLimit`
    /// samples, else estimated from the histograms (within 5 %).
    public func summary(range: TimeRange, platform: String?, now: Date) async throws -> MetricsSummary {
        let plan = SummaryPlan(since: range.since, until: range.until, now: now)
        let hoursFrom = plan.rollupsFrom, hoursTo = plan.rollupsTo
        // At most two ranges; unused ones are empty.
        let edge = plan.events + Array(repeating: SummaryPlan.EventRange(from: range.until, to: range.until, sign: 1),
                                       count: 2 - plan.events.count)
        let (a0, a1, aSign) = (edge[0].from, edge[0].to, edge[0].sign)
        let (b0, b1, bSign) = (edge[1].from, edge[1].to, edge[1].sign)
        let names = MetricsSummary.names, percentileNames = MetricsSummary.percentileNames
        let since = range.since, until = range.until, limit = Self.exactPercentileLimit
        // One round trip: the parts are tagged by `part`; the exact p95 and
        // the histogram buckets of the partial hours are each computed only
        // when needed (the one-time filter on the sample count skips the
        // other).
        let rows = try await database.read(
            """
            WITH hours AS (
                SELECT nullif(platform, '') AS platform, grouping(platform) = 1 AS is_total, name, sum(count)::int8 AS n,
                       sum(sum) AS total, min(min) AS lo, max(max) AS hi
                FROM metric_rollups
                WHERE hour >= \(hoursFrom) AND hour < \(hoursTo) AND name = ANY(\(names)::text[]) AND (\(platform)::text IS NULL OR platform = \(platform))
                GROUP BY GROUPING SETS ((platform, name), (name))
            ), edge_events AS (
                SELECT platform, name, value,
                       CASE WHEN occurred_at >= \(a0) AND occurred_at < \(a1) THEN \(aSign)::int4 ELSE \(bSign)::int4 END AS sign
                FROM metric_events
                WHERE name = ANY(\(names)::text[]) AND (\(platform)::text IS NULL OR platform = \(platform))
                  AND ((occurred_at >= \(a0) AND occurred_at < \(a1)) OR (occurred_at >= \(b0) AND occurred_at < \(b1)))
            ), edges AS (
                SELECT platform, grouping(platform) = 1 AS is_total, name, sign, count(*) AS n, sum(value) AS total,
                       min(value) AS lo, max(value) AS hi
                FROM edge_events
                GROUP BY GROUPING SETS ((platform, name, sign), (name, sign))
            ), samples AS (
                SELECT coalesce((SELECT sum(n) FROM hours WHERE is_total AND name = ANY(\(percentileNames)::text[])), 0)
                     + coalesce((SELECT sum(sign * n) FROM edges WHERE is_total AND name = ANY(\(percentileNames)::text[])), 0) AS n
            )
            SELECT 'hours' AS part, platform, is_total, name, n, total, lo, hi, NULL::int AS bucket, NULL::float8 AS p95,
                   1 AS sign FROM hours
            UNION ALL
            SELECT 'edges', platform, is_total, name, n, total, lo, hi, NULL, NULL, sign FROM edges
            UNION ALL
            -- The hours' histograms, summed bucket by bucket (set-based: a
            -- per-row array function costs more than the rest of the query),
            -- per platform only: the totals' buckets are their sums, added
            -- up in SummaryParts (grouping sets here sorted the buckets
            -- twice, half of the whole query's time).
            SELECT 'bucket', nullif(platform, ''), false, name, sum(x)::int8, NULL, NULL, NULL, (i - 1)::int,
                   NULL, 1
            FROM metric_rollups r CROSS JOIN LATERAL unnest(r.histogram) WITH ORDINALITY AS u(x, i)
            WHERE (SELECT n FROM samples) > \(limit)
              AND hour >= \(hoursFrom) AND hour < \(hoursTo) AND name = ANY(\(percentileNames)::text[])
              AND (\(platform)::text IS NULL OR platform = \(platform)) AND x <> 0
            GROUP BY platform, name, i
            UNION ALL
            SELECT 'exact', platform, grouping(platform) = 1, name, count(*), NULL, NULL, NULL, NULL,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY value), 1
            FROM metric_events
            WHERE (SELECT n FROM samples) <= \(limit)
              AND name = ANY(\(percentileNames)::text[]) AND occurred_at >= \(since) AND occurred_at < \(until) AND (\(platform)::text IS NULL OR platform = \(platform))
            GROUP BY GROUPING SETS ((platform, name), (name))
            UNION ALL
            SELECT 'bucket', platform, false, name, count(*), NULL, NULL, NULL,
                   tocsin_histogram_bucket(value), NULL, sign
            FROM edge_events
            WHERE (SELECT n FROM samples) > \(limit) AND name = ANY(\(percentileNames)::text[])
            GROUP BY platform, name, sign, tocsin_histogram_bucket(value)
            """)
        var parts = SummaryParts()
        var exact: [SummaryParts.Key: Double] = [:]
        for row in rows {
            switch try row.decode("part", as: String.self) {
            case "hours", "edges": try parts.add(row)
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

        /// A row of rollups or events, added or (sign -1) taken away; the
        /// events taken away leave the bounds as the rollups had them.
        mutating func add(_ row: PostgresRow) throws {
            let key = try Self.key(row)
            let sign: Int = try row.decode("sign")
            var part = parts[key] ?? Part()
            part.count += sign * (try row.decode("n", as: Int.self))
            part.sum += Double(sign) * (try row.decode("total", as: Double?.self) ?? 0)
            if sign > 0 {
                part.min = Swift.min(part.min, try row.decode("lo", as: Double?.self) ?? .infinity)
                part.max = Swift.max(part.max, try row.decode("hi", as: Double?.self) ?? -.infinity)
            }
            parts[key] = part
        }

        /// A bucket of one platform's histogram (the query's bucket rows are
        /// per platform), added to the platform's and to the name's total.
        mutating func addBucket(_ row: PostgresRow) throws {
            let key = try Self.key(row)
            let bucket: Int = try row.decode("bucket")
            guard bucket >= 0, bucket < LatencyHistogram.bucketCount else { return }
            let n = (try row.decode("sign", as: Int.self)) * (try row.decode("n", as: Int.self))
            parts[key, default: Part()].histogram[bucket] += n
            parts[Key(platform: nil, isTotal: true, name: key.name), default: Part()].histogram[bucket] += n
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
}
