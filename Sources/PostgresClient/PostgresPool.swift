import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A fixed-size pool of libpq connections.
///
/// Work is given to the pool as a synchronous closure. The closure runs on a
/// dedicated database thread (a `NIOThreadPool` with one thread per
/// connection), so libpq's blocking calls never occupy an event loop or
/// Swift's cooperative threads, and a connection is used by one closure at a
/// time.
///
/// Connections are opened lazily, reused LIFO, probed for a server-side
/// close before reuse, and replaced when broken: after a server restart the
/// next query gets a fresh connection. When a reused connection fails on the
/// first statement of a closure because it was dead, the closure is run
/// once more on a new connection (nothing of it can have been applied).
///
/// As a `Service`, the pool waits for graceful shutdown, then closes once
/// every checked-out connection is returned.
public final class PostgresPool: Sendable, Service, CustomStringConvertible {
    /// Never the connection string: it can hold a password.
    public var description: String { "PostgresPool(size: \(configuration.size))" }
    public struct Configuration: Sendable {
        /// libpq URI or key=value connection string.
        public var conninfo: String
        /// Maximum number of open connections.
        public var size: Int
        /// How long a caller waits for a free connection before failing.
        public var checkoutTimeout: Duration

        public init(conninfo: String, size: Int = 10, checkoutTimeout: Duration = .seconds(30)) {
            self.conninfo = conninfo
            self.size = max(1, size)
            self.checkoutTimeout = checkoutTimeout
        }
    }

    public struct Statistics: Sendable, Equatable {
        public var open: Int
        public var inUse: Int
        public var idle: Int
        public var waiters: Int
    }

