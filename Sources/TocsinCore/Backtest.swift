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
        /// The group's labels, the severity of an SLO burn rate's alert (nil:
        /// the rule's), and the evidence of SLO and composite rules.
        public var labels: [String: String] = [:]
        public var severity: Rule.Severity?
        public var evidence: Evidence?

        public init(at: Date, groupKey: String, transition: AlertTransition.Kind, value: Double?, samples: Int,
                    resolution: Resolution?, labels: [String: String] = [:], severity: Rule.Severity? = nil,
                    evidence: Evidence? = nil) {
            self.at = at
            self.groupKey = groupKey
            self.transition = transition
            self.value = value
            self.samples = samples
            self.resolution = resolution
            self.labels = labels
            self.severity = severity
            self.evidence = evidence
        }
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
        public var labels: [String: String] = [:]
        /// An SLO burn rate's severity; nil: the rule's.
        public var severity: Rule.Severity?

        public init(groupKey: String, startedAt: Date, firedAt: Date?, resolvedAt: Date?, resolution: Resolution?,
                    worstValue: Double?, labels: [String: String] = [:], severity: Rule.Severity? = nil) {
            self.groupKey = groupKey
            self.startedAt = startedAt
            self.firedAt = firedAt
            self.resolvedAt = resolvedAt
            self.resolution = resolution
            self.worstValue = worstValue
            self.labels = labels
            self.severity = severity
        }
    }

    public struct Result: Sendable, Equatable {
        public var steps: [Step]
        public var alerts: [SimulatedAlert]
        public var evaluations: Int
        /// Evaluations that had more groups than the rule's max_groups: a
        /// worker would have failed them (too_many_groups) and changed nothing.
        public var tooManyGroups = 0

        public init(steps: [Step], alerts: [SimulatedAlert], evaluations: Int, tooManyGroups: Int = 0) {
            self.steps = steps
            self.alerts = alerts
            self.evaluations = evaluations
            self.tooManyGroups = tooManyGroups
        }
    }

    /// How far before `since` events are needed to evaluate the first step.
    public static func lookback(_ rule: Rule) -> Double {
        switch rule.kind {
        case .slo: Double(rule.slo?.windows.max() ?? 0)
        case .composite: 0
        default: Double(rule.lastEvents != nil ? rule.lookbackSeconds : (rule.windowSeconds ?? 900))
        }
    }

    /// The most steps one backtest may take.
    public static let maxSteps = 50_000

    /// Evaluates `rule` (ratio, count, aggregate or slo) at since, since +
    /// interval, … (< until) over `points` (sorted by time, oldest first),
    /// in one pass: each group's window moves forward with the steps, every
    /// event entering and leaving it once. `shouldStop` is asked every few
    /// hundred steps; when it says yes the replay ends early (the caller
    /// went away).
    public static func run(_ rule: Rule, points: [RuleMath.Point], range: TimeRange,
                           shouldStop: () -> Bool = { false }) -> Result {
        let relevant = RuleMath.relevant(rule, points)
        if rule.kind == .slo {
            var windows = SLOWindows(rule: rule, points: relevant)
            return steps(rule, range: range, shouldStop: shouldStop) { windows.advance(to: $0) }
        }
        var replay = Replay(rule: rule, points: relevant)
        return steps(rule, range: range, shouldStop: shouldStop) { t in
            RuleMath.groups(rule, measured: replay.advance(to: t), labels: replay.labels)
        }
    }

    /// Replays a composite over its inputs' replays (each already run over
    /// the same range): at each step the inputs hold as their simulated
    /// alerts did at that moment.
    public static func runComposite(_ rule: Rule, inputs: [String: Result], range: TimeRange,
                                    shouldStop: () -> Bool = { false }) -> Result {
        var timeline: [(at: Date, input: String, step: Step)] = []
        for (name, result) in inputs { timeline += result.steps.map { ($0.at, name, $0) } }
        timeline.sort { $0.at < $1.at }
        var next = 0
        var states: [String: [String: Composites.InputGroup]] = [:]  // input → group key → state
        var decider = Decider(rule: rule)
        return steps(rule, range: range, shouldStop: shouldStop, decider: &decider) { t, open in
            while next < timeline.count, timeline[next].at <= t {
                let (_, input, step) = timeline[next]
                switch step.transition {
                case .pending: states[input, default: [:]][step.groupKey] = .init(labels: step.labels, status: .pending)
                case .fired, .acknowledged: states[input, default: [:]][step.groupKey] = .init(labels: step.labels, status: .firing)
                case .resolved: states[input]?[step.groupKey] = nil
                case .escalated: break  // notification policy, not state: a replay has none
                }
                next += 1
            }
            let current = states.mapValues { Array($0.values) }
            return RuleMath.compositeGroups(rule, Composites.evaluate(rule, inputs: current, open: open))
        }
    }

    static func steps(_ rule: Rule, range: TimeRange, shouldStop: () -> Bool,
                      measure: (Date) -> [String: MeasuredGroup]) -> Result {
        var decider = Decider(rule: rule)
        return steps(rule, range: range, shouldStop: shouldStop, decider: &decider) { t, _ in measure(t) }
    }

    static func steps(_ rule: Rule, range: TimeRange, shouldStop: () -> Bool, decider: inout Decider,
                      measure: (Date, [[String: String]]) -> [String: MeasuredGroup]) -> Result {
        var result = Result(steps: [], alerts: [], evaluations: 0)
        let step = Double(rule.intervalSeconds)
        var t = range.since
        while t < range.until, result.evaluations < maxSteps {
            if result.evaluations % 256 == 0, shouldStop() { break }
            result.evaluations += 1
            var measured = measure(t, decider.openLabels)
            if rule.kind != .composite && Set(measured.values.map(\.labels)).count > rule.maxGroups {
                result.tooManyGroups += 1
            } else {
                decider.decide(&measured, at: t, into: &result)
            }
            t = t.addingTimeInterval(step)
        }
        result.alerts += decider.simulated.values.sorted { $0.startedAt < $1.startedAt }
        result.alerts.sort { ($0.startedAt, $0.groupKey) < ($1.startedAt, $1.groupKey) }
        return result
    }

    /// The open alerts between steps, and the state machine's decisions.
    struct Decider {
        let rule: Rule
        var open: [String: OpenAlert] = [:]
        var openGroups: [String: (labels: [String: String], severity: Rule.Severity)] = [:]
        var simulated: [String: SimulatedAlert] = [:]
        var nextID = 1

        init(rule: Rule) { self.rule = rule }

        var openLabels: [[String: String]] { openGroups.values.map(\.labels) }

        /// The state machine's decision for every group, recorded.
        mutating func decide(_ measured: inout [String: MeasuredGroup], at t: Date, into result: inout Result) {
            for key in open.keys where measured[key] == nil {
                let group = openGroups[key]!
                let condition = rule.condition(severity: group.severity)
                measured[key] = MeasuredGroup(labels: group.labels, measurement: RuleMath.empty(condition), condition: condition)
            }
            if measured.isEmpty && rule.groupBy.isEmpty && rule.kind != .slo {
                measured[""] = MeasuredGroup(labels: [:], measurement: RuleMath.empty(rule), condition: rule)
            }
            for key in measured.keys.sorted() {
                let group = measured[key]!
                let decision = AlertStateMachine.decide(rule: group.condition, open: open[key],
                                                        measurement: group.measurement, now: t)
                apply(decision, key: key, group: group, at: t, into: &result)
            }
        }

        mutating func apply(_ decision: AlertDecision, key: String, group: MeasuredGroup, at t: Date,
                            into result: inout Result) {
            let m = group.measurement
            func record(_ kind: AlertTransition.Kind, _ resolution: Resolution? = nil) {
                result.steps.append(Step(at: t, groupKey: key, transition: kind, value: m.value, samples: m.samples,
                                         resolution: resolution, labels: group.labels, severity: tier(group),
                                         evidence: group.evidence))
            }
            switch decision {
            case .none:
                break
            case .keep:
                note(m.value, key, group.condition)
            case .open(let status):
                open[key] = OpenAlert(id: nextID, status: status, startedAt: t)
                openGroups[key] = (group.labels, group.condition.severity)
                nextID += 1
                simulated[key] = SimulatedAlert(groupKey: key, startedAt: t, firedAt: status == .firing ? t : nil,
                                                resolvedAt: nil, resolution: nil, worstValue: m.value, labels: group.labels,
                                                severity: tier(group))
                record(status == .firing ? .fired : .pending)
            case .fire:
                open[key]?.status = .firing
                simulated[key]?.firedAt = t
                note(m.value, key, group.condition)
                record(.fired)
            case .resolve(let resolution):
                open[key] = nil
                openGroups[key] = nil
                if var alert = simulated.removeValue(forKey: key) {
                    alert.resolvedAt = t
                    alert.resolution = resolution
                    result.alerts.append(alert)
                }
                record(.resolved, resolution)
            }
        }

        func tier(_ group: MeasuredGroup) -> Rule.Severity? { rule.kind == .slo ? group.condition.severity : nil }

        mutating func note(_ value: Double?, _ key: String, _ condition: Rule) {
            guard let value, let current = simulated[key] else { return }
            simulated[key]?.worstValue = Backtest.worse(current.worstValue, value, condition)
        }
    }

    /// The replay's windows between steps (ratio, count and aggregate).
    struct Replay {
        let rule: Rule
        let points: [RuleMath.Point]
        let lookback: Double
        let keys: [String]
        var labels: [String: [String: String]] = [:]
        var windows: [String: SlidingWindow] = [:]
        /// The events in each group's window, oldest first (for last-N rules,
        /// which push out the oldest when more than N are in).
        var members: [String: [Int]] = [:]
        var heads: [String: Int] = [:]
        var entered = 0
        var left = 0

        init(rule: Rule, points: [RuleMath.Point]) {
            self.rule = rule
            self.points = points
            self.lookback = Backtest.lookback(rule)
            self.keys = points.map { RuleMath.groupKey($0, rule.groupBy) }
            var valuesByGroup: [String: [Double]] = [:]
            for (point, key) in zip(points, keys) {
                valuesByGroup[key, default: []].append(point.value)
                if labels[key] == nil { labels[key] = RuleMath.groupLabels(point, rule.groupBy) }
            }
            for (key, values) in valuesByGroup { windows[key] = SlidingWindow(rule: rule, values: values) }
        }

        /// Moves every window to [t - lookback, t) and measures the groups
        /// that have events in it.
        mutating func advance(to t: Date) -> [String: RuleMeasurement] {
            while entered < points.count, points[entered].time < t {
                let key = keys[entered]
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
                    windows[keys[left]]!.remove(points[left])
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
    }

    /// An SLO rule's good and total counts over each of its windows, moving
    /// with the steps: every event enters each window once and leaves it
    /// once.
    struct SLOWindows {
        let rule: Rule
        let slo: ServiceLevelObjective
        let points: [RuleMath.Point]
        let keys: [String]
        let isGood: [Bool]
        let isTotal: [Bool]
        var labels: [String: [String: String]] = [:]
        var entered = 0
        /// Per window: the next event to leave it, and the counts per group.
        var left: [Int: Int] = [:]
        var counts: [Int: [String: RuleMath.Counts]] = [:]

        init(rule: Rule, points: [RuleMath.Point]) {
            self.rule = rule
            self.slo = rule.slo!
            self.points = points
            self.keys = points.map { RuleMath.groupKey($0, rule.groupBy) }
            let good = Set(slo.good), total = Set(slo.total)
            self.isGood = points.map { good.contains($0.name) }
            self.isTotal = points.map { total.contains($0.name) }
            for (point, key) in zip(points, keys) where labels[key] == nil { labels[key] = RuleMath.groupLabels(point, rule.groupBy) }
        }

        mutating func bump(_ window: Int, _ i: Int, by delta: Int) {
            var c = counts[window, default: [:]][keys[i], default: RuleMath.Counts(good: 0, total: 0)]
            if isGood[i] { c.good += delta }
            if isTotal[i] { c.total += delta }
            counts[window, default: [:]][keys[i]] = c
        }

        mutating func advance(to t: Date) -> [String: MeasuredGroup] {
            let windows = slo.windows
            while entered < points.count, points[entered].time < t {
                for window in windows { bump(window, entered, by: 1) }
                entered += 1
            }
            var byGroup: [String: [Int: RuleMath.Counts]] = [:]
            for window in windows {
                let start = t.addingTimeInterval(-Double(window))
                var i = left[window, default: 0]
                while i < entered, points[i].time < start {
                    bump(window, i, by: -1)
                    i += 1
                }
                left[window] = i
                for (key, c) in counts[window] ?? [:] where c.total > 0 || c.good > 0 { byGroup[key, default: [:]][window] = c }
            }
            return RuleMath.sloGroups(rule, counts: byGroup, labels: labels)
        }
    }

    static func worse(_ current: Double?, _ value: Double, _ rule: Rule) -> Double {
        guard let current else { return value }
        return rule.comparison.firesHigh ? max(current, value) : min(current, value)
    }
}
