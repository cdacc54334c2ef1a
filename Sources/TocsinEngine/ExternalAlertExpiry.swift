import Logging
import ServiceLifecycle
import TocsinStore

/// Resolves external alerts that their senders stopped posting: every
/// `interval`, the open ones whose `ends_at` has passed on the database
/// clock (their endsAt, or the resolve timeout after they were last
/// received). Any number of workers run it; a transaction-scoped advisory
/// lock lets one do each round, and each alert resolves once.
public struct ExternalAlertExpiry: Service, CustomStringConvertible {
    public var description: String { "ExternalAlertExpiry" }
    let store: Store
    let interval: Duration
    let logger: Logger

    public init(store: Store, interval: Duration = .seconds(1), logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    // A full batch means more may be due: go again at once.
                    var resolved: [Int]
                    repeat {
                        resolved = try await store.externalAlerts.expire()
                        for id in resolved {
                            logger.info("external alert resolved: not re-posted", metadata: ["alert.id": "\(id)"])
                        }
                    } while resolved.count >= 500 && !Task.isCancelled
                } catch {
                    logger.warning("resolving expired external alerts failed; retrying", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
