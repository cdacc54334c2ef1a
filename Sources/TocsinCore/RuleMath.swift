import Foundation

/// The value and sample count of one rule for one group at one moment, or
/// no data.
public struct RuleMeasurement: Sendable, Equatable, Codable {
    /// nil when there is no data (no events, or fewer than min_samples).
    public var value: Double?
    public var samples: Int

    public init(value: Double?, samples: Int) {
        self.value = value
        self.samples = samples
    }

    public static let noData = RuleMeasurement(value: nil, samples: 0)
}

/// Rule arithmetic on in-memory events, used by backtests and to check the
/// SQL. It matches the SQL the worker runs: counts of events, ratio of
/// counts, `avg`, `max`, `min`, `sum`, and p95 as PostgreSQL's
/// `percentile_cont(0.95)` (linear interpolation).
public enum RuleMath {
    /// One stored event, reduced to what evaluation needs.
    public struct Point: Sendable, Equatable {
        public var time: Date
        public var name: String
        public var platform: String?
        public var value: Double
        public var labels: [String: String]
        public init(time: Date, name: String, platform: String?, value: Double, labels: [String: String] = [:]) {
            self.time = time
            self.name = name
            self.platform = platform
            self.value = value
            self.labels = labels
        }
    }

    /// The group key of an event for a rule (see `Rule.GroupBy.key`).
    public static func groupKey(_ point: Point, _ groupBy: Rule.GroupBy) -> String {
        groupBy.key(groupBy.values(platform: point.platform, labels: point.labels))
    }

    /// The group labels of an event for a rule (empty values left out).
    public static func groupLabels(_ point: Point, _ groupBy: Rule.GroupBy) -> [String: String] {
        groupBy.labels(groupBy.values(platform: point.platform, labels: point.labels))
    }

    /// Whether an event passes the rule's `where:` matchers.
    public static func passes(_ point: Point, _ filters: [EventMatcher]) -> Bool {
        filters.allSatisfy { $0.matches($0.value(platform: point.platform, labels: point.labels)) }
    }

    /// The points a rule reads: its names, through its filters.
    public static func relevant(_ rule: Rule, _ points: [Point]) -> [Point] {
        let names = Set(rule.metricNames)
        return points.filter { names.contains($0.name) && passes($0, rule.filters) }
    }

    /// Measures `rule` (ratio, count or aggregate) at time `now` over
    /// `points` (any order), per group.
    public static func measure(_ rule: Rule, points: [Point], now: Date) -> [String: RuleMeasurement] {
        var groups: [String: [Point]] = [:]
        let lookback = rule.lastEvents != nil ? Double(rule.lookbackSeconds) : Double(rule.windowSeconds ?? 0)
        for point in relevant(rule, points) where point.time < now && point.time >= now.addingTimeInterval(-lookback) {
            groups[groupKey(point, rule.groupBy), default: []].append(point)
        }
        return groups.mapValues { measure(rule, group: $0) }
    }

    /// Good and total events of an SLO rule in one window, for one group.
    public struct Counts: Sendable, Equatable, Codable {
        public var good: Int
        public var total: Int
        public init(good: Int, total: Int) {
            self.good = good
            self.total = total
        }
    }

    /// An SLO rule's counts at `now` over `points`, per group and window
    /// (seconds → counts), for every window of its burn rates and its period.
    public static func sloCounts(_ rule: Rule, points: [Point], now: Date) -> [String: [Int: Counts]] {
        guard let slo = rule.slo else { return [:] }
        let good = Set(slo.good), total = Set(slo.total)
        let windows = slo.windows + [slo.periodSeconds]
        var out: [String: [Int: Counts]] = [:]
        for point in relevant(rule, points) where point.time < now {
            let key = groupKey(point, rule.groupBy)
            for window in windows where point.time >= now.addingTimeInterval(-Double(window)) {
                var counts = out[key, default: [:]][window, default: Counts(good: 0, total: 0)]
                if good.contains(point.name) { counts.good += 1 }
                if total.contains(point.name) { counts.total += 1 }
                out[key, default: [:]][window] = counts
            }
        }
        return out
    }

    /// Measures one group's points (already restricted to the window).
    public static func measure(_ rule: Rule, group points: [Point]) -> RuleMeasurement {
        switch rule.kind {
        case .count:
            let n = points.count
            return RuleMeasurement(value: Double(n), samples: n)
        case .ratio:
            let numerator = Set(rule.numerator), denominator = Set(rule.denominator)
            let top = points.filter { numerator.contains($0.name) }.count
            let bottom = points.filter { denominator.contains($0.name) }.count
            return ratio(numerator: top, denominator: bottom, minSamples: rule.minSamples)
        case .composite, .slo:
            return .noData
        case .aggregate:
            var values: [Double]
            if let last = rule.lastEvents {
                values = points.sorted { $0.time > $1.time }.prefix(last).map(\.value)
            } else {
                values = points.map(\.value)
            }
            guard values.count >= max(1, rule.minSamples) else { return RuleMeasurement(value: nil, samples: values.count) }
            return RuleMeasurement(value: aggregate(rule.function ?? .avg, &values), samples: values.count)
        }
    }

