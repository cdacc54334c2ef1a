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
        public init(time: Date, name: String, platform: String?, value: Double) {
            self.time = time
            self.name = name
            self.platform = platform
            self.value = value
        }
    }

    /// The group key of an event for a rule: its platform ("" without one)
    /// for per-platform rules, "" otherwise.
    public static func groupKey(_ platform: String?, _ groupBy: Rule.GroupBy) -> String {
        groupBy == .platform ? (platform ?? "") : ""
    }

    /// Measures `rule` at time `now` over `points` (any order), per group.
    public static func measure(_ rule: Rule, points: [Point], now: Date) -> [String: RuleMeasurement] {
        let names = Set(rule.metricNames)
        var groups: [String: [Point]] = [:]
        let lookback = rule.lastEvents != nil ? Double(rule.lookbackSeconds) : Double(rule.windowSeconds ?? 0)
        for point in points where names.contains(point.name) && point.time < now && point.time >= now.addingTimeInterval(-lookback) {
            groups[groupKey(point.platform, rule.groupBy), default: []].append(point)
        }
        return groups.mapValues { measure(rule, group: $0) }
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
        rule.kind == .count ? RuleMeasurement(value: 0, samples: 0) : .noData
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

    public init(rule: String, groupKey: String?, value: Double?, samples: Int, outcome: EvaluationOutcome,
                transition: AlertTransition.Kind? = nil) {
        self.rule = rule
        self.groupKey = groupKey
        self.value = value
        self.samples = samples
        self.outcome = outcome
        self.transition = transition
    }

    enum CodingKeys: String, CodingKey {
        case rule, value, samples, outcome, transition
        case groupKey = "group_key"
    }
}
