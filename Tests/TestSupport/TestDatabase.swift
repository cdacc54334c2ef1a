import Foundation
import Logging
import PostgresClient
import TocsinCore
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
            try await database.withStore { store in _ = try await store.migrate() }
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

    /// A store on this database, as a process has one.
    public func store(poolSize: Int = 4, readTimeout: Duration = .seconds(5)) throws -> Store {
        try Store(configuration: .init(databaseURL: url, poolSize: poolSize, readPoolSize: poolSize, readTimeout: readTimeout),
                  migrator: try Migrator.load(directory: URL(fileURLWithPath: TestEnvironment.migrationsDirectory)),
                  logger: quietLogger)
    }

    /// Runs `body` with a store on this database and closes it after.
    public func withStore<T: Sendable>(poolSize: Int = 4, _ body: (Store) async throws -> T) async throws -> T {
        let store = try store(poolSize: poolSize)
        do {
            let value = try await body(store)
            await store.close()
            return value
        } catch {
            await store.close()
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

extension TestDatabase {
    /// Runs `body` with a raw pool (for the test's own SQL) and a store.
    public func withPoolAndStore<T: Sendable>(size: Int = 4, _ body: (PostgresPool, Store) async throws -> T) async throws -> T {
        try await withPool(size: size) { pool in
            try await withStore(poolSize: size) { store in try await body(pool, store) }
        }
    }
}

/// Evaluates rules through the store as a worker does (without the
/// engine's counters and metrics).
public struct TestEvaluator: Sendable {
    public let store: Store
    public let workerID: String
    public init(store: Store, workerID: String) {
        self.store = store
        self.workerID = workerID
    }

    public func evaluate(ruleID: Int32, trigger: EvaluationTrigger, force: Bool = false) async throws -> EvaluationRepository.Outcome {
        try await store.evaluations.evaluate(ruleID: ruleID, trigger: trigger, force: force, workerID: workerID)
    }
}
