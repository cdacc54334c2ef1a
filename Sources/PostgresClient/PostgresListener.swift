import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// LISTEN on a dedicated connection, delivered as AsyncSequences.
///
/// One background thread owns the connection: it waits on the socket with
/// `poll`, reads notifications as they arrive and fans them out to every
/// subscriber. When the connection breaks it reconnects (backoff 0.1 s to 1 s),
/// LISTENs again and sends `.listening` so subscribers can re-read whatever
/// they may have missed while it was down.
public final class PostgresListener: Sendable, Service, CustomStringConvertible {
    public var description: String { "PostgresListener(\(channels))" }
    public enum Event: Sendable, Equatable {
        /// LISTEN is active (first connect or reconnect). Notifications sent
        /// before this may have been missed.
        case listening
        case notification(PostgresNotification)
    }

    private struct State {
        var subscribers: [Int: AsyncStream<Event>.Continuation] = [:]
        var nextID = 0
        var started = false
        var stopped = false
        var isListening = false
        var finishWaiters: [CheckedContinuation<Void, Never>] = []
        var finished = false
    }

    private let conninfo: String
    private let channels: [String]
    private let logger: Logger
    private let state = Mutex(State())

    public init(conninfo: String, channels: [String], logger: Logger) {
        self.conninfo = conninfo
        self.channels = channels
        self.logger = logger
    }

    /// A new subscription. It ends when the listener stops or the consumer
    /// stops iterating. If the listener is already listening, the stream
    /// starts with `.listening`.
    public func events() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let (id, finished, listening) = state.withLock { s -> (Int, Bool, Bool) in
            s.nextID += 1
            if !s.stopped { s.subscribers[s.nextID] = continuation }
            return (s.nextID, s.stopped, s.isListening)
        }
        if finished {
            continuation.finish()
        } else if listening {
            continuation.yield(.listening)
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Starts the background thread (once).
    public func start() {
        let start = state.withLock { s -> Bool in
            guard !s.started else { return false }
            s.started = true
            return true
        }
        guard start else { return }
        let thread = Thread { [self] in
            self.loop()
        }
        thread.name = "tocsin-listen"
        thread.start()
    }

    /// Stops the thread and ends every subscription.
    public func stop() async {
        let (subscribers, started) = state.withLock { s -> ([AsyncStream<Event>.Continuation], Bool) in
            s.stopped = true
            defer { s.subscribers = [:] }
            return (Array(s.subscribers.values), s.started)
        }
        subscribers.forEach { $0.finish() }
        guard started else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s -> Bool in
                if s.finished { return true }
                s.finishWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    public func run() async throws {
        start()
        try? await gracefulShutdown()
        await stop()
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    private func broadcast(_ event: Event) {
        let subscribers = state.withLock { s -> [AsyncStream<Event>.Continuation] in
            if event == .listening { s.isListening = true }
            return Array(s.subscribers.values)
        }
        subscribers.forEach { $0.yield(event) }
    }

    private func loop() {
        var connection: PostgresConnection?
        // Reconnects quickly (a failover elects a new primary in about ten
        // seconds; waking rules and the outbox late would cost that much
        // again), at most once a second.
        var backoff = 0.1
        var failedAttempts = 0
        var hadConnection = false
        var lastActivity = Date()
        while !isStopped {
            if connection == nil {
                do {
                    let fresh = try PostgresConnection.connect(conninfo)
                    for channel in channels { try fresh.listen(channel) }
                    connection = fresh
                    backoff = 0.1
                    lastActivity = Date()
                    if hadConnection || failedAttempts > 0 {
                        logger.info("listening for database notifications again",
                                    metadata: ["channels": "\(channels)", "failed_attempts": "\(failedAttempts)"])
                    } else {
                        logger.debug("listening for database notifications", metadata: ["channels": "\(channels)"])
                    }
                    failedAttempts = 0
                    hadConnection = true
                    broadcast(.listening)
                } catch {
                    state.withLock { $0.isListening = false }
                    // One warning when an outage starts, then one a minute.
                    if failedAttempts % 60 == 0 {
                        logger.warning("cannot listen for database notifications; retrying",
                                       metadata: ["error": "\(error)", "failed_attempts": "\(failedAttempts)"])
                    }
                    failedAttempts += 1
                    sleepUnlessStopped(backoff)
                    backoff = min(backoff * 2, 1)
                    continue
                }
            }
            guard let live = connection else { continue }
            var pfd = pollfd(fd: live.socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 250)
            do {
                if ready > 0 {
                    lastActivity = Date()
                    for notification in try live.consumeNotifications() {
                        broadcast(.notification(notification))
                    }
                } else if Date().timeIntervalSince(lastActivity) > 15 {
                    // A silent network failure leaves the socket quiet: a
                    // round trip every 15 s of silence detects it.
                    lastActivity = Date()
                    try live.query("SELECT 1")
                    for notification in try live.consumeNotifications() {
                        broadcast(.notification(notification))
                    }
                }
            } catch {
                logger.warning("database notification connection lost; reconnecting", metadata: ["error": "\(error)"])
                state.withLock { $0.isListening = false }
                live.close()
                connection = nil
            }
        }
        connection?.close()
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.finished = true
            defer { s.finishWaiters = [] }
            return s.finishWaiters
        }
        waiters.forEach { $0.resume() }
    }

    private func sleepUnlessStopped(_ seconds: Double) {
        var remaining = seconds
        while remaining > 0, !isStopped {
            let step = min(remaining, 0.1)
            Thread.sleep(forTimeInterval: step)
            remaining -= step
        }
    }
}
