import Logging
import ServiceLifecycle
import TocsinStore

/// The worker's housekeeping: daily partitions ahead and behind, and the
/// retention of every table that grows (see `MaintenanceRepository`). Runs
/// at start and then every `interval`; when several workers run it, one
/// does each step and the others skip it (advisory locks).
public struct MaintenanceService: Service, CustomStringConvertible {
    public var description: String { "MaintenanceService" }
    let store: Store
    let policy: MaintenanceRepository.Policy
    let interval: Duration
    let logger: Logger

    public init(store: Store, policy: MaintenanceRepository.Policy, interval: Duration = .seconds(600), logger: Logger) {
        self.store = store
        self.policy = policy
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let report = try await store.maintenance.run(policy)
                    if report.partitionsCreated > 0 || report.partitionsDropped > 0 || report.rowsPruned > 0
                        || report.rollupRowsMerged > 0 {
                        logger.info("maintenance done", metadata: [
                            "partitions.created": "\(report.partitionsCreated)",
                            "partitions.dropped": "\(report.partitionsDropped)",
                            "rows.deleted": "\(report.rowsDeleted.filter { $0.value > 0 })",
                            "rollups.merged": "\(report.rollupRowsMerged)",
                        ])
                    }
                    if !report.deferred.isEmpty {
                        // Someone held a table lock longer than the lock timeout.
                        logger.notice("maintenance steps deferred to the next round; a long query held their table",
                                      metadata: ["steps": "\(report.deferred)"])
                    }
                } catch {
                    logger.warning("maintenance failed; retrying later", metadata: ["error": "\(error)"])
                }
                // A little jitter so workers started together spread out.
                let jitter = Duration.milliseconds(Int.random(in: 0...5_000))
                try? await Task.sleep(for: interval + jitter)
            }
        }
    }
}
