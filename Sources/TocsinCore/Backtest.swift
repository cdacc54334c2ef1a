import Foundation

/// Replays a rule over stored events: what it would have opened, fired and
/// resolved, step by step at its interval, without writing anything.
public enum Backtest {
    public struct Step: Sendable, Equatable {
        public var at: Date
        public var groupKey: String
        public var transition: AlertTransition.Kind
        public var value: Double?
        public var samples: Int
        public var resolution: Resolution?
    }

    /// One alert the rule would have raised.
    public struct SimulatedAlert: Sendable, Equatable {
        public var groupKey: String
        public var startedAt: Date
        public var firedAt: Date?
        public var resolvedAt: Date?
        public var resolution: Resolution?
        /// The largest (or, for < rules, smallest) value seen while open.
        public var worstValue: Double?

        public init(groupKey: String, startedAt: Date, firedAt: Date?, resolvedAt: Date?, resolution: Resolution?,
                    worstValue: Double?) {
            self.groupKey = groupKey
            self.startedAt = startedAt
            self.firedAt = firedAt
            self.resolvedAt = resolvedAt
            self.resolution = resolution
            self.worstValue = worstValue
        }
    }

    public struct Result: Sendable, Equatable {
        public var steps: [Step]
        public var alerts: [SimulatedAlert]
        public var evaluations: Int
    }

    /// How far before `since` events are needed to evaluate the first step.
    public static func lookback(_ rule: Rule) -> Double {
        Double(rule.lastEvents != nil ? rule.lookbackSeconds : (rule.windowSeconds ?? 900))
    }

    /// The most steps one backtest may take.
    public static let maxSteps = 50_000

    /// Evaluates `rule` at since, since + interval, … (< until) over
    /// `points` (sorted by time, oldest first), in one pass: each group's
    /// window moves forward with the steps, every event entering and leaving
    /// it once. `shouldStop` is asked every few hundred steps; when it says
    /// yes the replay ends early (the caller went away).
    public static func run(_ rule: Rule, points: [RuleMath.Point], range: TimeRange,
                           shouldStop: () -> Bool = { false }) -> Result {
        let names = Set(rule.metricNames)
        let relevant = points.filter { names.contains($0.name) }
        var replay = Replay(rule: rule, points: relevant)
        var result = Result(steps: [], alerts: [], evaluations: 0)
        let step = Double(rule.intervalSeconds)
        var t = range.since
        while t < range.until, result.evaluations < maxSteps {
            if result.evaluations % 256 == 0, shouldStop() { break }
            result.evaluations += 1
            var measured = replay.advance(to: t)
            replay.decide(&measured, at: t, into: &result)
            t = t.addingTimeInterval(step)
        }
        result.alerts += replay.simulated.values.sorted { $0.startedAt < $1.startedAt }
        result.alerts.sort { ($0.startedAt, $0.groupKey) < ($1.startedAt, $1.groupKey) }
        return result
    }

    /// The replay's state between steps: the windows, the open alerts.
    struct Replay {
        let rule: Rule
        let points: [RuleMath.Point]
        let lookback: Double
        var windows: [String: SlidingWindow] = [:]
        /// The events in each group's window, oldest first (for last-N rules,
        /// which push out the oldest when more than N are in).
        var members: [String: [Int]] = [:]
        var heads: [String: Int] = [:]
        var entered = 0
        var left = 0
        var open: [String: OpenAlert] = [:]
        var simulated: [String: SimulatedAlert] = [:]
        var nextID = 1

        init(rule: Rule, points: [RuleMath.Point]) {
            self.rule = rule
            self.points = points
            self.lookback = Backtest.lookback(rule)
            var valuesByGroup: [String: [Double]] = [:]
            for point in points {
                valuesByGroup[RuleMath.groupKey(point.platform, rule.groupBy), default: []].append(point.value)
            }
            for (key, values) in valuesByGroup { windows[key] = SlidingWindow(rule: rule, values: values) }
        }

