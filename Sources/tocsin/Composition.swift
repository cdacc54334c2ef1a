import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import TocsinAPI
import TocsinCore
import TocsinEngine
import TocsinNotify
import TocsinStore

/// The one composition root: `serve`, `worker` and `run` wire the same
/// pieces here, by role. A process has one store (its pools), one clock and
/// one LISTEN connection, whatever its roles.
struct Runtime {
    enum Role: Sendable { case api, worker }

    let config: Configuration
    let logger: Logger
    let store: Store
    let roles: Set<Role>
    let events: DatabaseEvents

    /// Opens the store and checks (or, with `migrate`, applies) the schema.
    static func open(config: Configuration, logger: Logger, migrate: Bool, roles: Set<Role>) async throws -> Runtime {
        let store = try openStore(config: config, logger: logger)
        do {
            if migrate { try await store.migrate() }
            let status = try await store.migrationStatus()
            if let message = Migrator.notCurrentMessage(status) { throw CLIError(message) }
            try await store.clock.sync()
            if !status.unknown.isEmpty {
                logger.warning("database has migrations this binary does not know; it was migrated by a newer version",
                               metadata: ["migrations": "\(status.unknown)"])
            }
        } catch {
            await store.close()
            throw error
        }
        var topics: Set<DatabaseEvents.Topic> = []
        if roles.contains(.api) { topics.formUnion(APIDependencies.topics) }
        if roles.contains(.worker) { topics.formUnion(AlertScheduler.topics.union(Dispatcher.topics)) }
        return Runtime(config: config, logger: logger, store: store, roles: roles, events: store.makeEventStream(topics: topics))
    }

    /// The store for `config`: the pools, and the migrations found beside
    /// the binary (or in MIGRATIONS_DIR).
    static func openStore(config: Configuration, logger: Logger) throws -> Store {
        let url = try config.requireDatabaseURL()
        let directory = try Resources.locate("migrations", explicit: config.migrationsDirectory, marker: "0001_init.sql")
        let storeConfig = Store.Configuration(
            databaseURL: url, poolSize: config.databasePoolSize, readURL: config.databaseReadURL,
            readPoolSize: config.readPoolSize, readTimeout: .seconds(config.readTimeoutSeconds),
            listenURL: config.listenDatabaseURL, prepareStatements: config.preparedStatements)
        do {
            return try Store(configuration: storeConfig, migrator: try Migrator.load(directory: directory), logger: logger)
        } catch let error as Store.ConfigurationError {
            throw CLIError(error.description)
        }
    }

    /// Everything the process runs but the HTTP server: the pools and the
    /// clock first (so they close last), the LISTEN connection, the worker's
    /// services, the separate /metrics server.
    func services(localSecrets: [String: String] = [:]) throws -> [any Service] {
        var services: [any Service] = store.services + [events]
        if roles.contains(.worker) { services += try workerServices(localSecrets: localSecrets) }
        if config.metricsEnabled, config.metricsPort != nil {
            services.append(buildMetricsApplication(config: config, store: store, logger: logger))
        }
        return services
    }

    func workerServices(localSecrets: [String: String]) throws -> [any Service] {
        let workerID = WorkerRepository.makeID()
        let evaluator = RuleEvaluator(store: store, workerID: workerID,
                                      pauseInsideTransaction: config.testEvaluationPauseMs.map { .milliseconds($0) })
        var settings = Dispatcher.Settings()
        settings.retry = RetryPolicy(maxAttempts: config.notifyMaxAttempts, baseDelay: config.notifyRetryBaseSeconds)
        settings.leaseSeconds = config.notifyLeaseSeconds
        settings.concurrency = config.notifyConcurrency
        settings.pauseAfterClaim = config.testDispatchPauseMs.map { .milliseconds($0) }
        let timeoutMs = config.notifyTimeoutSeconds * 1000
        let transport = Transport(threads: config.notifyConcurrency, connectTimeoutMs: min(5_000, timeoutMs), totalTimeoutMs: timeoutMs)
        let sender = Sender(transport: transport, publicURL: config.publicURL)
        let dispatcher: Dispatcher
        do {
            dispatcher = try Dispatcher(store: store, resolver: SecretResolver(localSecrets: localSecrets), sender: sender,
                                        events: events, owner: workerID, settings: settings, logger: logger)
        } catch let error as Dispatcher.LeaseTooShort {
            throw CLIError(error.description)
        }
        let heartbeat = Duration.seconds(min(10, config.alertCheckIntervalSeconds))
        return [
            MaintenanceService(
                store: store,
                policy: .init(metricDays: config.metricsRetentionDays, evaluationDays: config.retention.evaluationDays,
                              alertDays: config.retention.alertDays, notificationDays: config.retention.notificationDays),
                logger: logger),
            AlertScheduler(evaluator: evaluator, events: events, concurrency: config.workerConcurrency, heartbeat: heartbeat,
                           logger: logger),
            dispatcher,
            ExternalAlertExpiry(store: store, logger: logger),
        ]
    }

    /// The HTTP application, running `services` beside the server.
    func application(services: [any Service]) throws -> some ApplicationProtocol {
        let fallback = CheckRunner(evaluator: RuleEvaluator(store: store, workerID: "api-" + WorkerRepository.makeID()))
        let dependencies = APIDependencies(store: store, events: events, checks: fallback,
                                           backtests: BacktestRunner(store: store, retentionDays: config.metricsRetentionDays))
        return try buildApplication(config: config, dependencies: dependencies, services: services, logger: logger) {
            [host = config.host, logger] port in
            logger.info("serving", metadata: ["host": "\(host)", "port": "\(port)"])
        }
    }
}

/// Runs services until SIGTERM/SIGINT, then shuts them down in reverse
/// order (so the pools, first, close last).
func runServices(_ services: [any Service], logger: Logger) async throws {
    let group = ServiceGroup(configuration: .init(
        services: services.map { .init(service: $0) },
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    ))
    try await group.run()
}
