import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import TocsinCore
import TocsinNotify
import TocsinStore

/// Loads and checks the rules file named by the configuration.
func loadRules(config: Configuration) throws -> (path: String, rules: [Rule]) {
    let path: String
    if let file = config.alertRulesFile {
        path = file
    } else {
        path = try Resources.locate("rules", marker: "default.yaml").appendingPathComponent("default.yaml").path
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CLIError("cannot read the rules file \(path) (ALERT_RULES_FILE)")
    }
    let result = RuleFile.parse(yaml: String(decoding: data, as: UTF8.self),
                                defaultIntervalSeconds: config.alertCheckIntervalSeconds)
    if let first = result.problems.first {
        let more = result.problems.count > 1 ? " (and \(result.problems.count - 1) more; run `tocsin rules check \(path)`)" : ""
        throw CLIError("invalid rules file \(path): \(first)\(more)")
    }
    return (path, result.rules)
}

/// The background services of `tocsin worker` and `tocsin run`. The rules
/// file is loaded first: a worker refuses to start on an invalid one.
func workerServices(config: Configuration, store: Store, logger: Logger) async throws -> [any Service] {
    let (path, rules) = try loadRules(config: config)
    let report = try await store.rules.sync(rules)
    logger.info("rules loaded", metadata: [
        "file": .string(path), "rules": "\(rules.count)", "changed": "\(report.upserted)", "disabled": "\(report.disabled)",
    ])
    let notify = try NotifyConfig.load(config: config, environment: ProcessInfo.processInfo.environment)
    let workerID = WorkerStore.makeID()
    let evaluator = RuleEvaluator(
        pool: store.pool, workerID: workerID, hooks: TransitionHooks(outbox: NotificationStore.outboxHook(config: notify)),
        pauseInsideTransaction: config.testEvaluationPauseMs.map { .milliseconds($0) })
    let listener = PostgresListener(conninfo: try config.requireListenURL(),
                                    channels: AlertScheduler.channels + [NotificationStore.channel], logger: logger)
    let heartbeat = Duration.seconds(min(10, config.alertCheckIntervalSeconds))
    var services: [any Service] = [
        MaintenanceService(store: store, retentionDays: config.metricsRetentionDays, logger: logger),
        listener,
        AlertScheduler(store: store, evaluator: evaluator, listener: listener, concurrency: config.workerConcurrency,
                       heartbeat: heartbeat, logger: logger),
    ]
    if !notify.channels.isEmpty {
        var settings = Dispatcher.Settings()
        settings.retry = RetryPolicy(maxAttempts: config.notifyMaxAttempts, baseDelay: config.notifyRetryBaseSeconds)
        settings.leaseSeconds = config.notifyLeaseSeconds
        settings.concurrency = config.notifyConcurrency
        settings.pauseAfterClaim = config.testDispatchPauseMs.map { .milliseconds($0) }
        let sender = Sender(transport: Transport(threads: config.notifyConcurrency), publicURL: config.publicURL)
        services.append(Dispatcher(store: store, config: notify, sender: sender, listener: listener, owner: workerID,
                                   settings: settings, logger: logger))
        logger.info("notifications enabled", metadata: ["channels": .string(notify.channels.map(\.name).joined(separator: ","))])
    }
    return services
}
