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

    /// The metrics summary of a range. Whole hours come from the hourly
    /// rollups and the partial hours at either end from the events, so the
    /// cost follows the number of hours, not the number of events. Counts
    /// and averages are exact; p95 is exact up to `exactPercentileLimit`
    /// samples.
    public func summary(range: TimeRange, platform: String?) async throws -> MetricsSummary {
        // [hoursFrom, hoursTo) is read from the rollups (empty when the range
        // holds no whole hour); the rest of [since, until) from the events.
        var hoursFrom = Date(timeIntervalSince1970: (range.since.timeIntervalSince1970 / 3600).rounded(.up) * 3600)
        var hoursTo = Date(timeIntervalSince1970: (range.until.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
        if hoursTo <= hoursFrom {
            hoursFrom = range.until
            hoursTo = range.until
        }
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
                       sum(sum) AS total, min(min) AS lo, max(max) AS hi,
                       tocsin_histogram_sum(histogram) FILTER (WHERE name = ANY(\(percentileNames)::text[])) AS histogram
                FROM metric_rollups
                WHERE hour >= \(hoursFrom) AND hour < \(hoursTo) AND name = ANY(\(names)::text[]) AND (\(platform)::text IS NULL OR platform = \(platform))
                GROUP BY GROUPING SETS ((platform, name), (name))
            ), edges AS (
                SELECT platform, grouping(platform) = 1 AS is_total, name, count(*) AS n, sum(value) AS total,
                       min(value) AS lo, max(value) AS hi
                FROM metric_events
                WHERE name = ANY(\(names)::text[]) AND (\(platform)::text IS NULL OR platform = \(platform))
                  AND ((occurred_at >= \(since) AND occurred_at < \(hoursFrom)) OR (occurred_at >= \(hoursTo) AND occurred_at < \(until)))
                GROUP BY GROUPING SETS ((platform, name), (name))
            ), samples AS (
                SELECT coalesce((SELECT sum(n) FROM hours WHERE is_total AND name = ANY(\(percentileNames)::text[])), 0)
                     + coalesce((SELECT sum(n) FROM edges WHERE is_total AND name = ANY(\(percentileNames)::text[])), 0) AS n
            )
            SELECT 'hours' AS part, platform, is_total, name, n, total, lo, hi, histogram::text AS histogram,
                   NULL::int AS bucket, NULL::float8 AS p95 FROM hours
            UNION ALL
            SELECT 'edges', platform, is_total, name, n, total, lo, hi, NULL, NULL, NULL FROM edges
            UNION ALL
            SELECT 'exact', platform, grouping(platform) = 1, name, count(*), NULL, NULL, NULL, NULL, NULL,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY value)
            FROM metric_events
            WHERE (SELECT n FROM samples) <= \(limit)
              AND name = ANY(\(percentileNames)::text[]) AND occurred_at >= \(since) AND occurred_at < \(until) AND (\(platform)::text IS NULL OR platform = \(platform))
            GROUP BY GROUPING SETS ((platform, name), (name))
            UNION ALL
            SELECT 'bucket', platform, grouping(platform) = 1, name, count(*), NULL, NULL, NULL, NULL,
                   tocsin_histogram_bucket(value), NULL
            FROM metric_events
            WHERE (SELECT n FROM samples) > \(limit)
              AND name = ANY(\(percentileNames)::text[]) AND (\(platform)::text IS NULL OR platform = \(platform))
              AND ((occurred_at >= \(since) AND occurred_at < \(hoursFrom)) OR (occurred_at >= \(hoursTo) AND occurred_at < \(until)))
            GROUP BY GROUPING SETS ((platform, name, tocsin_histogram_bucket(value)), (name, tocsin_histogram_bucket(value)))
            """)
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
}
