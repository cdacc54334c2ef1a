import Foundation
import PostgresClient
import TocsinCore

/// Event pages (newest first, keyset pagination) and the points backtests
/// replay.
extension MetricEventRepository {
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
    /// clients; a cursor outside years 0001–9999 or with a negative id is
    /// not one of ours.
    public static func decodeCursor(_ cursor: String) -> (at: Date, id: Int)? {
        guard let (micros, id) = Cursor.decode(cursor) else { return nil }
        return (Cursor.date(micros: micros), id)
    }

    /// Events newest first, `limit` per page, continued with `nextCursor`.
    public func events(_ filter: EventFilter) async throws -> EventPage {
        var exact: String?
        var prefix: String?
        if let name = filter.name {
            if name.hasSuffix(".*") { prefix = String(name.dropLast(1)) } else { exact = name }
        }
        let cursor = filter.cursor.flatMap(Self.decodeCursor)
        let rows = try await database.read(
            """
            SELECT id, occurred_at, received_at, name, platform, value, labels::text AS labels
            FROM metric_events
            WHERE occurred_at >= \(filter.range.since) AND occurred_at < \(filter.range.until)
              AND (\(exact)::text IS NULL OR name = \(exact))
              AND (\(prefix)::text IS NULL OR starts_with(name, \(prefix)))
              AND (\(filter.platform)::text IS NULL OR platform = \(filter.platform))
              AND (\(cursor?.at)::timestamptz IS NULL OR (occurred_at, id) < (\(cursor?.at), \(cursor?.id)::int8))
            ORDER BY occurred_at DESC, id DESC
            LIMIT \(filter.limit + 1)
            """)
        var events: [StoredEvent] = []
        for row in rows.prefix(filter.limit) {
            events.append(StoredEvent(
                id: try row.decode("id"), occurredAt: try row.decode("occurred_at"), receivedAt: try row.decode("received_at"),
                name: try row.decode("name"), platform: try row.decode("platform"), value: try row.decode("value"),
                labelsJSON: try row.decode("labels")))
        }
        let next = rows.count > filter.limit ? events.last.map { Cursor.encode(micros: Cursor.micros($0.occurredAt), id: $0.id) } : nil
        return EventPage(events: events, nextCursor: next)
    }

    public struct TooManyPoints: Error, CustomStringConvertible {
        public var limit: Int
        public var description: String { "more than \(limit) events in the range; backtest a shorter range" }
    }

    /// Events of `names` in [since, until), oldest first, for backtests.
    /// The label names of the latest `perName` events of each of `names`
    /// (an index scan per name, however large the history).
    public func labelNames(of names: [String], perName: Int = 5000) async throws -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for row in try await database.read(
            """
            SELECT n AS name, k FROM unnest(\(names)::text[]) AS n,
            LATERAL (SELECT DISTINCT jsonb_object_keys(labels) AS k FROM (
                SELECT labels FROM metric_events WHERE name = n ORDER BY occurred_at DESC LIMIT \(perName)) latest) keys
            """) {
            out[try row.decode("name"), default: []].insert(try row.decode("k"))
        }
        return out
    }

    /// The events of `names` in [since, until), oldest first, with their
    /// labels when `labels` (rules that filter or group by them).
    public func points(names: [String], since: Date, until: Date, labels: Bool = false,
                       limit: Int = 2_000_000) async throws -> [RuleMath.Point] {
        let rows = try await database.read(
            """
            SELECT occurred_at, name, platform, value, CASE WHEN \(labels) THEN labels::text END AS labels FROM metric_events
            WHERE name = ANY(\(names)::text[]) AND occurred_at >= \(since) AND occurred_at < \(until)
            ORDER BY occurred_at, id LIMIT \(limit + 1)
            """)
        guard rows.count <= limit else { throw TooManyPoints(limit: limit) }
        let decoder = JSONDecoder()
        return try rows.map { row in
            let text: String? = try row.decode("labels")
            return RuleMath.Point(time: try row.decode("occurred_at"), name: try row.decode("name"),
                                  platform: try row.decode("platform"), value: try row.decode("value"),
                                  labels: text.flatMap { try? decoder.decode([String: String].self, from: Data($0.utf8)) } ?? [:])
        }
    }
}

/// Keyset cursors: dot-separated integers, range-checked when read back so
/// a forged cursor is a 400, never a database error.
enum Cursor {
    /// Microseconds of years 0001 to 9999.
    static let micros: ClosedRange<Int64> = -62_135_596_800_000_000...253_402_300_799_999_999

    static func micros(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    static func date(micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }

    static func encode(micros: Int64, id: Int) -> String { "\(micros).\(id)" }

    static func decode(_ text: String) -> (micros: Int64, id: Int)? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let micros = Int64(parts[0]), Self.micros.contains(micros), let id = Int(parts[1]), id >= 0
        else { return nil }
        return (micros, id)
    }
}
