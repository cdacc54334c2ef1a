import Foundation
import Logging
import PostgresClient
import Synchronization
import TestSupport
import TocsinCore
import TocsinEngine
import TocsinNotify
import TocsinStore

/// One store per test database (a process has one), made on first use.
private let stores = Mutex<[String: Store]>([:])

/// The store of the test database `pool` is on.
func makeStore(_ pool: PostgresPool) -> Store {
    let url = pool.configuration.conninfo
    return stores.withLock { stores in
        if let store = stores[url] { return store }
        let store = try! Store(configuration: .init(databaseURL: url, poolSize: 4, readPoolSize: 2),
                               migrator: Migrator(migrations: []), logger: Logger(label: "test"))
        stores[url] = store
        return store
    }
}

/// Applies `notify` as `tocsin run` does with a file of inline secrets, and
/// returns the secrets a dispatcher of this process resolves.
@discardableResult
func applyNotify(_ pool: PostgresPool, _ notify: NotifyConfig) async throws -> [String: String] {
    let (detached, secrets) = notify.detachingSecrets(environment: [:])
    _ = try await makeStore(pool).config.applyNotify(detached, appliedBy: "test", source: "test")
    return secrets
}

/// Applies a rule that fires on any `x` event and makes it fire for each of
/// `platforms`, with `notify` routing the transitions. Returns the rule id.
@discardableResult
func fire(_ pool: PostgresPool, notify: NotifyConfig, platforms: [String?] = [nil], severity: Rule.Severity = .error,
          labels: [String: String] = [:]) async throws -> Int32 {
    let store = makeStore(pool)
    try await applyNotify(pool, notify)
    let rule = Rule(name: "test_rule", description: "Test rule fired by the suite", kind: .count, metric: "x", windowSeconds: 600,
                    threshold: 0, groupBy: platforms.contains { $0 != nil } ? .platform : .none, severity: severity,
                    labels: labels)
    try await store.rules.apply([rule], appliedBy: "test", source: "test")
    for platform in platforms {
        try await pool.query(
            "INSERT INTO metric_events (occurred_at, name, platform, value) VALUES (now() - interval '5 seconds', 'x', \(platform), 1)")
    }
    let id: Int32 = try await pool.query("SELECT id FROM alert_rules WHERE name = 'test_rule'")[0].decode("id")
    _ = try await TestEvaluator(store: store, workerID: "test").evaluate(ruleID: id, trigger: .manual, force: true)
    return id
}

/// Resolves every open alert of the rule by evaluating after its events are gone.
func resolveAll(_ pool: PostgresPool, notify: NotifyConfig, ruleID: Int32) async throws {
    try await pool.query("DELETE FROM metric_events WHERE name = 'x'")
    _ = try await TestEvaluator(store: makeStore(pool), workerID: "test").evaluate(ruleID: ruleID, trigger: .manual, force: true)
}

func notificationStatuses(_ pool: PostgresPool) async throws -> [String] {
    try await pool.query("SELECT status FROM notifications ORDER BY id").map { try $0.decode("status") }
}

/// Runs a dispatcher until `body` returns.
func withDispatcher<T: Sendable>(
    _ pool: PostgresPool, notify: NotifyConfig, settings: Dispatcher.Settings = fastSettings(), timeoutMs: Int = 15_000,
    _ body: () async throws -> T
) async throws -> T {
    let secrets = try await applyNotify(pool, notify)
    let transport = Transport(threads: 4, connectTimeoutMs: 2_000, totalTimeoutMs: timeoutMs)
    let dispatcher = try Dispatcher(
        store: makeStore(pool), resolver: SecretResolver(localSecrets: secrets),
        sender: Sender(transport: transport, publicURL: "https://tocsin.example.com"), events: nil,
        owner: "dispatcher-" + randomSuffix(), settings: settings, logger: Logger(label: "test"))
    let task = Task { try await dispatcher.run() }
    do {
        let value = try await body()
        task.cancel()
        _ = try? await task.value
        await transport.shutdown()
        return value
    } catch {
        task.cancel()
        _ = try? await task.value
        await transport.shutdown()
        throw error
    }
}

func fastSettings(maxAttempts: Int = 8, base: Double = 0.3) -> Dispatcher.Settings {
    var settings = Dispatcher.Settings()
    settings.retry = RetryPolicy(maxAttempts: maxAttempts, baseDelay: base, maxDelay: 2)
    settings.leaseSeconds = 30
    return settings
}
