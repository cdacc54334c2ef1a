import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import TocsinAPI
import TocsinCore
import TocsinEngine
import TocsinStore

/// The real HTTP application, built by `buildApplication` as `tocsin serve`
/// builds it, listening on a free port of 127.0.0.1, for one test.
public final class RunningApp: Sendable {
    public let client: TestHTTPClient
    public let config: Configuration
    public let store: Store
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    public static func start(
        databaseURL: String,
        services: [any Service] = [],
        configure: (inout Configuration) -> Void = { _ in }
    ) async throws -> RunningApp {
        var config = Configuration()
        config.databaseURL = databaseURL
        config.port = 0
        config.databasePoolSize = 4
        config.migrationsDirectory = TestEnvironment.migrationsDirectory
        config.contractLogPath = ProcessInfo.processInfo.environment["TOCSIN_CONTRACT_LOG"]
        configure(&config)
        _ = testMetricsBootstrap
        var logger = Logger(label: "test.app")
        logger.logLevel = .critical
        let store = try Store(
            configuration: .init(databaseURL: databaseURL, poolSize: config.databasePoolSize, readURL: config.databaseReadURL,
                                 readPoolSize: config.readPoolSize, readTimeout: .seconds(config.readTimeoutSeconds),
                                 prepareStatements: config.preparedStatements),
            migrator: try Migrator.load(directory: URL(fileURLWithPath: TestEnvironment.migrationsDirectory)), logger: logger)
        let events = store.makeEventStream(topics: APIDependencies.topics)
        let dependencies = APIDependencies(
            store: store, events: events,
            checks: CheckRunner(evaluator: RuleEvaluator(store: store, workerID: "api-test-" + randomSuffix())),
            backtests: BacktestRunner(store: store, retentionDays: config.metricsRetentionDays))
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = try buildApplication(config: config, dependencies: dependencies, services: store.services + [events] + services,
                                       logger: logger) { port in
            continuation.yield(port)
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: app)], logger: logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            throw TestEnvironment.Missing(description: "the application did not start")
        }
        return RunningApp(client: TestHTTPClient(port: port), config: config, store: store, group: group, task: task)
    }

    init(client: TestHTTPClient, config: Configuration, store: Store, group: ServiceGroup, task: Task<Void, any Error>) {
        self.client = client
        self.config = config
        self.store = store
        self.group = group
        self.task = task
    }

    /// Graceful shutdown: in-flight requests finish, then the pools close.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

/// swift-metrics can be bootstrapped once per process: the tests share one
/// Prometheus registry, like a real process.
let testMetricsBootstrap: Void = {
    MetricsSystem.bootstrap(TocsinMetricsFactory())
}()

/// Starts the app on `database`, runs `body`, stops the app.
public func withRunningApp<T: Sendable>(
    _ database: TestDatabase,
    configure: (inout Configuration) -> Void = { _ in },
    _ body: (RunningApp) async throws -> T
) async throws -> T {
    let app = try await RunningApp.start(databaseURL: database.url, configure: configure)
    do {
        let value = try await body(app)
        await app.stop()
        return value
    } catch {
        await app.stop()
        throw error
    }
}

extension TestDatabase {
    /// Creates an API key directly in the database and returns it.
    public func createKey(name: String = "key-" + randomSuffix(), scopes: [Scope]) async throws -> String {
        try await withStore(poolSize: 1) { store in
            try await store.apiKeys.create(name: name, scopes: scopes).key
        }
    }

    /// Applies rules as `tocsin rules apply` does.
    public func applyRules(_ rules: [Rule]) async throws {
        try await withStore(poolSize: 1) { store in
            _ = try await store.rules.apply(rules, appliedBy: "test", source: "test")
        }
    }

    /// Applies the shipped default rules, with `intervalSeconds` for the
    /// rules that name no interval (what ALERT_CHECK_INTERVAL gives
    /// `tocsin rules apply`), and `maxGroups` for every rule when given (for
    /// tests with more groups than the default bound).
    public func applyDefaultRules(intervalSeconds: Int = 60, maxGroups: Int? = nil) async throws {
        let path = TestEnvironment.repositoryRoot.appendingPathComponent("rules/default.yaml").path
        var rules = RuleFile.parse(yaml: try String(contentsOfFile: path, encoding: .utf8),
                                   defaultIntervalSeconds: intervalSeconds).rules
        if let maxGroups { for i in rules.indices { rules[i].maxGroups = maxGroups } }
        try await applyRules(rules)
    }

    /// Applies a notification configuration; returns the inline secrets a
    /// dispatcher of the test must be given.
    @discardableResult
    public func applyNotify(_ config: NotifyConfig) async throws -> [String: String] {
        try await withStore(poolSize: 1) { store in
            let (detached, secrets) = config.detachingSecrets(environment: [:])
            _ = try await store.config.applyNotify(detached, appliedBy: "test", source: "test")
            return secrets
        }
    }
}
