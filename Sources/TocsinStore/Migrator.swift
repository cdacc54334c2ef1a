import Foundation
import Logging
import PostgresClient
import TocsinCrypto

/// One forward-only migration file: `NNNN_name.sql`.
public struct Migration: Sendable, Equatable {
    public var version: Int
    public var fileName: String
    public var sql: String
    /// SHA-256 of the file's bytes, hex.
    public var checksum: String
}

public struct MigrationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What the database has compared with the migration files.
public struct MigrationStatus: Sendable, Equatable {
    public var applied: [String]
    public var pending: [String]
    /// Applied files whose content has changed since.
    public var changed: [String]
    /// Versions in the database that no file here describes (a newer binary
    /// migrated this database).
    public var unknown: [String]

    public var isCurrent: Bool { pending.isEmpty && changed.isEmpty }
}

/// Applies `migrations/*.sql` in order. Each file runs in its own
/// transaction that first takes the migrations advisory lock
/// (`pg_advisory_xact_lock`, transaction-scoped), then re-reads
/// `schema_migrations`: concurrent `tocsin migrate` processes queue on the
/// lock and each file is applied exactly once. A file whose checksum differs
/// from the recorded one is refused before anything is applied.
public struct Migrator: Sendable {
    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Loads `NNNN_name.sql` files from a directory.
    public static func load(directory: URL) throws -> Migrator {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw MigrationError("cannot read migrations directory \(directory.path)")
        }
        var migrations: [Migration] = []
        var versions: Set<Int> = []
        for name in names.sorted() where name.hasSuffix(".sql") {
            guard name.range(of: #"^[0-9]{4}_[a-z0-9_]+\.sql\z"#, options: .regularExpression) != nil,
                  let version = Int(name.prefix(4))
            else {
                throw MigrationError("migration file \(name) is not named NNNN_name.sql")
            }
            guard versions.insert(version).inserted else {
                throw MigrationError("two migration files have version \(name.prefix(4))")
            }
            guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else {
                throw MigrationError("cannot read migration file \(name)")
            }
            migrations.append(Migration(
                version: version,
                fileName: name,
                sql: String(decoding: data, as: UTF8.self),
                checksum: Crypto.hex(Crypto.sha256(data))
            ))
        }
        guard !migrations.isEmpty else {
            throw MigrationError("no migration files in \(directory.path)")
        }
        return Migrator(migrations: migrations)
    }

    private static let createTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version     integer PRIMARY KEY,
            file_name   text        NOT NULL,
            checksum    text        NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now(),
            duration_ms integer     NOT NULL
        )
        """

    func status(pool: PostgresPool) async throws -> MigrationStatus {
        let recorded = try await pool.withConnection { connection -> [Int: (String, String)] in
            let exists = try connection.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
            guard try exists[0].decode("present", as: Bool.self) else { return [:] }
            var recorded: [Int: (String, String)] = [:]
            for row in try connection.query("SELECT version, file_name, checksum FROM schema_migrations") {
                recorded[try row.decode("version")] = (try row.decode("file_name"), try row.decode("checksum"))
            }
            return recorded
        }
        var status = MigrationStatus(applied: [], pending: [], changed: [], unknown: [])
        let known = Set(migrations.map(\.version))
        for migration in migrations {
            if let (_, checksum) = recorded[migration.version] {
                status.applied.append(migration.fileName)
                if checksum != migration.checksum { status.changed.append(migration.fileName) }
            } else {
                status.pending.append(migration.fileName)
            }
        }
        status.unknown = recorded.filter { !known.contains($0.key) }.sorted { $0.key < $1.key }.map(\.value.0)
        return status
    }

    /// Applies pending migrations; returns the files this call applied.
    @discardableResult
    func migrate(pool: PostgresPool, logger: Logger) async throws -> [String] {
        let before = try await status(pool: pool)
        if let changed = before.changed.first {
            throw MigrationError(Self.changedMessage(changed))
        }
        var applied: [String] = []
        for migration in migrations {
            let didApply = try await pool.withTransaction { connection -> Bool in
                try connection.advisoryTransactionLock(namespace: LockNamespace.migrations, id: 0)
                try connection.execute(script: Self.createTable)
                let rows = try connection.query(
                    "SELECT checksum FROM schema_migrations WHERE version = \(migration.version)")
                if let row = rows.first {
                    guard try row.decode("checksum", as: String.self) == migration.checksum else {
                        throw MigrationError(Self.changedMessage(migration.fileName))
                    }
                    return false
                }
                let started = ContinuousClock.now
                do {
                    try connection.execute(script: migration.sql)
                } catch let error as PostgresError {
                    throw MigrationError("migration \(migration.fileName) failed and was rolled back: \(error)")
                }
                let elapsed = ContinuousClock.now - started
                let ms = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
                try connection.query(
                    """
                    INSERT INTO schema_migrations (version, file_name, checksum, duration_ms)
                    VALUES (\(migration.version), \(migration.fileName), \(migration.checksum), \(ms))
                    """)
                return true
            }
            if didApply {
                applied.append(migration.fileName)
                logger.info("migration applied", metadata: ["migration": "\(migration.fileName)"])
            }
        }
        return applied
    }

    static func changedMessage(_ file: String) -> String {
        "migration \(file) was changed after it was applied (checksum differs); migrations are forward-only: restore the file and put the change in a new migration"
    }

    /// The error for a process that must not start on this database.
    public static func notCurrentMessage(_ status: MigrationStatus) -> String? {
        if let changed = status.changed.first {
            return changedMessage(changed)
        }
        if !status.pending.isEmpty {
            let count = status.pending.count
            return "database schema is behind: \(count) pending migration\(count == 1 ? "" : "s") (\(status.pending.joined(separator: ", "))); run `tocsin migrate` or start with --migrate"
        }
        return nil
    }
}