    public static func ratio(numerator: Int, denominator: Int, minSamples: Int) -> RuleMeasurement {
        guard denominator > 0, denominator >= minSamples else { return RuleMeasurement(value: nil, samples: denominator) }
        return RuleMeasurement(value: Double(numerator) / Double(denominator), samples: denominator)
    }

    public static func aggregate(_ function: Rule.Function, _ values: inout [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        switch function {
        case .avg: return values.reduce(0, +) / Double(values.count)
        case .sum: return values.reduce(0, +)
        case .max: return values.max()
        case .min: return values.min()
        case .p95:
            values.sort()
            return percentileCont(sorted: values, 0.95)
        }
    }

    /// PostgreSQL's percentile_cont: linear interpolation between the two
    /// nearest ranks of (n - 1) × fraction.
    public static func percentileCont(sorted values: [Double], _ fraction: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let position = fraction * Double(values.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = Int(position.rounded(.up))
        let weight = position - Double(lower)
        return values[lower] + (values[upper] - values[lower]) * weight
    }
}

extension RuleMath {
    /// The measurement of a group with no events in the window: zero for
    /// count rules (no events is a count of 0), no data otherwise.
    public static func empty(_ rule: Rule) -> RuleMeasurement {
        switch rule.kind {
        case .count: RuleMeasurement(value: 0, samples: 0)
        case .composite: RuleMeasurement(value: 0, samples: 0)
        default: .noData
        }
    }
}

/// What one evaluation found for one group of a rule.
public struct GroupResult: Sendable, Equatable, Codable {
    public var rule: String
    public var groupKey: String?
    public var value: Double?
    public var samples: Int
    public var outcome: EvaluationOutcome
    /// The transition the evaluation made, if any.
    public var transition: AlertTransition.Kind?
    /// The group's labels; nil where the rule has no groups.
    public var labels: [String: String]?
    /// SLO burn rates and budget, a composite's inputs.
    public var evidence: Evidence?

    public init(rule: String, groupKey: String?, value: Double?, samples: Int, outcome: EvaluationOutcome,
                transition: AlertTransition.Kind? = nil, labels: [String: String]? = nil, evidence: Evidence? = nil) {
        self.rule = rule
        self.groupKey = groupKey
        self.value = value
        self.samples = samples
        self.outcome = outcome
        self.transition = transition
        self.labels = labels
        self.evidence = evidence
    }

    enum CodingKeys: String, CodingKey {
        case rule, value, samples, outcome, transition, labels, evidence
        case groupKey = "group_key"
    }
}

/// What a transition (and an evaluation of an SLO or composite rule) was
/// decided on, beyond the value, threshold and samples: kept with the
/// history (`alert_events.evidence`) so it reads the same after the rule
/// changes.
public struct Evidence: Sendable, Equatable, Codable {
    /// The rule's `where:` filter, as text.
    public var filter: String?
    /// The group's labels.
    public var group: [String: String]?
    /// Composites: the expression and each input's state in the group.
    public var expression: String?
    public var inputs: [String: String]?
    /// SLO rules: the objective, the burn rate of every window (by its
    /// duration text, e.g. "1h"), the condition that decided this alert and
    /// the error budget left over the period.
    public var objective: Double?
    public var burnRates: [String: Double]?
    public var condition: String?
    public var budgetRemaining: Double?

    public init(filter: String? = nil, group: [String: String]? = nil, expression: String? = nil,
                inputs: [String: String]? = nil, objective: Double? = nil, burnRates: [String: Double]? = nil,
                condition: String? = nil, budgetRemaining: Double? = nil) {
        self.filter = filter
        self.group = group
        self.expression = expression
        self.inputs = inputs
        self.objective = objective
        self.burnRates = burnRates
        self.condition = condition
        self.budgetRemaining = budgetRemaining
    }

    enum CodingKeys: String, CodingKey {
        case filter, group, expression, inputs, objective, condition
        case burnRates = "burn_rates", budgetRemaining = "budget_remaining"
    }

    public var isEmpty: Bool { self == Evidence() }

    /// Sorted-key JSON, for jsonb columns.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// One group of one evaluation, before the state machine: its labels, its
/// measurement, the rule that decides it (an SLO burn rate has its own)
/// and the evidence.
public struct MeasuredGroup: Sendable, Equatable {
    public var labels: [String: String]
    public var measurement: RuleMeasurement
    public var condition: Rule
    public var evidence: Evidence?

    public init(labels: [String: String], measurement: RuleMeasurement, condition: Rule, evidence: Evidence? = nil) {
        self.labels = labels
        self.measurement = measurement
        self.condition = condition
        self.evidence = evidence
    }
}

extension RuleMath {
    /// An SLO rule's groups from its counts: one per group and burn rate,
    /// keyed `<group key>/<severity>` (just the severity without groups),
    /// the value min(long, short burn rate), decided against the factor.
    /// No data where the long window has fewer than min_samples events.
    public static func sloGroups(_ rule: Rule, counts: [String: [Int: Counts]],
                                 labels: [String: [String: String]]) -> [String: MeasuredGroup] {
        guard let slo = rule.slo else { return [:] }
        var out: [String: MeasuredGroup] = [:]
        for (group, windows) in counts {
            var rates: [String: Double] = [:]
            for window in slo.windows {
                let c = windows[window] ?? Counts(good: 0, total: 0)
                rates[DurationText.format(window)] = slo.burnRate(good: c.good, total: c.total)
            }
            // (A backtest does not read a whole period before its range: no budget there.)
            let budget = windows[slo.periodSeconds].map { slo.budgetRemaining(good: $0.good, total: $0.total) }
            for burn in slo.burnRates {
                let long = windows[burn.longSeconds] ?? Counts(good: 0, total: 0)
                let short = windows[burn.shortSeconds] ?? Counts(good: 0, total: 0)
                let value = min(slo.burnRate(good: long.good, total: long.total),
                                slo.burnRate(good: short.good, total: short.total))
                let measurement = long.total >= max(1, rule.minSamples)
                    ? RuleMeasurement(value: value, samples: long.total) : RuleMeasurement(value: nil, samples: long.total)
                let evidence = Evidence(
                    filter: rule.filters.isEmpty ? nil : EventMatcher.text(rule.filters),
                    group: rule.groupBy.isEmpty ? nil : labels[group] ?? [:], objective: slo.objective, burnRates: rates,
                    condition: "burn rate > \(burn.factor) over \(burn.windowText)", budgetRemaining: budget)
                out[sloKey(group, burn.severity)] = MeasuredGroup(
                    labels: labels[group] ?? [:], measurement: measurement, condition: rule.condition(severity: burn.severity),
                    evidence: evidence)
            }
        }
        return out
    }

    /// The key of an SLO burn rate's alert within its group.
    public static func sloKey(_ group: String, _ severity: Rule.Severity) -> String {
        group.isEmpty ? severity.rawValue : group + "/" + severity.rawValue
    }

    /// The group of an SLO burn rate's key (the inverse of `sloKey`).
    public static func sloGroup(ofKey key: String) -> String {
        for severity in Rule.Severity.allCases {
            if key == severity.rawValue { return "" }
            if key.hasSuffix("/" + severity.rawValue) { return String(key.dropLast(severity.rawValue.count + 1)) }
        }
        return key
    }

    /// Ratio, count and aggregate rules: the measurements per group as
    /// groups with labels and evidence.
    public static func groups(_ rule: Rule, measured: [String: RuleMeasurement],
                              labels: [String: [String: String]]) -> [String: MeasuredGroup] {
        measured.reduce(into: [:]) { out, entry in
            let groupLabels = labels[entry.key] ?? [:]
            out[entry.key] = MeasuredGroup(labels: groupLabels, measurement: entry.value, condition: rule,
                                           evidence: evidence(rule, labels: groupLabels))
        }
    }

    /// The evidence of an ordinary rule's group: its filter and labels.
    public static func evidence(_ rule: Rule, labels: [String: String]) -> Evidence? {
        let evidence = Evidence(filter: rule.filters.isEmpty ? nil : EventMatcher.text(rule.filters),
                                group: rule.groupBy.isEmpty ? nil : labels)
        return evidence.isEmpty ? nil : evidence
    }

    /// A composite's groups from the outcome over its inputs: 1 where the
    /// expression holds, 0 elsewhere.
    public static func compositeGroups(_ rule: Rule, _ outcomes: [String: Composites.Outcome]) -> [String: MeasuredGroup] {
        outcomes.mapValues { outcome in
            MeasuredGroup(labels: outcome.labels,
                          measurement: RuleMeasurement(value: outcome.holds ? 1 : 0, samples: outcome.inputs.values.filter { $0 == "firing" || $0 == "acknowledged" }.count),
                          condition: rule,
                          evidence: Evidence(group: rule.groupBy.isEmpty ? nil : outcome.labels,
                                             expression: rule.expression?.description, inputs: outcome.inputs))
        }
    }
}
