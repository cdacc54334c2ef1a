import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import TocsinCore
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
    let workerID = WorkerStore.makeID()
    let evaluator = RuleEvaluator(
        pool: store.pool, workerID: workerID,
        pauseInsideTransaction: config.testEvaluationPauseMs.map { .milliseconds($0) })
    let listener = PostgresListener(conninfo: try config.requireDatabaseURL(), channels: AlertScheduler.channels,
                                    logger: logger)
    let heartbeat = Duration.seconds(min(10, config.alertCheckIntervalSeconds))
    return [
        MaintenanceService(store: store, retentionDays: config.metricsRetentionDays, logger: logger),
        listener,
        AlertScheduler(store: store, evaluator: evaluator, listener: listener, concurrency: config.workerConcurrency,
                       heartbeat: heartbeat, logger: logger),
    ]
}
