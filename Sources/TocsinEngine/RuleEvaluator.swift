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
            switch outcome {
            case .evaluated(let results, let durationMs, let at):
                let elapsed = ContinuousClock.now - started
                EngineMetrics.evaluation(outcome: "evaluated",
                                         seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                for kind in results.compactMap(\.transition) { EngineMetrics.transition(kind.rawValue) }
                counters.record(durationMs: durationMs, fired: results.filter { $0.transition == .fired }.count, at: at)
            case .busy: EngineMetrics.evaluation(outcome: "busy")
            case .notDue: EngineMetrics.evaluation(outcome: "not_due")
            }
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
