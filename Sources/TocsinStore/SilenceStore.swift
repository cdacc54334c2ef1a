import Foundation
import PostgresClient
import TocsinCore

/// The `silences` table.
public struct SilenceStore: Sendable {
    public let pool: PostgresPool
    public init(pool: PostgresPool) { self.pool = pool }

    static let columns = """
        id, rule, platform, severity, labels::text AS labels, extract(epoch FROM starts_at)::float8 AS starts_at,
        extract(epoch FROM ends_at)::float8 AS ends_at, comment, created_by, deleted_at IS NOT NULL AS deleted
        """

    static func decode(_ row: PostgresRow) throws -> Silence {
        let labels: String = try row.decode("labels")
        let severity: String? = try row.decode("severity")
        return Silence(
            id: try row.decode("id"), rule: try row.decode("rule"), platform: try row.decode("platform"),
            severity: severity.flatMap(Rule.Severity.init(rawValue:)),
            labels: (try? JSONDecoder().decode([String: String].self, from: Data(labels.utf8))) ?? [:],
            startsAt: try row.decode("starts_at"), endsAt: try row.decode("ends_at"), comment: try row.decode("comment"),
            createdBy: try row.decode("created_by"), deleted: try row.decode("deleted"))
    }

    public func create(rule: String?, platform: String?, severity: Rule.Severity?, labels: [String: String],
                       startsAt: Double?, endsAt: Double, comment: String, createdBy: String) async throws -> Silence {
        let labelsJSON = String(decoding: try JSONEncoder().encode(labels), as: UTF8.self)
        return try Self.decode(try await pool.query(
            """
            INSERT INTO silences (rule, platform, severity, labels, starts_at, ends_at, comment, created_by)
            VALUES ($1, $2, $3, $4::jsonb, coalesce($5::timestamptz, now()), $6, $7, $8)
            RETURNING \(Self.columns)
            """,
            [rule, platform, severity?.rawValue, labelsJSON, startsAt.map { Date(timeIntervalSince1970: $0) },
             Date(timeIntervalSince1970: endsAt), comment, createdBy])[0])
    }

    /// Active and future silences (and, with `includeExpired`, the rest).
    public func list(includeExpired: Bool) async throws -> [Silence] {
        try await pool.query(
            """
            SELECT \(Self.columns) FROM silences
            WHERE $1 OR (deleted_at IS NULL AND ends_at > now())
            ORDER BY starts_at DESC, id DESC LIMIT 1000
            """, [includeExpired]).map(Self.decode)
    }

    /// Ends a silence now; held notifications are then released.
    public func delete(id: Int) async throws -> Bool {
        try await pool.query(
            "UPDATE silences SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING id", [id]).count == 1
    }
}
