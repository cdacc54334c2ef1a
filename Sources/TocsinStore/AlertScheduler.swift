import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import Synchronization
import TocsinCore

/// The worker's alert checking: evaluates due rules (each exactly once per
/// interval across all workers), evaluates early when events arrive for a
/// metric a rule reads, answers "run checks now" requests, and keeps the
/// worker's heartbeat.
public final class AlertScheduler: Service, Sendable, CustomStringConvertible {
    public var description: String { "AlertScheduler" }
    let store: Store
    let evaluator: RuleEvaluator
    let listener: PostgresListener
    let workerID: String
    let concurrency: Int
    let heartbeat: Duration
    let logger: Logger
    private let wakeup = Wakeup()

    public init(store: Store, evaluator: RuleEvaluator, listener: PostgresListener, concurrency: Int,
                heartbeat: Duration, logger: Logger) {
        self.store = store
        self.evaluator = evaluator
        self.listener = listener
        self.workerID = evaluator.workerID
        self.concurrency = max(1, concurrency)
        self.heartbeat = heartbeat
        var logger = logger
        logger[metadataKey: "worker.id"] = .string(evaluator.workerID)
        self.logger = logger
    }

    /// The channels the scheduler needs its listener to LISTEN on.
    public static let channels = [MetricStore.eventsChannel, CheckRequests.channel]

    public func run() async throws {
        let workers = WorkerStore(pool: store.pool)
        while (try? await workers.register(id: workerID, roles: ["worker"])) == nil {
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            logger.warning("cannot register the worker; retrying")
            try? await Task.sleep(for: .seconds(1))
        }
        logger.info("worker started")
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.listen() }
                group.addTask { await self.beat(workers) }
                group.addTask { await self.schedule() }
                await group.next()
                group.cancelAll()
            }
        }
        try? await shielded { [workers, workerID, counters = evaluator.counters] in
            try await workers.heartbeat(id: workerID, counts: counters.drain())
            try await workers.stopped(id: workerID)
        }
        logger.info("worker stopped")
    }

    /// Turns notifications into early evaluations and check requests.
    private func listen() async {
        var pending: Set<String> = []
        for await event in listener.events() {
            switch event {
            case .listening:
                wakeup.signal()
            case .notification(let n) where n.channel == CheckRequests.channel:
                wakeup.signal()
            case .notification(let n):
                for name in n.payload.split(separator: ",") { pending.insert(String(name)) }
                // Let notifications that arrive together share one update.
                try? await Task.sleep(for: .milliseconds(5))
                let names = Array(pending)
                pending = []
                do {
                    if try await store.rules.wake(readers: names) > 0 { wakeup.signal() }
                } catch {
                    logger.debug("early evaluation not scheduled", metadata: ["error": "\(error)"])
                }
            }
            if Task.isCancelled { break }
        }
    }

    private func beat(_ workers: WorkerStore) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: heartbeat)
            await flushHeartbeat(workers)
        }
    }

    private func flushHeartbeat(_ workers: WorkerStore) async {
        let counts = evaluator.counters.drain()
        do {
            try await workers.heartbeat(id: workerID, counts: counts)
        } catch is CancellationError {
            evaluator.counters.restore(counts)
        } catch {
            evaluator.counters.restore(counts)
            logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
        }
    }

    private func schedule() async {
        while !Task.isCancelled {
            var wait = Duration.seconds(1)
            do {
                try await answerCheckRequests()
                let due = try await store.pool.query(
                    """
                    SELECT id, name, next_due_at <= now() AS due,
                           greatest(0, extract(epoch FROM next_due_at - now()))::float8 AS wait
                    FROM alert_rules WHERE enabled ORDER BY next_due_at LIMIT $1
                    """, [concurrency * 8])
                var ids: [(Int32, String)] = []
                for row in due {
                    if try row.decode("due", as: Bool.self) {
                        ids.append((try row.decode("id"), try row.decode("name")))
                    } else {
                        // Clamped before the conversion: the wait is at most a second.
                        let seconds = min(1, max(0, try row.decode("wait", as: Double.self)))
                        wait = min(wait, .milliseconds(Int(seconds * 1000) + 1))
                        break
                    }
                }
                if !ids.isEmpty {
                    await evaluate(ids)
                    continue
                }
            } catch {
                logger.warning("scheduling failed; retrying", metadata: ["error": "\(error)"])
            }
            await wakeup.wait(timeout: wait)
        }
    }

    private func evaluate(_ rules: [(Int32, String)]) async {
        await withTaskGroup(of: Void.self) { group in
            var iterator = rules.makeIterator()
            func addNext() -> Bool {
                guard let (id, name) = iterator.next() else { return false }
                group.addTask {
                    do {
                        let outcome = try await self.evaluator.evaluate(ruleID: id, trigger: .schedule)
                        if case .evaluated(let results) = outcome {
                            for result in results where result.outcome == "firing" || result.outcome == "resolved" {
                                self.logger.debug("rule evaluated", metadata: [
                                    "rule": .string(name), "group": .string(result.groupKey ?? ""),
                                    "outcome": .string(result.outcome),
                                ])
                            }
                        }
                    } catch is CancellationError {
                        // Shutting down: the evaluation did not start, nothing was written.
                    } catch {
                        self.logger.warning("rule evaluation failed", metadata: ["rule": .string(name), "error": "\(error)"])
                    }
                }
                return true
            }
            for _ in 0..<concurrency where addNext() {}
            while await group.next() != nil {
                _ = addNext()
            }
        }
    }

    private func answerCheckRequests() async throws {
        let requests = CheckRequests(pool: store.pool)
        while let request = try await requests.claim(by: workerID) {
            logger.info("running requested check", metadata: ["check.id": "\(request.id)"])
            await requests.run(request, evaluator: evaluator, rules: store.rules)
        }
    }
}

/// Lets one task sleep until another signals it or a timeout passes. A
/// signal sent while nobody waits is kept for the next wait.
public final class Wakeup: Sendable {
    public init() {}
    private struct State {
        var signalled = false
        var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
        var nextID = 0
    }

    private let state = Mutex(State())

    public func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let waiter = s.waiter else {
                s.signalled = true
                return nil
            }
            s.waiter = nil
            return waiter.continuation
        }
        waiter?.resume()
    }

    private func expire(_ id: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let waiter = s.waiter, waiter.id == id else { return nil }
            s.waiter = nil
            return waiter.continuation
        }
        waiter?.resume()
    }

    public func wait(timeout: Duration) async {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.expire(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.signalled {
                        s.signalled = false
                        return true
                    }
                    s.waiter = (id, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            expire(id)
        }
        timer.cancel()
    }
}
