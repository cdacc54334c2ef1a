import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import TocsinCore

/// The database side of a Tocsin process: the pool and a repository per
/// table family, built once from the configuration and shared.
public struct Store: Sendable, CustomStringConvertible {
    public var description: String { "Store" }
    public let pool: PostgresPool
    public let migrator: Migrator
    public let apiKeys: ApiKeyStore
    public let metrics: MetricStore
    public let metricReads: MetricReads
    public let clock: DatabaseClock
    public let rules: RuleStore
    public let alerts: AlertStore
    public let workers: WorkerStore
    public let checks: CheckRequests
    public let notifications: NotificationStore
    public let silences: SilenceStore
    public let sessions: SessionStore

    public init(pool: PostgresPool, migrator: Migrator, logger: Logger) {
        self.pool = pool
        self.migrator = migrator
        self.apiKeys = ApiKeyStore(pool: pool)
        self.metrics = MetricStore(pool: pool)
        self.metricReads = MetricReads(pool: pool)
        self.clock = DatabaseClock(pool: pool, logger: logger)
        self.rules = RuleStore(pool: pool)
        self.alerts = AlertStore(pool: pool)
        self.workers = WorkerStore(pool: pool)
        self.checks = CheckRequests(pool: pool)
        self.notifications = NotificationStore(pool: pool)
        self.silences = SilenceStore(pool: pool)
        self.sessions = SessionStore(pool: pool)
    }

    /// The services every process runs: the pool first (so it closes last)
    /// and the clock sync.
    public var services: [any Service] { [pool, clock] }

    /// Validates `DATABASE_URL`, loads the migration files and creates the
    /// pool (connections open on first use).
    public static func make(config: Configuration, logger: Logger) throws -> Store {
        let url = try config.requireDatabaseURL()
        do {
            try PostgresConnection.validate(conninfo: url)
        } catch let error as PostgresError {
            throw Configuration.Error("DATABASE_URL is not a valid PostgreSQL connection string: \(error.message)")
        }
        let directory = try Resources.locate("migrations", explicit: config.migrationsDirectory, marker: "0001_init.sql")
        let migrator = try Migrator.load(directory: directory)
        let pool = PostgresPool(
            configuration: .init(conninfo: url, size: config.databasePoolSize),
            logger: logger
        )
        return Store(pool: pool, migrator: migrator, logger: logger)
    }
}
