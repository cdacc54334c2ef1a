import Foundation
import PostgresClient
import TocsinCore

/// The `metric_events` table and its hourly rollups: ingestion here, the
/// reads (summary, series, event pages, backtest points) in the extensions.
public struct MetricEventRepository: Sendable {
    let database: Database

    public enum IngestOutcome: Sendable, Equatable {
        case stored(Int)
        /// An earlier request with the same idempotency key stored this many.
        case replayed(Int)
    }

    public struct IdempotencyConflict: Error, CustomStringConvertible {
        public var description: String {
            "this Idempotency-Key was already used with a different request body in the last 24 hours"
        }
    }

    public struct Idempotency: Sendable {
        public var apiKeyID: Int
        public var key: String
        /// SHA-256 of the request body.
        public var requestHash: String
        public init(apiKeyID: Int, key: String, requestHash: String) {
            self.apiKeyID = apiKeyID
            self.key = key
            self.requestHash = requestHash
        }
    }

    /// Stores a validated batch in one transaction with COPY. `now` (the
    /// database clock) is the occurred_at of events that have none.
    public func ingest(_ events: [MetricEvent], now: Date, idempotency: Idempotency? = nil) async throws -> IngestOutcome {
        let data = Self.copyData(events, now: now)
        let names = Self.notificationPayload(events)
        let rollups = Self.rollups(events, now: now)
        let count = events.count
        return try await database.transaction { connection -> IngestOutcome in
            if let idempotency {
                let inserted = try connection.query(
                    """
                    INSERT INTO ingest_idempotency (api_key_id, key, request_hash, accepted)
                    VALUES (\(idempotency.apiKeyID), \(idempotency.key), \(idempotency.requestHash), \(count))
                    ON CONFLICT (api_key_id, key) DO UPDATE
                        SET request_hash = excluded.request_hash, accepted = excluded.accepted, created_at = now()
                        WHERE ingest_idempotency.created_at < now() - interval '24 hours'
                    RETURNING 1
                    """)
                if inserted.isEmpty {
                    // The first request with this key committed (we waited for it
                    // on the row lock if it was in flight): answer as it did.
                    let prior = try connection.query(
                        """
                        SELECT request_hash, accepted FROM ingest_idempotency
                        WHERE api_key_id = \(idempotency.apiKeyID) AND key = \(idempotency.key)
                        """)
                    guard let row = prior.first else { throw PostgresError(kind: .client, message: "idempotency row vanished") }
                    guard try row.decode("request_hash", as: String.self) == idempotency.requestHash else {
                        throw IdempotencyConflict()
                    }
                    return .replayed(try row.decode("accepted"))
                }
            }
            try connection.copyIn("COPY metric_events (occurred_at, name, platform, value, labels) FROM STDIN", data: data)
            try Self.addRollups(rollups, connection: connection)
            try connection.notify(channel: DatabaseEvents.Topic.events.channel, payload: names)
            return .stored(count)
        }
    }

    struct RollupKey: Hashable {
        /// The hour's start, in Unix seconds.
        var hour: Double
        var name: String
        var platform: String
    }

    struct Rollup {
        var count = 0
        var sum = 0.0
        var min = Double.infinity
        var max = -Double.infinity
        var histogram: [Int]?

        mutating func add(_ value: Double) {
            count += 1
            sum += value
            min = Swift.min(min, value)
            max = Swift.max(max, value)
            if histogram != nil { histogram![LatencyHistogram.bucket(value)] += 1 }
        }
    }

    /// The batch's contribution to the hourly rollups.
    static func rollups(_ events: [MetricEvent], now: Date) -> [RollupKey: Rollup] {
        var out: [RollupKey: Rollup] = [:]
        for event in events {
            let time = (event.occurredAt ?? now).timeIntervalSince1970
            let key = RollupKey(hour: (time / 3600).rounded(.down) * 3600, name: event.name, platform: event.platform ?? "")
            // Updated in place: a copy taken out and put back would copy the
            // histogram's storage for every event.
            if out[key] == nil {
                out[key] = Rollup(histogram: MetricName.isNonNegative(event.name)
                    ? Array(repeating: 0, count: LatencyHistogram.bucketCount) : nil)
            }
            out[key]!.add(event.value)
        }
        return out
    }

    /// Adds a batch's rollups, in key order (so concurrent batches that share
    /// a shard lock rows in the same order and never deadlock).
    static func addRollups(_ rollups: [RollupKey: Rollup], connection: PostgresConnection) throws {
        guard !rollups.isEmpty else { return }
        let keys = rollups.keys.sorted { ($0.hour, $0.name, $0.platform) < ($1.hour, $1.name, $1.platform) }
        let values = keys.map { rollups[$0]! }
        let shard = Int.random(in: 0..<8)
        let hours = keys.map(\.hour), names = keys.map(\.name), platforms = keys.map(\.platform)
        let counts = values.map(\.count), sums = values.map(\.sum), mins = values.map(\.min), maxes = values.map(\.max)
        let histograms = values.map { $0.histogram.map { "{" + $0.map(String.init).joined(separator: ",") + "}" } }
        try connection.query(
            """
            INSERT INTO metric_rollups (hour, name, platform, shard, count, sum, min, max, histogram)
            SELECT to_timestamp(h), n, p, \(shard), c, s, lo, hi, hist::integer[]
            FROM unnest(\(hours)::float8[], \(names)::text[], \(platforms)::text[], \(counts)::int8[], \(sums)::float8[],
                        \(mins)::float8[], \(maxes)::float8[], \(histograms)::text[])
                 WITH ORDINALITY AS t(h, n, p, c, s, lo, hi, hist, i)
            ORDER BY i
            ON CONFLICT (hour, name, platform, shard) DO UPDATE SET
                count = metric_rollups.count + excluded.count,
                sum = metric_rollups.sum + excluded.sum,
                min = least(metric_rollups.min, excluded.min),
                max = greatest(metric_rollups.max, excluded.max),
                histogram = tocsin_histogram_add(metric_rollups.histogram, excluded.histogram)
            """)
    }

    static func copyData(_ events: [MetricEvent], now: Date) -> [UInt8] {
        var builder = CopyTextBuilder(reservingCapacity: events.count * 96)
        for event in events {
            builder.appendUnescaped { RFC3339.append(event.occurredAt ?? now, to: &$0) }
            builder.append(event.name)
            builder.append(event.platform)
            builder.append(event.value)
            builder.append(event.labels.isEmpty ? "{}" : event.labelsJSON)
            builder.endRow()
        }
        return builder.bytes
    }

    /// Distinct names, comma-separated, within NOTIFY's 8000-byte limit.
    static func notificationPayload(_ events: [MetricEvent]) -> String {
        var seen: Set<String> = []
        var payload = ""
        for event in events where seen.insert(event.name).inserted {
            if payload.utf8.count + event.name.utf8.count + 1 > 7900 { break }
            if !payload.isEmpty { payload += "," }
            payload += event.name
        }
        return payload
    }
}
