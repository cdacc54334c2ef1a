import Foundation
import Synchronization
import TocsinCore
import TocsinStore

/// Runs backtests within their bounds: at most one at a time per API key,
/// the replay on a thread of its own (never Swift's cooperative pool, which
/// serves requests), and stopped when the caller goes away.
public final class BacktestRunner: Sendable {
    let store: Store
    let retentionDays: Int
    private let running = Mutex<Set<Int>>([])

    public init(store: Store, retentionDays: Int) {
        self.store = store
        self.retentionDays = retentionDays
    }

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        /// This key already has a backtest running.
        case busy
        case tooLong(maxDays: Int)
        case tooOld(retentionDays: Int)
        case tooManySteps(Int)
        /// A composite reads a rule that does not exist.
        case unknownInput(String)
        /// A composite reads more rules (with theirs) than one backtest replays.
        case tooManyInputs(Int)

        public var description: String {
            switch self {
            case .busy: "a backtest of this API key is already running; wait for it to finish"
            case .tooLong(let days): "the range is longer than \(days) days"
            case .tooOld(let days): "the range starts before the retention of \(days) days: those events are gone"
            case .tooManySteps(let max): "more than \(max) evaluations: use a shorter range or a longer interval"
            case .unknownInput(let name): "the composite reads \(name.prefix(64)), which is not a rule"
            case .tooManyInputs(let max): "the composite reads more than \(max) rules, with those its inputs read"
            }
        }
    }

    /// The longest range a backtest replays.
    public static let maxDays = 31

    /// Checks the bounds without running anything.
    public func check(_ rule: Rule, range: TimeRange, now: Date) throws(Refusal) {
        if range.seconds > Double(Self.maxDays * 86_400) { throw .tooLong(maxDays: Self.maxDays) }
        let oldest = now.addingTimeInterval(-Double(retentionDays) * 86_400)
        if range.since < oldest {
            throw .tooOld(retentionDays: retentionDays)
        }
        if range.seconds / Double(rule.intervalSeconds) > Double(Backtest.maxSteps) { throw .tooManySteps(Backtest.maxSteps) }
    }

    /// The most rules one backtest replays: a composite, its inputs, theirs.
    public static let maxReplays = 32

    /// Replays `rule` over `range` for `keyID`. A composite's inputs are
    /// replayed over the same range first (each starting with no alert
    /// open), found by name among `rules` and then the applied rules.
    public func run(_ rule: Rule, range: TimeRange, keyID: Int, rules: [Rule] = []) async throws -> Backtest.Result {
        try check(rule, range: range, now: store.clock.now())
        guard running.withLock({ $0.insert(keyID).inserted }) else { throw Refusal.busy }
        defer { _ = running.withLock { $0.remove(keyID) } }
        var replays = 0
        return try await replay(rule, range: range, rules: Dictionary(rules.map { ($0.name, $0) }) { a, _ in a },
                                replays: &replays)
    }

    func replay(_ rule: Rule, range: TimeRange, rules: [String: Rule], replays: inout Int) async throws -> Backtest.Result {
        replays += 1
        if replays > Self.maxReplays { throw Refusal.tooManyInputs(Self.maxReplays) }
        if rule.kind == .composite {
            var inputs: [String: Backtest.Result] = [:]
            for name in rule.inputs {
                var input = rules[name]
                if input == nil { input = try await store.rules.get(name: name)?.rule }
                guard let input else { throw Refusal.unknownInput(name) }
                try check(input, range: range, now: store.clock.now())
                inputs[name] = try await replay(input, range: range, rules: rules, replays: &replays)
            }
            return Backtest.runComposite(rule, inputs: inputs, range: range)
        }
        let needsLabels = rule.groupBy.keys.contains { $0 != "platform" } || rule.filters.contains { !$0.isPlatform }
        let points = try await store.events.points(names: rule.metricNames,
                                                    since: range.since.addingTimeInterval(-Backtest.lookback(rule)),
                                                    until: range.until, labels: needsLabels)
        return try await replay(rule, points: points, range: range)
    }

    func replay(_ rule: Rule, points: [RuleMath.Point], range: TimeRange) async throws -> Backtest.Result {
        let stop = StopFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    let result = Backtest.run(rule, points: points, range: range, shouldStop: { stop.isSet })
                    if stop.isSet {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        continuation.resume(returning: result)
                    }
                }
            }
        } onCancel: {
            stop.set()
        }
    }
}

/// Set once, read from another thread.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .relaxed) }
    var isSet: Bool { flag.load(ordering: .relaxed) }
}
