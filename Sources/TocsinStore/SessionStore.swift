import Foundation
import PostgresClient
import TocsinCore

/// Dashboard sessions. The cookie carries a random 256-bit id; the table
/// keeps its SHA-256, the key it was opened with and a CSRF token.
public struct SessionStore: Sendable {
    public let pool: PostgresPool
    public init(pool: PostgresPool) { self.pool = pool }

    public struct Session: Sendable, Equatable {
        /// The cookie value (only known right after creation).
        public var id: String
        public var key: ApiKeyRecord
        public var csrfToken: String
        public var expiresAt: Double
    }

    /// Opens a session for an authenticated key.
    public func create(for key: ApiKeyRecord, ttlSeconds: Int) async throws -> Session {
        let id = Crypto.base64URL(Crypto.randomBytes(32))
        let csrf = Crypto.base64URL(Crypto.randomBytes(24))
        let row = try await pool.query(
            """
            INSERT INTO dashboard_sessions (id_hash, api_key_id, csrf_token, expires_at)
            VALUES ($1, $2, $3, now() + make_interval(secs => $4))
            RETURNING extract(epoch FROM expires_at)::float8 AS expires_at
            """, [Crypto.sha256Hex(id), key.id, csrf, ttlSeconds])[0]
        return Session(id: id, key: key, csrfToken: csrf, expiresAt: try row.decode("expires_at"))
    }

    /// The live session for a cookie value: not expired, key not revoked.
    public func find(id: String) async throws -> Session? {
        guard id.utf8.count < 100 else { return nil }
        let rows = try await pool.query(
            """
            WITH found AS (
                SELECT s.csrf_token, s.expires_at, k.id, k.name, k.scopes, k.created_at, k.last_used_at, k.revoked_at
                FROM dashboard_sessions s JOIN api_keys k ON k.id = s.api_key_id
                WHERE s.id_hash = $1 AND s.expires_at > now() AND k.revoked_at IS NULL
            ), touched AS (
                UPDATE dashboard_sessions SET last_seen_at = now()
                WHERE id_hash = $1 AND last_seen_at < now() - interval '60 seconds' AND EXISTS (SELECT 1 FROM found)
            )
            SELECT csrf_token, extract(epoch FROM expires_at)::float8 AS expires_at, id, name, scopes, created_at,
                   last_used_at, revoked_at
            FROM found
            """, [Crypto.sha256Hex(id)])
        guard let row = rows.first else { return nil }
        return Session(id: id, key: try ApiKeyStore.record(row), csrfToken: try row.decode("csrf_token"),
                       expiresAt: try row.decode("expires_at"))
    }

    public func delete(id: String) async throws {
        try await pool.query("DELETE FROM dashboard_sessions WHERE id_hash = $1", [Crypto.sha256Hex(id)])
    }
}
