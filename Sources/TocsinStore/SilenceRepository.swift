import Foundation
import PostgresClient
import TocsinCore

/// The `silences` table.
public struct SilenceRepository: Sendable {
    let database: Database

    static let columns: PostgresQuery = """
        id, rule, platform, severity, labels::text AS labels, starts_at, ends_at, comment, created_by,
        deleted_at IS NOT NULL AS deleted, recurrence::text AS recurrence
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
            })
    }

    public func create(rule: String?, platform: String?, severity: Rule.Severity?, labels: [String: String],
                       startsAt: Date?, endsAt: Date, comment: String, createdBy: String,
                       recurrence: Recurrence? = nil) async throws -> Silence {
        let labelsJSON = String(decoding: try JSONEncoder().encode(labels), as: UTF8.self)
        let recurrenceJSON = try recurrence.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        return try Self.decode(try await database.write(
            """
            INSERT INTO silences (rule, platform, severity, labels, starts_at, ends_at, comment, created_by, recurrence)
            VALUES (\(rule), \(platform), \(severity), \(labelsJSON)::jsonb, coalesce(\(startsAt)::timestamptz, now()), \(endsAt),
                    \(comment), \(createdBy), \(recurrenceJSON)::jsonb)
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

    /// Ends a silence now; held notifications are then released.
    public func delete(id: Int) async throws -> Bool {
        try await database.write(
            "UPDATE silences SET deleted_at = now() WHERE id = \(id) AND deleted_at IS NULL RETURNING id").count == 1
    }
}
