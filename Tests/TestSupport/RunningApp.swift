import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import TocsinAPI
import TocsinCore
import TocsinStore

/// The real HTTP application, built by `buildApplication(config:)` and
/// listening on a free port of 127.0.0.1, for one test.
public final class RunningApp: Sendable {
    public let client: TestHTTPClient
    public let config: Configuration
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
        configure(&config)
        _ = testMetricsBootstrap
        var logger = Logger(label: "test.app")
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = try buildApplication(config: config, services: services, logger: logger) { port in
            continuation.yield(port)
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: app)], logger: logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            throw TestEnvironment.Missing(description: "the application did not start")
        }
        return RunningApp(client: TestHTTPClient(port: port), config: config, group: group, task: task)
    }

    init(client: TestHTTPClient, config: Configuration, group: ServiceGroup, task: Task<Void, any Error>) {
        self.client = client
        self.config = config
        self.group = group
        self.task = task
    }

    /// Graceful shutdown: in-flight requests finish, then the pool closes.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

/// swift-metrics can be bootstrapped once per process: the tests share one
/// Prometheus registry, like a real process.
let testMetricsBootstrap: Void = {
    MetricsSystem.bootstrap(PrometheusMetricsFactory())
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
        try await withPool(size: 1) { pool in
            try await ApiKeyStore(pool: pool).create(name: name, scopes: scopes).key
        }
    }
}
