import Foundation
import Logging
import PostgresClient
import TocsinStore

/// A database of its own for one test, on the shared test server. Dropped by
/// `drop()`; names start with `t_` so leftovers are easy to spot.
public struct TestDatabase: Sendable {
    public let name: String
    public let url: String
    let adminURL: String

    public static func create(migrated: Bool = true) async throws -> TestDatabase {
        _ = testMetricsBootstrap
        let admin = try TestEnvironment.adminURL()
        let name = "t_" + randomSuffix()
        try await blocking {
            let connection = try PostgresConnection.connect(admin)
            defer { connection.close() }
            try connection.execute(script: "CREATE DATABASE \(name)")
        }
        let database = TestDatabase(name: name, url: TestEnvironment.url(admin, database: name), adminURL: admin)
        if migrated {
            let pool = database.pool(size: 1)
            let migrator = try Migrator.load(directory: URL(fileURLWithPath: TestEnvironment.migrationsDirectory))
            do {
                try await migrator.migrate(pool: pool, logger: quietLogger)
            } catch {
                await pool.close()
                throw error
            }
            await pool.close()
        }
        return database
    }

    public func pool(size: Int = 4) -> PostgresPool {
        PostgresPool(configuration: .init(conninfo: url, size: size), logger: quietLogger)
    }

    /// Runs `body` with a pool on this database and closes the pool after.
    public func withPool<T: Sendable>(size: Int = 4, _ body: (PostgresPool) async throws -> T) async throws -> T {
        let pool = pool(size: size)
        do {
            let value = try await body(pool)
            await pool.close()
            return value
        } catch {
            await pool.close()
            throw error
        }
    }

    public func drop() async {
        let name = self.name, admin = adminURL
        _ = try? await blocking {
            let connection = try PostgresConnection.connect(admin)
            defer { connection.close() }
            try connection.execute(script: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        }
    }
}

/// Creates a migrated database, runs `body`, drops the database.
public func withTestDatabase<T: Sendable>(migrated: Bool = true, _ body: (TestDatabase) async throws -> T) async throws -> T {
    let database = try await TestDatabase.create(migrated: migrated)
    do {
        let value = try await body(database)
        await database.drop()
        return value
    } catch {
        await database.drop()
        throw error
    }
}

/// Test setup logs nothing below errors.
let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .error
    return logger
}()
