import Foundation
import Logging
import ServiceLifecycle
import TocsinCore
import TocsinStore

/// The worker's alert checking: evaluates due rules (each exactly once per
/// interval across all workers), evaluates early when events arrive for a
/// metric a rule reads, answers "run checks now" requests, and keeps the
/// worker's heartbeat.
public final class AlertScheduler: Service, Sendable, CustomStringConvertible {
    public var description: String { "AlertScheduler" }
    let store: Store
    let evaluator: RuleEvaluator
    let checks: CheckRunner
    let events: DatabaseEvents
    let concurrency: Int
    let heartbeat: Duration
    let logger: Logger
    private let wakeup = Wakeup()

    /// What the scheduler needs the process's database events to carry.
    public static let topics: Set<DatabaseEvents.Topic> = [.events, .checks]

    public init(evaluator: RuleEvaluator, events: DatabaseEvents, concurrency: Int, heartbeat: Duration, logger: Logger) {
        self.store = evaluator.store
        self.evaluator = evaluator
        self.checks = CheckRunner(evaluator: evaluator)
        self.events = events
        self.concurrency = max(1, concurrency)
        self.heartbeat = heartbeat
        var logger = logger
        logger[metadataKey: "worker.id"] = .string(evaluator.workerID)
        self.logger = logger
    }

    var workerID: String { evaluator.workerID }