        /// Moves every window to [t - lookback, t) and measures the groups
        /// that have events in it.
        mutating func advance(to t: Date) -> [String: RuleMeasurement] {
            while entered < points.count, points[entered].time < t {
                let key = RuleMath.groupKey(points[entered].platform, rule.groupBy)
                windows[key]!.add(points[entered])
                if let last = rule.lastEvents {
                    members[key, default: []].append(entered)
                    evictBeyond(last, key)
                }
                entered += 1
            }
            let start = t.addingTimeInterval(-lookback)
            if rule.lastEvents == nil {
                while left < entered, points[left].time < start {
                    windows[RuleMath.groupKey(points[left].platform, rule.groupBy)]!.remove(points[left])
                    left += 1
                }
            } else {
                for key in members.keys { evictOlder(than: start, key) }
            }
            var measured: [String: RuleMeasurement] = [:]
            for (key, window) in windows where window.count > 0 { measured[key] = window.measurement }
            return measured
        }

        mutating func evictBeyond(_ limit: Int, _ key: String) {
            let head = heads[key, default: 0]
            if members[key]!.count - head > limit {
                windows[key]!.remove(points[members[key]![head]])
                heads[key] = head + 1
                compact(key)
            }
        }

        mutating func evictOlder(than start: Date, _ key: String) {
            var head = heads[key, default: 0]
            while head < members[key]!.count, points[members[key]![head]].time < start {
                windows[key]!.remove(points[members[key]![head]])
                head += 1
            }
            heads[key] = head
            compact(key)
        }

        /// Drops the evicted prefix once it is large, keeping memory linear.
        mutating func compact(_ key: String) {
            let head = heads[key, default: 0]
            guard head > 1024, head * 2 > members[key]!.count else { return }
            members[key]!.removeFirst(head)
            heads[key] = 0
        }

        /// The state machine's decision for every group, recorded.
        mutating func decide(_ measured: inout [String: RuleMeasurement], at t: Date, into result: inout Result) {
            for key in open.keys where measured[key] == nil { measured[key] = RuleMath.empty(rule) }
            if measured.isEmpty && rule.groupBy == .none { measured[""] = RuleMath.empty(rule) }
            for key in measured.keys.sorted() {
                let m = measured[key]!
                let decision = AlertStateMachine.decide(rule: rule, open: open[key], measurement: m, now: t)
                apply(decision, key: key, measurement: m, at: t, into: &result)
            }
        }

        mutating func apply(_ decision: AlertDecision, key: String, measurement m: RuleMeasurement, at t: Date,
                            into result: inout Result) {
            func record(_ kind: AlertTransition.Kind, _ resolution: Resolution? = nil) {
                result.steps.append(Step(at: t, groupKey: key, transition: kind, value: m.value, samples: m.samples,
                                         resolution: resolution))
            }
            switch decision {
            case .none:
                break
            case .keep:
                note(m.value, key)
            case .open(let status):
                open[key] = OpenAlert(id: nextID, status: status, startedAt: t)
                nextID += 1
                simulated[key] = SimulatedAlert(groupKey: key, startedAt: t, firedAt: status == .firing ? t : nil,
                                                resolvedAt: nil, resolution: nil, worstValue: m.value)
                record(status == .firing ? .fired : .pending)
            case .fire:
                open[key]?.status = .firing
                simulated[key]?.firedAt = t
                note(m.value, key)
                record(.fired)
            case .resolve(let resolution):
                open[key] = nil
                if var alert = simulated.removeValue(forKey: key) {
                    alert.resolvedAt = t
                    alert.resolution = resolution
                    result.alerts.append(alert)
                }
                record(.resolved, resolution)
            }
        }

        mutating func note(_ value: Double?, _ key: String) {
            guard let value, let current = simulated[key] else { return }
            simulated[key]?.worstValue = Backtest.worse(current.worstValue, value, rule)
        }
    }

    static func worse(_ current: Double?, _ value: Double, _ rule: Rule) -> Double {
        guard let current else { return value }
        return rule.comparison.firesHigh ? max(current, value) : min(current, value)
    }
}
