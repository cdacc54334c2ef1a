import Foundation
import PostgresClient
import TocsinCore
import TocsinCrypto

/// An API key as stored: never the key itself, only its SHA-256.
public struct ApiKeyRecord: Sendable, Equatable {
    public var id: Int
    public var name: String
    public var scopes: [Scope]
    public var createdAt: Date
    public var lastUsedAt: Date?
    public var revokedAt: Date?
}

public enum Authentication: Sendable, Equatable {
    case valid(ApiKeyRecord)
    case revoked
    case unknown
}

public struct ApiKeyError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// API keys: created, listed, revoked and checked. Keys are random 256-bit
/// values, shown once at creation; the table keeps their SHA-256.
public struct APIKeyRepository: Sendable {
    let database: Database

    public static let keyPrefix = "tsn_"

    public static func validate(name: String) throws {
        guard name.range(of: #"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\z"#, options: .regularExpression) != nil else {
            throw ApiKeyError("key name must be 1 to 64 characters of letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
        }
    }

    public static func hash(_ key: String) -> String { Crypto.sha256Hex(key) }

    /// Creates a key and returns it with its record. The key is not stored
    /// and cannot be shown again.
    public func create(name: String, scopes: [Scope]) async throws -> (key: String, record: ApiKeyRecord) {
        try Self.validate(name: name)
        guard !scopes.isEmpty else { throw ApiKeyError("at least one scope is required: ingest, read, alerts or admin") }
        let key = Self.keyPrefix + Crypto.base64URL(Crypto.randomBytes(32))
        let hash = Self.hash(key)
        let scopeNames = Array(Set(scopes)).sorted().map(\.rawValue)
        do {
            let rows = try await database.write(
                """
                INSERT INTO api_keys (name, key_hash, scopes) VALUES (\(name), \(hash), \(scopeNames)::text[])
                RETURNING id, name, scopes, created_at, last_used_at, revoked_at
                """)
            return (key, try Self.record(rows[0]))
        } catch let error as PostgresError where error.isUniqueViolation {
            throw ApiKeyError("an active key named '\(name)' already exists; revoke it first or choose another name")
        }
    }

    public func list() async throws -> [ApiKeyRecord] {
        let rows = try await database.write(
            "SELECT id, name, scopes, created_at, last_used_at, revoked_at FROM api_keys ORDER BY created_at, id")
        return try rows.map(Self.record)
    }

    /// Revokes the active key with this name.
    public func revoke(name: String) async throws {
        let rows = try await database.write(
            "UPDATE api_keys SET revoked_at = now() WHERE name = \(name) AND revoked_at IS NULL RETURNING id")
        guard rows.count == 1 else {
            throw ApiKeyError("no active key named '\(name)'")
        }
    }

    /// Looks a presented key up by its hash and notes its use (at most once a
    /// minute per key, to keep reads cheap).
    public func authenticate(key: String) async throws -> Authentication {
        guard key.hasPrefix(Self.keyPrefix), key.utf8.count < 200 else { return .unknown }
        let rows = try await database.write(
            """
            WITH found AS (
                SELECT id, name, scopes, created_at, last_used_at, revoked_at FROM api_keys WHERE key_hash = \(Self.hash(key))
            ), touched AS (
                UPDATE api_keys SET last_used_at = now()
                WHERE id IN (SELECT id FROM found WHERE revoked_at IS NULL
                             AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds'))
            )
            SELECT * FROM found
            """)
        guard let row = rows.first else { return .unknown }
        let record = try Self.record(row)
        return record.revokedAt == nil ? .valid(record) : .revoked
    }

    /// Which of `ids` are keys that exist and are not revoked: long-lived
    /// streams check this so a revoked key loses its stream within seconds.
    public func activeIDs(among ids: [Int]) async throws -> Set<Int> {
        guard !ids.isEmpty else { return [] }
        return Set(try await database.write(
            "SELECT id FROM api_keys WHERE id = ANY(\(ids)::int8[]) AND revoked_at IS NULL").map { try $0.decode("id") })
    }

    static func record(_ row: PostgresRow) throws -> ApiKeyRecord {
        let names: [String] = try row.decode("scopes")
        return ApiKeyRecord(
            id: try row.decode("id"),
            name: try row.decode("name"),
            scopes: names.compactMap(Scope.init(rawValue:)).sorted(),
            createdAt: try row.decode("created_at"),
            lastUsedAt: try row.decode("last_used_at"),
            revokedAt: try row.decode("revoked_at")
        )
    }
}
