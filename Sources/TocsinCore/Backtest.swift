/// Replays a rule over stored events: what it would have opened, fired and
/// resolved, step by step at its interval, without writing anything.
public enum Backtest {
    public struct Step: Sendable, Equatable, Encodable {
        public var at: Double
        public var groupKey: String
        public var transition: AlertTransition.Kind
        public var value: Double?
        public var samples: Int
        public var resolution: Resolution?

        enum CodingKeys: String, CodingKey {
            case at, transition, value, samples, resolution
            case groupKey = "group_key"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(RFC3339.format(at), forKey: .at)
            try c.encode(groupKey, forKey: .groupKey)
            try c.encode(transition, forKey: .transition)
            try c.encode(value, forKey: .value)
            try c.encode(samples, forKey: .samples)
            try c.encode(resolution, forKey: .resolution)
        }
    }

    /// One alert the rule would have raised.
    public struct SimulatedAlert: Sendable, Equatable, Encodable {
        public var groupKey: String
        public var startedAt: Double
        public var firedAt: Double?
        public var resolvedAt: Double?
        public var resolution: Resolution?
        /// The largest (or, for < rules, smallest) value seen while open.
        public var worstValue: Double?

        public init(groupKey: String, startedAt: Double, firedAt: Double?, resolvedAt: Double?, resolution: Resolution?,
                    worstValue: Double?) {
            self.groupKey = groupKey
            self.startedAt = startedAt
            self.firedAt = firedAt
            self.resolvedAt = resolvedAt
            self.resolution = resolution
            self.worstValue = worstValue
        }

        enum CodingKeys: String, CodingKey {
            case resolution
            case groupKey = "group_key"
            case startedAt = "started_at"
            case firedAt = "fired_at"
            case resolvedAt = "resolved_at"
            case worstValue = "worst_value"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(groupKey, forKey: .groupKey)
            try c.encode(RFC3339.format(startedAt), forKey: .startedAt)
            try c.encode(firedAt.map(RFC3339.format), forKey: .firedAt)
            try c.encode(resolvedAt.map(RFC3339.format), forKey: .resolvedAt)
            try c.encode(resolution, forKey: .resolution)
            try c.encode(worstValue, forKey: .worstValue)
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

    /// Evaluates `rule` at since, since + interval, … (< until) over
    /// `points` (sorted by time, oldest first).
    public static func run(_ rule: Rule, points: [RuleMath.Point], range: TimeRange) -> Result {
        let names = Set(rule.metricNames)
        let relevant = points.filter { names.contains($0.name) }
        let times = relevant.map(\.time)
        var open: [String: OpenAlert] = [:]
        var simulated: [String: SimulatedAlert] = [:]
        var result = Result(steps: [], alerts: [], evaluations: 0)
        var nextID = 1
        let step = Double(rule.intervalSeconds)
        var t = range.since
        while t < range.until {
            result.evaluations += 1
            // The points in [t - lookback, t): a contiguous slice.
            let lower = firstIndex(times, notBelow: t - lookback(rule))
            let upper = firstIndex(times, notBelow: t)
            var groups: [String: [RuleMath.Point]] = [:]
            for point in relevant[lower..<upper] {
                groups[RuleMath.groupKey(point.platform, rule.groupBy), default: []].append(point)
            }
            var measured = groups.mapValues { RuleMath.measure(rule, group: $0) }
            for key in open.keys where measured[key] == nil { measured[key] = RuleMath.empty(rule) }
            if measured.isEmpty && rule.groupBy == .none { measured[""] = RuleMath.empty(rule) }

            for key in measured.keys.sorted() {
                let m = measured[key]!
                let decision = AlertStateMachine.decide(rule: rule, open: open[key], measurement: m, now: t)
                func note(_ value: Double?, _ key: String) {
                    guard let value, let current = simulated[key] else { return }
                    simulated[key]?.worstValue = worse(current.worstValue, value, rule)
                }
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
            t += step
        }
        result.alerts += simulated.values.sorted { $0.startedAt < $1.startedAt }
        result.alerts.sort { ($0.startedAt, $0.groupKey) < ($1.startedAt, $1.groupKey) }
        return result
    }

    static func worse(_ current: Double?, _ value: Double, _ rule: Rule) -> Double {
        guard let current else { return value }
        return rule.comparison.firesHigh ? max(current, value) : min(current, value)
    }

    static func firstIndex(_ times: [Double], notBelow t: Double) -> Int {
        var low = 0, high = times.count
        while low < high {
            let mid = (low + high) / 2
            if times[mid] < t { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
