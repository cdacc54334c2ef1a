import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import Synchronization

/// The database's clock, read without a round trip: the offset between this
/// host's clock and PostgreSQL's `clock_timestamp()` is measured at start
/// and every minute, so "now" for defaults and validation is the database's
/// now (to within a few milliseconds) even when hosts' clocks drift.
public final class DatabaseClock: Sendable, Service, CustomStringConvertible {
    public var description: String { "DatabaseClock" }
    private let offset = Mutex<Double>(0)
    private let pool: PostgresPool
    private let logger: Logger

    public init(pool: PostgresPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    /// The database's now.
    public func now() -> Date {
        Date().addingTimeInterval(offset.withLock { $0 })
    }

    /// Measures the offset once. The database read its clock at some
    /// moment of the round trip; taking the latest (the reply's arrival)
    /// makes `now()` err on the side of the past by at most the round trip,
    /// never ahead: events stamped with it are never later than the
    /// database's now, so an evaluation that begins after they are stored
    /// has them inside its window.
    public func sync() async throws {
        let rows = try await pool.query("SELECT clock_timestamp() AS now")
        let after = Date().timeIntervalSince1970
        let database: Date = try rows[0].decode("now")
        let measured = database.timeIntervalSince1970 - after
        offset.withLock { $0 = measured }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.sync()
                } catch {
                    self.logger.debug("database clock not synced", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(60))
            }
        }
    }
}
