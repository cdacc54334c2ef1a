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
/// close before reuse, and replaced when broken.
///
/// **Retries.** A closure runs again, on a new connection, only when nothing
/// it did can have taken effect:
/// - the statement could not be sent at all (`PostgresError.notSent`);
/// - it was inside a transaction this closure opened, and COMMIT had not
///   been sent: the server rolls back a transaction whose connection is
///   lost, so the work is undone;
/// - the server answered read-only (SQLSTATE 25006: the node is a standby
///   now): the statement failed, and the idle connections, which point at
///   the same node, are dropped too;
/// - a prepared statement was stale (the server lost it, or a migration
///   changed its tables' shape): it did not run, and the closure had run
///   nothing else outside its own transaction.
/// A lost connection after COMMIT was sent, or during an autocommit
/// statement that was sent, leaves the outcome unknown: the error says so
/// (`outcomeUnknown` for COMMIT) and the work is never repeated. A closure
/// may therefore run more than once and must have no effect outside the
/// database.
///
/// **Deadlines.** `withConnection(deadline:)` cancels the running statement
/// (`PQcancel`) when the deadline passes or the calling task is cancelled
/// (a client that went away); the connection goes back healthy.
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
        /// Prepare each statement once per connection (PostgreSQL directly,
        /// or PgBouncer 1.21+ with max_prepared_statements set).
        public var prepareStatements: Bool

        public init(conninfo: String, size: Int = 10, checkoutTimeout: Duration = .seconds(30),
                    prepareStatements: Bool = false) {
            self.conninfo = conninfo
            self.size = max(1, size)
            self.checkoutTimeout = checkoutTimeout
            self.prepareStatements = prepareStatements
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
    /// before its turn comes does not run `body` (CancellationError). With a
    /// `deadline`, the statement running when it passes (or when the task is
    /// cancelled) is cancelled on the server and `body` fails with
    /// `PostgresError.Kind.cancelled`; without one, `body` runs to the end.
    public func withConnection<T: Sendable>(
        deadline: Duration? = nil,
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let grant = try await checkout()
        let conninfo = configuration.conninfo, prepare = configuration.prepareStatements
        let canceller = deadline.map { _ in QueryCanceller() }
        let timer = deadline.map { limit in
            Task { [canceller] in
                try? await Task.sleep(for: limit)
                if !Task.isCancelled { canceller?.fire(reason: "the query took longer than \(limit)") }
            }
        }
        defer { timer?.cancel() }
        let outcome: Outcome<T>
        do {
            outcome = try await withTaskCancellationHandler {
                try await threads.runIfActive { () -> Outcome<T> in
                    Self.run(grant: grant, conninfo: conninfo, prepare: prepare, canceller: canceller, body)
                }
            } onCancel: {
                canceller?.fire(reason: "the request was cancelled")
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
        if outcome.dropIdle { dropIdleConnections() }
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
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await withConnection { try $0.query(query) }
    }

    private struct Outcome<T: Sendable>: Sendable {
        var connection: PostgresConnection?
        var result: Result<T, any Error>
        /// The server turned out to be read-only: the idle connections go too.
        var dropIdle = false
    }

    /// How many times a closure runs at most (the first run and retries).
    static let maxRuns = 3

    /// Runs on a database thread.
    private static func run<T: Sendable>(
        grant: Grant,
        conninfo: String,
        prepare: Bool,
        canceller: QueryCanceller?,
        _ body: (PostgresConnection) throws -> T
    ) -> Outcome<T> {
        let connection: PostgresConnection
        do {
            connection = try ready(grant, conninfo: conninfo, prepare: prepare)
        } catch {
            return Outcome(connection: nil, result: .failure(error))
        }
        var result: Result<T, any Error> = .failure(PostgresError(kind: .client, message: "not run"))
        var dropIdle = false
        for run in 1...maxRuns {
            connection.statementsSinceCheckout = 0
            connection.commitSent = false
            connection.explicitTransaction = false
            if let canceller, !canceller.arm(connection.canceller) {
                result = .failure(canceller.error)
                break
            }
            result = Result { try body(connection) }
            if case .failure(let error) = result, let error = error as? PostgresError, error.kind == .cancelled,
               let canceller {
                result = .failure(canceller.error)
            }
            guard run < maxRuns, case .failure(let failure) = result, let error = failure as? PostgresError,
                  safeToRunAgain(error, on: connection)
            else { break }
            if error.isReadOnly { dropIdle = true }
            do {
                try connection.reconnect()
            } catch {
                result = .failure(error)
                break
            }
        }
        canceller?.disarm()
        if connection.isInTransaction {
            // A body must not leave a transaction open; never hand it on.
            do { try connection.execute(script: "ROLLBACK") } catch { connection.close() }
        }
        return Outcome(connection: connection, result: result, dropIdle: dropIdle)
    }

    /// A connection to use: the idle one (probed, or replaced if the server
    /// closed it) or a new one for a slot.
    private static func ready(_ grant: Grant, conninfo: String, prepare: Bool) throws -> PostgresConnection {
        switch grant {
        case .connection(let idle):
            if !idle.probeIdle() {
                do {
                    try idle.reconnect()
                } catch {
                    idle.close()
                    throw error
                }
            }
            return idle
        case .slot:
            return try connectOnce(conninfo, prepare: prepare)
        }
    }

    /// A new connection. One whose start-up failed quickly (the server or
    /// a proxy in front of it reset the connection, a restarting server
    /// refused it) is tried once more after a moment: nothing was sent but
    /// the start-up packet, and a lone reset — which a busy server, a
    /// PgBouncer restart or a load balancer can cause — should not fail the
    /// caller's work. A slow failure (the connect timeout) is not repeated.
    static func connectOnce(_ conninfo: String, prepare: Bool) throws -> PostgresConnection {
        let started = ContinuousClock.now
        do {
            return try PostgresConnection.connect(conninfo, prepareStatements: prepare)
        } catch let error as PostgresError where error.kind == .connection && ContinuousClock.now - started < .seconds(1) {
            usleep(100_000)
            return try PostgresConnection.connect(conninfo, prepareStatements: prepare)
        }
    }

    /// The rules of the type's doc comment: true only when nothing the
    /// closure did can have taken effect.
    static func safeToRunAgain(_ error: PostgresError, on connection: PostgresConnection) -> Bool {
        if connection.commitSent { return false }
        if error.isReadOnly { return true }
        // A stale prepared statement did not run; what ran before it is
        // undone only inside a transaction (or there was nothing before it).
        if error.isStalePreparedStatement { return connection.explicitTransaction || connection.statementsSinceCheckout <= 1 }
        guard error.isConnectionFailure else { return false }
        return error.notSent || connection.explicitTransaction
    }

    /// Closes every idle connection (they point at a node that is no longer
    /// the primary); the next checkout opens new ones.
    private func dropIdleConnections() {
        let idle = state.withLock { s -> [PostgresConnection] in
            defer { s.idle = [] }
            s.open -= s.idle.count
            return s.idle
        }
        idle.forEach { $0.close() }
        if !idle.isEmpty {
            logger.info("database server became read-only; reconnecting", metadata: ["connections": "\(idle.count)"])
        }
        // Freed slots go to waiters (who open new connections).
        for _ in idle { handOverFreedSlot() }
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

    /// A slot freed outside checkin goes to the first waiter, if any.
    private func handOverFreedSlot() {
        let waiter = state.withLock { s -> Waiter? in
            guard !s.closed, !s.waiters.isEmpty, s.open < configuration.size else { return nil }
            s.open += 1
            s.inUse += 1
            return s.waiters.removeFirst()
        }
        waiter?.continuation.resume(returning: .slot)
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