    public func run() async throws {
        while (try? await store.workers.register(id: workerID, roles: ["worker"])) == nil {
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            logger.warning("cannot register the worker; retrying")
            try? await Task.sleep(for: .seconds(1))
        }
        logger.info("worker started")
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.listen() }
                group.addTask { await self.beat() }
                group.addTask { await self.schedule() }
                await group.next()
                group.cancelAll()
            }
        }
        try? await shielded { [store, workerID, counters = evaluator.counters] in
            try await store.workers.heartbeat(id: workerID, counts: counters.drain())
            try await store.workers.stopped(id: workerID)
        }
        logger.info("worker stopped")
    }

    /// Turns database events into early evaluations and check requests.
    private func listen() async {
        var pending: Set<String> = []
        var lastWake: ContinuousClock.Instant?
        for await event in events.subscribe() {
            switch event {
            case .connected, .checkRequested:
                wakeup.signal()
            case .eventsArrived(let names):
                pending.formUnion(names)
                // At most one update per 5 ms: the first events after a
                // quiet spell wake their rules at once (that is the alert
                // latency); a busy ingest stream's notifications wait their
                // turn instead of each costing an update at once.
                let now = ContinuousClock.now
                if let lastWake, now - lastWake < .milliseconds(5) {
                    try? await Task.sleep(until: lastWake + .milliseconds(5), clock: .continuous)
                }
                lastWake = ContinuousClock.now
                let names = Array(pending)
                pending = []
                do {
                    if try await store.rules.wake(readers: names) > 0 { wakeup.signal() }
                } catch {
                    logger.debug("early evaluation not scheduled", metadata: ["error": "\(error)"])
                }
            case .outboxDue, .alertChanged, .checkCompleted:
                break
            }
            if Task.isCancelled { break }
        }
    }

    private func beat() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: heartbeat)
            let counts = evaluator.counters.drain()
            do {
                try await store.workers.heartbeat(id: workerID, counts: counts)
            } catch is CancellationError {
                evaluator.counters.restore(counts)
            } catch {
                evaluator.counters.restore(counts)
                logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Where this worker starts among rules due at the same time, so that
    /// workers take different rules first rather than contend for the same.
    private let spread = Int32.random(in: .min ... .max)

    private func schedule() async {
        while !Task.isCancelled {
            var wait = Duration.seconds(1)
            do {
                let answered = try await checks.answerPending()
                if answered > 0 { logger.info("answered requested checks", metadata: ["checks": "\(answered)"]) }
                let (due, next) = try await store.rules.due(limit: concurrency * EvaluationRepository.batchLimit, spread: spread)
                if due.isEmpty {
                    wait = next
                } else if await evaluate(due) == 0 {
                    continue
                }
                // Otherwise an evaluation met an unavailable database, which
                // leaves its rule due (nothing could be recorded): wait
                // before looking again rather than retry in a loop.
            } catch {
                logger.warning("scheduling failed; retrying", metadata: ["error": "\(error)"])
            }
            await wakeup.wait(timeout: wait)
        }
    }

    /// Evaluates `rules`, `concurrency` transactions at a time: the rules
    /// other than composites in batches (`RuleEvaluator.evaluate(batch:)`)
    /// of an equal share each, up to `EvaluationRepository.batchLimit`, so
    /// a few due rules still spread over every slot; composites one by one.
    /// Returns how many met an unavailable database (a rule that failed
    /// otherwise has its failure recorded and backs off).
    private func evaluate(_ rules: [RuleRepository.DueRule]) async -> Int {
        let batched = rules.filter(\.batchable)
        let size = min(EvaluationRepository.batchLimit, max(1, (batched.count + concurrency - 1) / concurrency))
        var work: [[RuleRepository.DueRule]] = stride(from: 0, to: batched.count, by: size).map {
            Array(batched[$0..<min(batched.count, $0 + size)])
        }
        work += rules.filter { !$0.batchable }.map { [$0] }
        return await withTaskGroup(of: Int.self) { group in
            var iterator = work.makeIterator()
            func addNext() -> Bool {
                guard let next = iterator.next() else { return false }
                group.addTask {
                    if next.count == 1, !next[0].batchable {
                        return await self.evaluateOne(id: next[0].id, name: next[0].name) ? 0 : 1
                    }
                    return await self.evaluateBatch(next)
                }
                return true
            }
            for _ in 0..<concurrency where addNext() {}
            var failed = 0
            while let unavailable = await group.next() {
                failed += unavailable
                _ = addNext()
            }
            return failed
        }
    }

    /// Returns how many of `rules` met an unavailable database.
    private func evaluateBatch(_ rules: [RuleRepository.DueRule]) async -> Int {
        let names = Dictionary(rules.map { ($0.id, $0.name) }) { a, _ in a }
        let outcomes: [Int32: Result<EvaluationRepository.Outcome, any Error>]
        do {
            outcomes = try await evaluator.evaluate(batch: rules.map(\.id))
        } catch {
            return 0  // Shutting down: nothing was written.
        }
        var unavailable = 0
        for (id, outcome) in outcomes.sorted(by: { $0.key < $1.key }) {
            let name = names[id] ?? "\(id)"
            switch outcome {
            case .success(let outcome): logTransitions(outcome, name: name)
            case .failure(let error) where DatabaseFailure(error) == .unavailable:
                unavailable += 1
            case .failure(let error):
                logger.warning("rule evaluation failed; it backs off", metadata: ["rule": .string(name), "error": "\(error)"])
            }
        }
        if unavailable > 0 {
            logger.warning("rule evaluations failed: the database is unavailable", metadata: ["rules": "\(unavailable)"])
        }
        return unavailable
    }

    private func logTransitions(_ outcome: EvaluationRepository.Outcome, name: String) {
        guard case .evaluated(let results, _, _) = outcome else { return }
        for result in results where result.transition != nil {
            logger.debug("rule evaluated", metadata: [
                "rule": .string(name), "group": .string(result.groupKey ?? ""),
                "outcome": .string(result.outcome.rawValue),
            ])
        }
    }

    /// False when the evaluation met an unavailable database.
    private func evaluateOne(id: Int32, name: String) async -> Bool {
        do {
            logTransitions(try await evaluator.evaluate(ruleID: id, trigger: .schedule), name: name)
        } catch is CancellationError {
            // Shutting down: the evaluation did not start, nothing was written.
        } catch where DatabaseFailure(error) == .unavailable {
            logger.warning("rule evaluation failed: the database is unavailable", metadata: ["rule": .string(name)])
            return false
        } catch {
            logger.warning("rule evaluation failed; it backs off", metadata: ["rule": .string(name), "error": "\(error)"])
        }
        return true
    }
}
