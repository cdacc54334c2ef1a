import Foundation
import Synchronization
import TocsinCore
import TocsinStore

/// Evaluates rules for one process: the store's evaluation transaction,
/// with this process's counters (written to `workers` with the heartbeat)
/// and metrics.
public struct RuleEvaluator: Sendable {
    public let store: Store
    public let workerID: String
    /// Test-only: sleep this long inside the transaction after measuring, so
    /// a test can kill the process mid-evaluation.
    public let pauseInsideTransaction: Duration?
    public let counters = EvaluationCounters()

    public init(store: Store, workerID: String, pauseInsideTransaction: Duration? = nil) {
        self.store = store
        self.workerID = workerID
        self.pauseInsideTransaction = pauseInsideTransaction
    }

    /// Evaluates rule `id`. With `force`, the due time is not checked and
    /// the lock is waited for (manual checks).
    public func evaluate(ruleID: Int32, trigger: EvaluationTrigger, force: Bool = false)
        async throws -> EvaluationRepository.Outcome
    {
        let started = ContinuousClock.now
        do {
            let outcome = try await store.evaluations.evaluate(
                ruleID: ruleID, trigger: trigger, force: force, workerID: workerID, pause: pauseInsideTransaction)
            let elapsed = ContinuousClock.now - started
            record(outcome, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            return outcome
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            EngineMetrics.evaluation(outcome: "error")
            // A database that is away is not the rule's fault; the scheduler
            // waits for it. Anything else is recorded and the rule backs off.
            if DatabaseFailure(error) != .unavailable {
                let code: RuleErrorCode = error is TooManyGroups ? .tooManyGroups : .evaluationFailed
                _ = try? await store.rules.recordFailure(ruleID: ruleID, message: "\(error)", code: code, trigger: trigger,
                                                          workerID: workerID)
            }
            throw error
        }
    }

    /// Evaluates the due rules of `ruleIDs` (none a composite) together, in
    /// one transaction (`EvaluationRepository.evaluateBatch`). When the
    /// batch fails — a rule's measurement, a deadlock, a timeout — each
    /// rule is evaluated alone, so a failing rule records its own failure
    /// and backs off while the others are evaluated; with the database
    /// unavailable every rule stays due. Returns each rule's outcome or
    /// error; throws only when cancelled.
    ///
    /// `trigger` and `force` as for one rule (manual checks force).
    public func evaluate(batch ruleIDs: [Int32], trigger: EvaluationTrigger = .schedule, force: Bool = false)
        async throws -> [Int32: Result<EvaluationRepository.Outcome, any Error>]
    {
        var out: [Int32: Result<EvaluationRepository.Outcome, any Error>] = [:]
        for start in stride(from: 0, to: ruleIDs.count, by: EvaluationRepository.batchLimit) {
            let ids = Array(ruleIDs[start..<min(ruleIDs.count, start + EvaluationRepository.batchLimit)])
            do {
                let outcomes = try await store.evaluations.evaluateBatch(
                    ruleIDs: ids, trigger: trigger, force: force, workerID: workerID, pause: pauseInsideTransaction)
                for (id, outcome) in outcomes {
                    if case .evaluated(_, let durationMs, _) = outcome {
                        record(outcome, seconds: durationMs / 1000)
                    } else {
                        record(outcome, seconds: 0)
                    }
                    out[id] = .success(outcome)
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch where DatabaseFailure(error) == .unavailable {
                EngineMetrics.evaluation(outcome: "error")
                for id in ids { out[id] = .failure(error) }
            } catch {
                for id in ids {
                    do {
                        out[id] = .success(try await evaluate(ruleID: id, trigger: trigger, force: force))
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        out[id] = .failure(error)
                    }
                }
            }
        }
        return out
    }

    private func record(_ outcome: EvaluationRepository.Outcome, seconds: Double) {
        switch outcome {
        case .evaluated(let results, let durationMs, let at):
            EngineMetrics.evaluation(outcome: "evaluated", seconds: seconds)
            for kind in results.compactMap(\.transition) { EngineMetrics.transition(kind.rawValue) }
            counters.record(durationMs: durationMs, fired: results.filter { $0.transition == .fired }.count, at: at)
        case .busy: EngineMetrics.evaluation(outcome: "busy")
        case .notDue: EngineMetrics.evaluation(outcome: "not_due")
        }
    }
}

/// Evaluations done and alerts fired since the last heartbeat.
public final class EvaluationCounters: Sendable {
    public init() {}

    private let state = Mutex(WorkerCounts())

    func record(durationMs: Double, fired: Int, at time: Date) {
        state.withLock {
            $0.evaluations += 1
            $0.alertsFired += fired
            $0.lastCheckAt = time
            $0.lastCheckDurationMs = durationMs
        }
    }

    /// Takes what was counted since the last call.
    public func drain() -> WorkerCounts {
        state.withLock { s in
            defer { s.evaluations = 0; s.alertsFired = 0 }
            return s
        }
    }

    /// Puts back counts that could not be written.
    public func restore(_ counts: WorkerCounts) {
        state.withLock {
            $0.evaluations += counts.evaluations
            $0.alertsFired += counts.alertsFired
        }
    }
}
