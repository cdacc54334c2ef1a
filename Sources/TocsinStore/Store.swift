import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import TocsinCore

/// The database side of a Tocsin process: a repository per table family,
/// over two pools that nothing outside this module sees.
///
/// - The **primary pool** serves writes and everything that must see its
///   own writes: ingestion, evaluation, claims, manual actions, sessions.
/// - The **read pool** serves request-path reads (summaries, lists,
///   history, backtests). It is separate so that expensive reads can never
///   take the connections ingestion and evaluation need, and every read on
///   it runs under a deadline (`readTimeout`) after which the server
///   cancels the query.
public struct Store: Sendable, CustomStringConvertible {
    public var description: String { "Store" }

    public struct Configuration: Sendable {
        /// libpq URI or key=value string of the primary (a multi-host URI with
        /// `target_session_attrs=read-write` in a cluster).
        public var databaseURL: String
        public var poolSize: Int
        /// The read pool's connection (standbys), or nil for the primary.
        public var readURL: String?
        public var readPoolSize: Int
        /// How long a request-path read may run before it is cancelled.
        public var readTimeout: Duration
        /// The connection for LISTEN (PostgreSQL directly when the URL goes
        /// through a transaction-pooling PgBouncer), or nil for the primary's.
        public var listenURL: String?

        public init(databaseURL: String, poolSize: Int = 10, readURL: String? = nil, readPoolSize: Int = 5,
                    readTimeout: Duration = .seconds(5), listenURL: String? = nil) {
            self.databaseURL = databaseURL
            self.poolSize = poolSize
            self.readURL = readURL
            self.readPoolSize = readPoolSize
            self.readTimeout = readTimeout
            self.listenURL = listenURL
        }
    }

    public struct ConfigurationError: Error, CustomStringConvertible {
        public var description: String
    }

    let primary: PostgresPool
    let reads: PostgresPool
    let readTimeout: Duration
    let listenURL: String
    let logger: Logger

    public let migrator: Migrator
    public let clock: DatabaseClock
    public let apiKeys: APIKeyRepository
    public let sessions: SessionRepository
    public let events: MetricEventRepository
    public let rules: RuleRepository
    public let evaluations: EvaluationRepository
    public let alerts: AlertRepository
    public let workers: WorkerRepository
    public let checks: CheckRequestRepository
    public let outbox: OutboxRepository
    public let silences: SilenceRepository
    public let maintenance: MaintenanceRepository
    public let config: ConfigRepository

    /// Validates the connection strings and creates the pools (connections
    /// open on first use).
    public init(configuration: Configuration, migrator: Migrator, logger: Logger) throws {
        for (name, url) in [("DATABASE_URL", configuration.databaseURL), ("DATABASE_READ_URL", configuration.readURL),
                            ("LISTEN_DATABASE_URL", configuration.listenURL)] {
            guard let url else { continue }
            do {
                try PostgresConnection.validate(conninfo: url)
            } catch let error as PostgresError {
                throw ConfigurationError(description: "\(name) is not a valid PostgreSQL connection string: \(error.message)")
            }
        }
        let primary = PostgresPool(configuration: .init(conninfo: configuration.databaseURL, size: configuration.poolSize),
                                   logger: logger)
        let reads = PostgresPool(
            configuration: .init(conninfo: configuration.readURL ?? configuration.databaseURL, size: configuration.readPoolSize),
            logger: logger)
        self.init(primary: primary, reads: reads, readTimeout: configuration.readTimeout,
                  listenURL: configuration.listenURL ?? configuration.databaseURL, migrator: migrator, logger: logger)
    }

    init(primary: PostgresPool, reads: PostgresPool, readTimeout: Duration, listenURL: String, migrator: Migrator,
         logger: Logger) {
        self.primary = primary
        self.reads = reads
        self.readTimeout = readTimeout
        self.listenURL = listenURL
        self.logger = logger
        self.migrator = migrator
        let database = Database(primary: primary, reads: reads, readTimeout: readTimeout)
        self.clock = DatabaseClock(pool: primary, logger: logger)
        self.config = ConfigRepository(database: database)
        self.apiKeys = APIKeyRepository(database: database)
        self.sessions = SessionRepository(database: database)
        self.events = MetricEventRepository(database: database)
        self.rules = RuleRepository(database: database, config: config)
        self.evaluations = EvaluationRepository(database: database, config: config)
        self.alerts = AlertRepository(database: database, config: config)
        self.workers = WorkerRepository(database: database)
        self.checks = CheckRequestRepository(database: database)
        self.outbox = OutboxRepository(database: database, config: config)
        self.silences = SilenceRepository(database: database)
        self.maintenance = MaintenanceRepository(database: database)
    }

    /// The services every process runs: the pools first (so they close
    /// last) and the clock sync.
    public var services: [any Service] { [primary, reads, clock] }

    /// Closes both pools (one-shot commands; long-running processes close
    /// them as services).
    public func close() async {
        await primary.close()
        await reads.close()
    }

    /// Connection counts of both pools, for /metrics.
    public var poolStatistics: [(pool: String, statistics: PostgresPool.Statistics)] {
        [("primary", primary.statistics), ("read", reads.statistics)]
    }

    // MARK: Migrations

    public func migrationStatus() async throws -> MigrationStatus {
        try await migrator.status(pool: primary)
    }

    @discardableResult
    public func migrate() async throws -> [String] {
        try await migrator.migrate(pool: primary, logger: logger)
    }

    /// A LISTEN connection for `topics`: one per process, shared by
    /// everything in it that waits on the database.
    public func makeEventStream(topics: Set<DatabaseEvents.Topic>) -> DatabaseEvents {
        DatabaseEvents(conninfo: listenURL, topics: topics, logger: logger)
    }
}

/// The pools as the repositories use them.
struct Database: Sendable {
    let primary: PostgresPool
    let reads: PostgresPool
    let readTimeout: Duration

    /// A request-path read: on the read pool, cancelled at the deadline.
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await reads.withConnection(deadline: readTimeout, body)
    }

    func read(_ query: PostgresQuery) async throws -> PostgresRows {
        try await read { try $0.query(query) }
    }

    /// One statement on the primary.
    @discardableResult
    func write(_ query: PostgresQuery) async throws -> PostgresRows {
        try await primary.query(query)
    }

    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await primary.withTransaction(body)
    }
}
