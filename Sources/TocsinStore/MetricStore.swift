import Foundation
import PostgresClient
import TocsinCore

/// Writes metric events, and keeps their partitions.
public struct MetricStore: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// The channel ingestion notifies (payload: the distinct names of the
    /// batch, comma-separated) so workers can evaluate rules early.
    public static let eventsChannel = "tocsin_events"

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

    /// Stores a validated batch in one transaction with COPY. `now` (Unix
    /// seconds, database clock) is the occurred_at of events that have none.
    public func ingest(_ events: [MetricEvent], now: Double, idempotency: Idempotency? = nil) async throws -> IngestOutcome {
        let data = Self.copyData(events, now: now)
        let names = Self.notificationPayload(events)
        let count = events.count
        return try await pool.withTransaction { connection -> IngestOutcome in
            if let idempotency {
                let inserted = try connection.query(
                    """
                    INSERT INTO ingest_idempotency (api_key_id, key, request_hash, accepted) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (api_key_id, key) DO UPDATE
                        SET request_hash = excluded.request_hash, accepted = excluded.accepted, created_at = now()
                        WHERE ingest_idempotency.created_at < now() - interval '24 hours'
                    RETURNING 1
                    """, [idempotency.apiKeyID, idempotency.key, idempotency.requestHash, count])
                if inserted.isEmpty {
                    // The first request with this key committed (we waited for it
                    // on the row lock if it was in flight): answer as it did.
                    let prior = try connection.query(
                        "SELECT request_hash, accepted FROM ingest_idempotency WHERE api_key_id = $1 AND key = $2",
                        [idempotency.apiKeyID, idempotency.key])
                    guard let row = prior.first else { throw PostgresError(kind: .client, message: "idempotency row vanished") }
                    guard try row.decode("request_hash", as: String.self) == idempotency.requestHash else {
                        throw IdempotencyConflict()
                    }
                    return .replayed(try row.decode("accepted"))
                }
            }
            try connection.copyIn("COPY metric_events (occurred_at, name, platform, value, labels) FROM STDIN", data: data)
            try connection.notify(channel: Self.eventsChannel, payload: names)
            return .stored(count)
        }
    }

    static func copyData(_ events: [MetricEvent], now: Double) -> [UInt8] {
        var builder = CopyTextBuilder(reservingCapacity: events.count * 96)
        let nowText = RFC3339.format(now)
        for event in events {
            builder.append(event.occurredAt.map(RFC3339.format) ?? nowText)
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
