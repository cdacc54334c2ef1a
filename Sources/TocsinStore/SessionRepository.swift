import Foundation
import PostgresClient
import TocsinCore
import TocsinCrypto

/// Dashboard sessions. The cookie carries a random 256-bit id; the table
/// keeps its SHA-256, the key it was opened with and a CSRF token.
public struct SessionRepository: Sendable {
    let database: Database

    public struct Session: Sendable, Equatable {
        /// The cookie value (only known right after creation).
        public var id: String
        public var key: ApiKeyRecord
        public var csrfToken: String
        public var expiresAt: Date
    }

    /// Opens a session for an authenticated key.
    public func create(for key: ApiKeyRecord, ttlSeconds: Int) async throws -> Session {
        let id = Crypto.base64URL(Crypto.randomBytes(32))
        let csrf = Crypto.base64URL(Crypto.randomBytes(24))
        let row = try await database.write(
            """
            INSERT INTO dashboard_sessions (id_hash, api_key_id, csrf_token, expires_at)
            VALUES (\(Crypto.sha256Hex(id)), \(key.id), \(csrf), now() + make_interval(secs => \(ttlSeconds)))
            RETURNING expires_at
            """)[0]
        return Session(id: id, key: key, csrfToken: csrf, expiresAt: try row.decode("expires_at"))
    }

    /// The live session for a cookie value: not expired, key not revoked.
    public func find(id: String) async throws -> Session? {
        guard id.utf8.count < 100 else { return nil }
        let hash = Crypto.sha256Hex(id)
        let rows = try await database.write(
            """
            WITH found AS (
                SELECT s.csrf_token, s.expires_at, k.id, k.name, k.scopes, k.created_at, k.last_used_at, k.revoked_at
                FROM dashboard_sessions s JOIN api_keys k ON k.id = s.api_key_id
                WHERE s.id_hash = \(hash) AND s.expires_at > now() AND k.revoked_at IS NULL
            ), touched AS (
                UPDATE dashboard_sessions SET last_seen_at = now()
                WHERE id_hash = \(hash) AND last_seen_at < now() - interval '60 seconds' AND EXISTS (SELECT 1 FROM found)
            )
            SELECT csrf_token, expires_at, id, name, scopes, created_at, last_used_at, revoked_at FROM found
            """)
        guard let row = rows.first else { return nil }
        return Session(id: id, key: try APIKeyRepository.record(row), csrfToken: try row.decode("csrf_token"),
                       expiresAt: try row.decode("expires_at"))
    }

    /// Which of the sessions (by their hashes, as request identities carry
    /// them) are open with their key active: long-lived streams check this.
    public func liveHashes(among hashes: [String]) async throws -> Set<String> {
        guard !hashes.isEmpty else { return [] }
        return Set(try await database.write(
            """
            SELECT s.id_hash FROM dashboard_sessions s JOIN api_keys k ON k.id = s.api_key_id
            WHERE s.id_hash = ANY(\(hashes)::text[]) AND s.expires_at > now() AND k.revoked_at IS NULL
            """).map { try $0.decode("id_hash") })
    }

    public func delete(id: String) async throws {
        try await database.write("DELETE FROM dashboard_sessions WHERE id_hash = \(Crypto.sha256Hex(id))")
    }
}
