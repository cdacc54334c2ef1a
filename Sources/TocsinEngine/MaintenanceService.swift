import Logging
import ServiceLifecycle
import TocsinStore

/// The worker's housekeeping: daily partitions ahead and behind, retention,
/// expired idempotency keys. Runs at start and then every `interval`; when
/// several workers run it, one does the work and the others skip (advisory
/// lock).
public struct MaintenanceService: Service, CustomStringConvertible {
    public var description: String { "MaintenanceService" }
    let store: Store
    let retentionDays: Int
    let interval: Duration
    let logger: Logger

    public init(store: Store, retentionDays: Int, interval: Duration = .seconds(600), logger: Logger) {
        self.store = store
        self.retentionDays = retentionDays
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let report = try await store.maintenance.run(retentionDays: retentionDays)
                    if report.ran && (report.partitionsCreated > 0 || report.partitionsDropped > 0) {
                        logger.info("partitions maintained", metadata: [
                            "partitions.created": "\(report.partitionsCreated)",
                            "partitions.dropped": "\(report.partitionsDropped)",
                        ])
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
