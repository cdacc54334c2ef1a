import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import Synchronization
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
///   cancels the query. With `readURL` (standbys) it connects there; when no
///   standby can be reached, reads go to the primary (on connections of
///   their own) until one answers again, and every read reports how far
///   behind the standby that served it was (`ReadStaleness`).
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
        /// Prepare statements once per connection (see DB_PREPARED_STATEMENTS).
        public var prepareStatements: Bool

        public init(databaseURL: String, poolSize: Int = 10, readURL: String? = nil, readPoolSize: Int = 5,
                    readTimeout: Duration = .seconds(5), listenURL: String? = nil, prepareStatements: Bool = true) {
            self.prepareStatements = prepareStatements
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
    /// Reads on the primary while no standby answers (only with a readURL).
    let readFallback: PostgresPool?
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
    public let externalAlerts: ExternalAlertRepository
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
        let prepare = configuration.prepareStatements
        let primary = PostgresPool(
            configuration: .init(conninfo: configuration.databaseURL, size: configuration.poolSize, prepareStatements: prepare),
            logger: logger)
        let reads = PostgresPool(
            configuration: .init(conninfo: configuration.readURL ?? configuration.databaseURL, size: configuration.readPoolSize,
                                 prepareStatements: prepare),
            logger: logger)
        // Connections open on first use: this costs nothing while a standby answers.
        let fallback = configuration.readURL == nil ? nil : PostgresPool(
            configuration: .init(conninfo: configuration.databaseURL, size: configuration.readPoolSize,
                                 prepareStatements: prepare),
            logger: logger)
        self.init(primary: primary, reads: reads, readFallback: fallback, readTimeout: configuration.readTimeout,
                  listenURL: configuration.listenURL ?? configuration.databaseURL, migrator: migrator, logger: logger)
    }

    init(primary: PostgresPool, reads: PostgresPool, readFallback: PostgresPool? = nil, readTimeout: Duration,
         listenURL: String, migrator: Migrator, logger: Logger) {
        self.primary = primary
        self.reads = reads
        self.readFallback = readFallback
        self.readTimeout = readTimeout
        self.listenURL = listenURL
        self.logger = logger
        self.migrator = migrator
        let database = Database(primary: primary, reads: reads, readTimeout: readTimeout,
                                replica: readFallback.map { ReplicaReads(fallback: $0, logger: logger) })
        self.clock = DatabaseClock(pool: primary, logger: logger)
        self.config = ConfigRepository(database: database)
        self.apiKeys = APIKeyRepository(database: database)
        self.sessions = SessionRepository(database: database)
        self.events = MetricEventRepository(database: database, announcer: EventAnnouncer(pool: primary, logger: logger))
        self.rules = RuleRepository(database: database, config: config)
        self.evaluations = EvaluationRepository(database: database, config: config)
        self.alerts = AlertRepository(database: database, config: config)
        self.externalAlerts = ExternalAlertRepository(database: database, config: config)
        self.workers = WorkerRepository(database: database)
        self.checks = CheckRequestRepository(database: database)
        self.outbox = OutboxRepository(database: database, config: config)
        self.silences = SilenceRepository(database: database)
        self.maintenance = MaintenanceRepository(database: database)
    }

    /// The services every process runs: the pools first (so they close
    /// last) and the clock sync.
    public var services: [any Service] { [primary, reads] + (readFallback.map { [$0] } ?? []) + [clock] }

    /// Closes the pools (one-shot commands; long-running processes close
    /// them as services).
    public func close() async {
        await primary.close()
        await reads.close()
        await readFallback?.close()
    }

    /// Connection counts of the pools, for /metrics.
    public var poolStatistics: [(pool: String, statistics: PostgresPool.Statistics)] {
        [("primary", primary.statistics), ("read", reads.statistics)]
            + (readFallback.map { [("read_fallback", $0.statistics)] } ?? [])
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
    /// Set when reads go to standbys.
    var replica: ReplicaReads?

    /// A request-path read: on the read pool, cancelled at the deadline.
    /// From a standby, it records the standby's lag for the response; when
    /// no standby can be reached, it runs on the primary instead.
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        guard let replica else { return try await reads.withConnection(deadline: readTimeout, body) }
        if !replica.standbyDown {
            do {
                let (value, lag) = try await reads.withConnection(deadline: readTimeout) { connection in
                    (try body(connection), try? replica.lag(of: connection))
                }
                if let lag { ReadStaleness.record(lag) }
                return value
            } catch let error as PostgresError where error.isConnectionFailure {
                replica.markDown(error)
            }
        }
        return try await replica.fallback.withConnection(deadline: readTimeout, body)
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

/// How stale the data of a response may be: the largest replay lag, in
/// seconds, of the standbys its reads ran on (none when every read ran on
/// the primary). The API sets a recorder per request and reports it.
public enum ReadStaleness {
    public final class Recorder: Sendable {
        private let lag = Mutex<Double?>(nil)
        public init() {}
        /// The largest lag recorded, or nil if no read ran on a standby.
        public var seconds: Double? { lag.withLock { $0 } }
        func record(_ seconds: Double) { lag.withLock { $0 = max($0 ?? 0, seconds) } }
    }

    @TaskLocal public static var recorder: Recorder?

    /// Records a lag for the current request (also what a cached read
    /// reports again when it is reused).
    public static func record(_ seconds: Double) { recorder?.record(seconds) }
}

/// The state of reads on standbys: each connection's last measured lag
/// (measured at most once a second per connection), and whether the
/// standbys are unreachable (then reads go to the primary for 5 s before a
/// standby is tried again).
final class ReplicaReads: Sendable {
    let fallback: PostgresPool
    let logger: Logger
    private struct State {
        var downUntil: ContinuousClock.Instant?
        var lags: [ObjectIdentifier: (seconds: Double, at: ContinuousClock.Instant)] = [:]
    }
    private let state = Mutex(State())
    static let retryAfter: Duration = .seconds(5)
    static let lagMaxAge: Duration = .seconds(1)

    init(fallback: PostgresPool, logger: Logger) {
        self.fallback = fallback
        self.logger = logger
    }

    var standbyDown: Bool {
        state.withLock { s in
            guard let until = s.downUntil else { return false }
            if ContinuousClock.now >= until { s.downUntil = nil; return false }
            return true
        }
    }

    func markDown(_ error: PostgresError) {
        let first = state.withLock { s -> Bool in
            defer { s.downUntil = ContinuousClock.now + Self.retryAfter }
            return s.downUntil == nil
        }
        if first {
            logger.warning("no standby answers; reads go to the primary meanwhile", metadata: ["error": "\(error)"])
        }
    }

    /// The replay lag of the server behind `connection`: 0 on a primary or a
    /// standby that has replayed all it received while streaming; else the
    /// age of the last transaction it replayed.
    func lag(of connection: PostgresConnection) throws -> Double {
        let id = ObjectIdentifier(connection)
        let now = ContinuousClock.now
        if let known = state.withLock({ $0.lags[id] }), now - known.at < Self.lagMaxAge { return known.seconds }
        let seconds: Double = try connection.query(
            """
            SELECT CASE
                WHEN NOT pg_is_in_recovery() THEN 0
                WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
                     AND coalesce((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false) THEN 0
                ELSE coalesce(greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())), 0)
            END::float8 AS lag
            """)[0].decode("lag")
        state.withLock { s in
            if s.lags.count > 256 { s.lags = s.lags.filter { now - $0.value.at < .seconds(60) } }
            s.lags[id] = (seconds, now)
        }
        return seconds
    }
}
