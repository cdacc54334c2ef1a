import Foundation
import PostgresClient
import TocsinCore

/// The `metric_events` table and its hourly rollups: ingestion here, the
/// reads (summary, series, event pages, backtest points) in the extensions.
public struct MetricEventRepository: Sendable {
    let database: Database
    let announcer: EventAnnouncer

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
        let rollups = Self.rollups(events, now: now)
        let count = events.count
        let outcome = try await database.transaction { connection -> IngestOutcome in
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
            try connection.copyIn("COPY metric_events (occurred_at, name, platform, value, labels) FROM STDIN (FORMAT binary)",
                                  data: data)
            try Self.addRollups(rollups, connection: connection)
            return .stored(count)
        }
        if case .stored = outcome { announcer.announce(rollups.keys.map(\.name)) }
        return outcome
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
            // Updated in place, one lookup: a copy taken out and put back
            // would copy the histogram's storage for every event.
            out[key, default: Rollup(histogram: MetricName.isNonNegative(event.name)
                ? Array(repeating: 0, count: LatencyHistogram.bucketCount) : nil)].add(event.value)
        }
        return out
    }

    /// Rollup rows per hour, name and platform: up to this many batches
    /// add to the rollups at once without waiting for each other.
    static let rollupShards: Int32 = 16

    /// The shard a transaction adds its rollups to: the first of the
    /// `rollupShards` leases (transaction-scoped advisory locks in the
    /// `rollupShard` namespace), from a random one on, that nobody holds —
    /// or, with every one taken, a wait for the random one. Only a lease's
    /// holder writes its shard's rows (besides `compactRollups`, which takes
    /// every lease), so concurrent batches never wait on each other's row
    /// locks, which are held until commit, through its WAL flush. A batch
    /// holds one lease and waits for at most one before holding any, so
    /// leases cannot deadlock.
    static func leaseShard() -> PostgresQuery {
        let first = Int32.random(in: 0..<rollupShards)
        return """
            coalesce(
                (SELECT (g % \(rollupShards)::int4)::smallint
                 FROM generate_series(\(first)::int4, \(first + rollupShards - 1)::int4) AS g
                 WHERE pg_try_advisory_xact_lock(\(LockNamespace.rollupShard)::int4, g % \(rollupShards)::int4) LIMIT 1),
                (SELECT \(first)::smallint FROM pg_advisory_xact_lock(\(LockNamespace.rollupShard)::int4, \(first)::int4)))
            """
    }

    /// An upsert's rollup row added to the row already there.
    static let addToRow: PostgresQuery = """
        ON CONFLICT (hour, name, platform, shard) DO UPDATE SET
            count = metric_rollups.count + excluded.count, sum = metric_rollups.sum + excluded.sum,
            min = least(metric_rollups.min, excluded.min), max = greatest(metric_rollups.max, excluded.max),
            histogram = tocsin_histogram_add(metric_rollups.histogram, excluded.histogram)
        """

    /// Adds a batch's rollups to the shard it leases, in key order.
    static func addRollups(_ rollups: [RollupKey: Rollup], connection: PostgresConnection) throws {
        guard !rollups.isEmpty else { return }
        let keys = rollups.keys.sorted { ($0.hour, $0.name, $0.platform) < ($1.hour, $1.name, $1.platform) }
        let values = keys.map { rollups[$0]! }
        let hours = keys.map(\.hour), names = keys.map(\.name), platforms = keys.map(\.platform)
        let counts = values.map(\.count), sums = values.map(\.sum), mins = values.map(\.min), maxes = values.map(\.max)
        // The histograms as one int4[] literal, each key's buckets a slice
        // of it (`offsets`: where its slice starts, NULL without one): one
        // parameter, built byte by byte, parsed once.
        var offsets: [Int?] = []
        var flat: [UInt8] = [UInt8(ascii: "{")]
        var buckets = 0
        for value in values {
            guard let histogram = value.histogram else {
                offsets.append(nil)
                continue
            }
            offsets.append(buckets)
            for count in histogram {
                if buckets > 0 { flat.append(UInt8(ascii: ",")) }
                appendDecimal(count, to: &flat)
                buckets += 1
            }
        }
        flat.append(UInt8(ascii: "}"))
        let histograms = String(decoding: flat, as: UTF8.self)
        try connection.query(
            """
            WITH lease AS MATERIALIZED (SELECT \(leaseShard()) AS shard),
                 histograms AS MATERIALIZED (SELECT \(histograms)::int4[] AS h)
            INSERT INTO metric_rollups (hour, name, platform, shard, count, sum, min, max, histogram)
            SELECT to_timestamp(t.h), n, p, (SELECT shard FROM lease), c, s, lo, hi,
                   CASE WHEN o IS NOT NULL THEN (SELECT h[o + 1:o + \(LatencyHistogram.bucketCount)::int4] FROM histograms) END
            FROM unnest(\(hours)::float8[], \(names)::text[], \(platforms)::text[], \(counts)::int8[], \(sums)::float8[],
                        \(mins)::float8[], \(maxes)::float8[], \(offsets)::int4[])
                 WITH ORDINALITY AS t(h, n, p, c, s, lo, hi, o, i)
            ORDER BY i
            \(addToRow)
            """)
    }

    /// Merges the shards of up to `hours` closed hours (before the current
    /// UTC hour), oldest first, into shard 0, so readers of past hours read
    /// one row per hour, name and platform; returns the rows merged away
    /// (0: nothing left to merge). Holds every shard lease for its
    /// transaction, so no batch adds to those rows meanwhile; a batch
    /// committed later (a late event) starts a new shard row, merged next
    /// time. Totals are unchanged: the statement moves rows, it adds nothing.
    static func compactRollups(hours: Int, connection: PostgresConnection) throws -> Int {
        try connection.query(
            """
            SELECT count(pg_advisory_xact_lock(\(LockNamespace.rollupShard)::int4, s))
            FROM generate_series(0, \(rollupShards - 1)::int4) AS s
            """)
        return try connection.query(
            """
            WITH target AS (
                SELECT DISTINCT hour FROM metric_rollups
                WHERE shard > 0 AND hour < date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                ORDER BY hour LIMIT \(hours)
            ), moved AS (
                DELETE FROM metric_rollups WHERE shard > 0 AND hour IN (SELECT hour FROM target)
                RETURNING hour, name, platform, count, sum, min, max, histogram
            ), merged AS (
                SELECT hour, name, platform, sum(count)::bigint AS count, sum(sum) AS sum, min(min) AS min,
                       max(max) AS max, tocsin_histogram_sum(histogram) AS histogram, count(*) AS rows
                FROM moved GROUP BY hour, name, platform
            ), written AS (
                INSERT INTO metric_rollups (hour, name, platform, shard, count, sum, min, max, histogram)
                SELECT hour, name, platform, 0, count, sum, min, max, histogram FROM merged
                ORDER BY hour, name, platform
                \(addToRow)
                RETURNING 1
            )
            SELECT (SELECT coalesce(sum(rows), 0) FROM merged)::int8 AS n, (SELECT count(*) FROM written) AS w
            """)[0].decode("n")
    }

    /// Appends the decimal digits of `value` (≥ 0).
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 10 {
            out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: max(0, value)))
            return
        }
        var digits: [UInt8] = []
        var rest = value
        while rest > 0 {
            digits.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10))
            rest /= 10
        }
        out.append(contentsOf: digits.reversed())
    }

    static func copyData(_ events: [MetricEvent], now: Date) -> [UInt8] {
        var builder = CopyBinaryBuilder(reservingCapacity: events.count * 80)
        for event in events {
            builder.beginRow(fields: 5)
            let (seconds, micros) = RFC3339.wholeSeconds(event.occurredAt ?? now)
            builder.appendTimestamp(unixSeconds: seconds, micros: micros)
            builder.append(event.name)
            builder.append(event.platform)
            builder.append(event.value)
            builder.appendJSONB(event.labels.isEmpty ? "{}" : event.labelsJSON)
        }
        return builder.bytes
    }
}
