import Foundation
import PostgresClient
import TocsinCore

/// The `silences` table.
public struct SilenceRepository: Sendable {
    let database: Database

    static let columns: PostgresQuery = """
        id, rule, platform, severity, labels::text AS labels, starts_at, ends_at, comment, created_by,
        deleted_at IS NOT NULL AS deleted, recurrence::text AS recurrence, matchers::text AS matchers, created_by_key,
        coalesce(deleted_at, created_at) AS updated_at
        """

    static func decode(_ row: PostgresRow) throws -> Silence {
        let labels: String = try row.decode("labels")
        return Silence(
            id: try row.decode("id"), rule: try row.decode("rule"), platform: try row.decode("platform"),
            severity: try row.decode("severity"),
            labels: (try? JSONDecoder().decode([String: String].self, from: Data(labels.utf8))) ?? [:],
            startsAt: try row.decode("starts_at"), endsAt: try row.decode("ends_at"), comment: try row.decode("comment"),
            createdBy: try row.decode("created_by"), deleted: try row.decode("deleted"),
            recurrence: try (row.decode("recurrence", as: String?.self)).flatMap {
                try? JSONDecoder().decode(Recurrence.self, from: Data($0.utf8))
            },
            matchers: (try? JSONDecoder().decode([SilenceMatcher].self, from: Data(try row.decode("matchers", as: String.self).utf8))) ?? [],
            createdByKey: try row.decode("created_by_key"))
    }

    public func create(rule: String?, platform: String?, severity: Rule.Severity?, labels: [String: String],
                       startsAt: Date?, endsAt: Date, comment: String, createdBy: String,
                       recurrence: Recurrence? = nil, matchers: [SilenceMatcher] = [],
                       createdByKey: String? = nil) async throws -> Silence {
        let matchersJSON = String(decoding: try JSONEncoder().encode(matchers), as: UTF8.self)
        let labelsJSON = String(decoding: try JSONEncoder().encode(labels), as: UTF8.self)
        let recurrenceJSON = try recurrence.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        return try Self.decode(try await database.write(
            """
            INSERT INTO silences (rule, platform, severity, labels, starts_at, ends_at, comment, created_by, recurrence, matchers,
                                  created_by_key)
            VALUES (\(rule), \(platform), \(severity), \(labelsJSON)::jsonb, coalesce(\(startsAt)::timestamptz, now()), \(endsAt),
                    \(comment), \(createdBy), \(recurrenceJSON)::jsonb, \(matchersJSON)::jsonb, \(createdByKey ?? createdBy))
            RETURNING \(Self.columns)
            """)[0])
    }

    /// Active and future silences (and, with `includeExpired`, the rest).
    public func list(includeExpired: Bool) async throws -> [Silence] {
        try await database.read(
            """
            SELECT \(Self.columns) FROM silences
            WHERE \(includeExpired) OR (deleted_at IS NULL AND ends_at > now())
            ORDER BY starts_at DESC, id DESC LIMIT 1000
            """).map(Self.decode)
    }

    /// The silences a dispatcher checks before sending: read on the primary,
    /// so one created a moment ago is seen.
    public func active() async throws -> [Silence] {
        try await database.write(
            "SELECT \(Self.columns) FROM silences WHERE deleted_at IS NULL AND ends_at > now() ORDER BY id LIMIT 10000"
        ).map(Self.decode)
    }

    /// One silence, active, future, expired or ended; with when it last
    /// changed (created, or ended).
    public func get(id: Int) async throws -> (silence: Silence, updatedAt: Date)? {
        guard let row = try await database.read("SELECT \(Self.columns) FROM silences WHERE id = \(id)").first else { return nil }
        return (try Self.decode(row), try row.decode("updated_at"))
    }

    /// Every silence (the newest 1,000), with when each last changed.
    public func all() async throws -> [(silence: Silence, updatedAt: Date)] {
        try await database.read("SELECT \(Self.columns) FROM silences ORDER BY id DESC LIMIT 1000").map {
            (try Self.decode($0), try $0.decode("updated_at"))
        }
    }

    /// Ends a silence now; held notifications are then released.
    public func delete(id: Int) async throws -> Bool {
        try await database.write(
            "UPDATE silences SET deleted_at = now() WHERE id = \(id) AND deleted_at IS NULL RETURNING id").count == 1
    }
}