    private enum Grant: Sendable {
        /// An idle connection to reuse.
        case connection(PostgresConnection)
        /// Permission to open a new connection (a slot is reserved).
        case slot
    }

    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Grant, any Error>
    }

    private struct State {
        var idle: [PostgresConnection] = []
        /// Open connections plus reserved slots.
        var open = 0
        var inUse = 0
        var waiters: [Waiter] = []
        var nextWaiterID = 0
        var closed = false
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    public let configuration: Configuration
    private let logger: Logger
    private let threads: NIOThreadPool
    private let state = Mutex(State())

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.threads = NIOThreadPool(numberOfThreads: configuration.size)
        self.threads.start()
    }

    public var statistics: Statistics {
        state.withLock { s in
            Statistics(open: s.open, inUse: s.inUse, idle: s.idle.count, waiters: s.waiters.count)
        }
    }

    // MARK: - Running work

    /// Runs `body` with a connection on a database thread. A task cancelled
    /// before its turn comes does not run `body` (CancellationError); once
    /// started, `body` runs to the end.
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let grant = try await checkout()
        let conninfo = configuration.conninfo
        let outcome: Outcome<T>
        do {
            outcome = try await threads.runIfActive { () -> Outcome<T> in
                Self.run(grant: grant, conninfo: conninfo, body)
            }
        } catch {
            // Cancelled before the work started, or the thread pool is shut
            // down: either way the grant was never used.
            switch grant {
            case .connection(let connection): checkin(connection)
            case .slot: releaseSlot()
            }
            if error is CancellationError { throw error }
            throw PostgresError(kind: .poolClosed, message: "database threads are stopped")
        }
        if let connection = outcome.connection {
            checkin(connection)
        } else {
            releaseSlot()
        }
        return try outcome.result.get()
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back
    /// when it throws.
    public func withTransaction<T: Sendable>(
        isolation: PostgresConnection.IsolationLevel = .readCommitted,
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        try await withConnection { connection in
            try connection.transaction(isolation: isolation, body)
        }
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> PostgresRows {
        try await withConnection { try $0.query(sql, parameters) }
    }

    private struct Outcome<T: Sendable>: Sendable {
        var connection: PostgresConnection?
        var result: Result<T, any Error>
    }

    /// Runs on a database thread.
    private static func run<T: Sendable>(
        grant: Grant,
        conninfo: String,
        _ body: (PostgresConnection) throws -> T
    ) -> Outcome<T> {
        let connection: PostgresConnection
        var reused = false
        do {
            switch grant {
            case .connection(let idle):
                connection = idle
                if idle.probeIdle() {
                    reused = true
                } else {
                    try idle.reconnect()
                }
            case .slot:
                connection = try PostgresConnection.connect(conninfo)
            }
        } catch {
            if case .connection(let idle) = grant { idle.close() }
            return Outcome(connection: nil, result: .failure(error))
        }
        connection.statementsSinceCheckout = 0
        var result: Result<T, any Error>
        do {
            result = .success(try body(connection))
        } catch let error as PostgresError
            where error.isConnectionFailure && reused && connection.statementsSinceCheckout <= 1
        {
            // The server closed the connection between the probe and the first
            // statement: nothing ran, so run the body once on a new connection.
            do {
                try connection.reconnect()
                connection.statementsSinceCheckout = 0
                result = .success(try body(connection))
            } catch {
                result = .failure(error)
            }
        } catch {
            result = .failure(error)
        }
        if connection.isInTransaction {
            // A body must not leave a transaction open; never hand it on.
            do { try connection.execute(script: "ROLLBACK") } catch { connection.close() }
        }
        return Outcome(connection: connection, result: result)
    }

    // MARK: - Checkout / checkin

    private func checkout() async throws -> Grant {
        enum Immediate { case grant(Grant), wait, closed }
        let immediate: Immediate = state.withLock { s in
            if s.closed { return .closed }
            if let connection = s.idle.popLast() {
                s.inUse += 1
                return .grant(.connection(connection))
            }
            if s.open < configuration.size {
                s.open += 1
                s.inUse += 1
                return .grant(.slot)
            }
            return .wait
        }
        switch immediate {
        case .grant(let grant): return grant
        case .closed: throw PostgresError(kind: .poolClosed, message: "the service is shutting down")
        case .wait: return try await waitForGrant()
        }
    }

    private func waitForGrant() async throws -> Grant {
        let id = state.withLock { s -> Int in
            s.nextWaiterID += 1
            return s.nextWaiterID
        }
        let timeout = configuration.checkoutTimeout
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.failWaiter(id, PostgresError(kind: .poolTimeout, message: "waited \(timeout) for a free connection; raise DB_POOL_SIZE or reduce load"))
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                let enqueued = state.withLock { s -> Bool in
                    if s.closed { return false }
                    // A connection may have come back between checkout() and here.
                    if let connection = s.idle.popLast() {
                        s.inUse += 1
                        continuation.resume(returning: .connection(connection))
                        return true
                    }
                    if s.open < configuration.size {
                        s.open += 1
                        s.inUse += 1
                        continuation.resume(returning: .slot)
                        return true
                    }
                    s.waiters.append(Waiter(id: id, continuation: continuation))
                    return true
                }
                if !enqueued {
                    continuation.resume(throwing: PostgresError(kind: .poolClosed, message: "the service is shutting down"))
                }
            }
        } onCancel: {
            failWaiter(id, CancellationError())
        }
    }

    private func failWaiter(_ id: Int, _ error: any Error) {
        let waiter = state.withLock { s -> Waiter? in
            guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return s.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }

    private func checkin(_ connection: PostgresConnection) {
        if connection.isBroken {
            connection.close()
            releaseSlot()
            return
        }
        enum Next { case waiter(Waiter), idle, close }
        let next = state.withLock { s -> Next in
            if s.closed {
                s.inUse -= 1
                s.open -= 1
                return .close
            }
            if !s.waiters.isEmpty {
                return .waiter(s.waiters.removeFirst())
            }
            s.inUse -= 1
            s.idle.append(connection)
            return .idle
        }
        switch next {
        case .waiter(let waiter): waiter.continuation.resume(returning: .connection(connection))
        case .idle: break
        case .close:
            connection.close()
            resumeClosersIfDone()
        }
    }

    /// A connection was closed or could not be opened: its slot goes to the
    /// next waiter (who opens a new connection) or is freed.
    private func releaseSlot() {
        let waiter = state.withLock { s -> Waiter? in
            if !s.closed, !s.waiters.isEmpty {
                return s.waiters.removeFirst()
            }
            s.inUse -= 1
            s.open -= 1
            return nil
        }
        if let waiter {
            waiter.continuation.resume(returning: .slot)
        } else {
            resumeClosersIfDone()
        }
    }

    private func resumeClosersIfDone() {
        let closers = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard s.closed, s.open == 0 else { return [] }
            defer { s.closeWaiters = [] }
            return s.closeWaiters
        }
        closers.forEach { $0.resume() }
    }

    // MARK: - Shutdown

    /// Stops handing out connections, fails waiters, and returns once every
    /// connection is returned and closed.
    public func close() async {
        let (idle, waiters) = state.withLock { s -> ([PostgresConnection], [Waiter]) in
            s.closed = true
            let idle = s.idle
            s.idle = []
            s.open -= idle.count
            let waiters = s.waiters
            s.waiters = []
            return (idle, waiters)
        }
        idle.forEach { $0.close() }
        waiters.forEach {
            $0.continuation.resume(throwing: PostgresError(kind: .poolClosed, message: "the service is shutting down"))
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s -> Bool in
                if s.open == 0 { return true }
                s.closeWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
        try? await threads.shutdownGracefully()
        logger.debug("database pool closed")
    }

    public func run() async throws {
        // Wait until the service group shuts down (in-flight work in later
        // services has drained by then), then close.
        try? await gracefulShutdown()
        await close()
    }
}
