import Foundation

/// An alert rule: what to measure, the condition, and how alerts behave.
public struct Rule: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// count(numerator names) ÷ count(denominator names) in the window.
        case ratio
        /// Number of events of `metric` in the window.
        case count
        /// avg, p95, max, sum or min of `metric`'s values over the window or
        /// the last N events.
        case aggregate
        /// An expression over other rules' states (`a and b`, `a unless b`).
        case composite
        /// SLO burn rates: good ÷ total events against an objective, over
        /// pairs of long and short windows.
        case slo
    }

    public enum Function: String, Sendable, Codable, CaseIterable {
        case avg, p95, max, sum, min
    }

    public enum Comparison: String, Sendable, Codable, CaseIterable {
        case greater = ">"
        case greaterOrEqual = ">="
        case less = "<"
        case lessOrEqual = "<="

        public func holds(_ value: Double, _ threshold: Double) -> Bool {
            switch self {
            case .greater: value > threshold
            case .greaterOrEqual: value >= threshold
            case .less: value < threshold
            case .lessOrEqual: value <= threshold
            }
        }

        /// True for > and >=: alerts fire on high values.
        public var firesHigh: Bool { self == .greater || self == .greaterOrEqual }
    }

    public enum Severity: String, Sendable, Codable, CaseIterable, Comparable {
        case warning, error, critical
        public static func < (lhs: Severity, rhs: Severity) -> Bool {
            allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
        }
    }

    /// What happens when a group has no data (no events, or fewer than
    /// `min_samples`).
    public enum NoData: String, Sendable, Codable, CaseIterable {
        /// Nothing changes: an open alert stays open, no alert opens.
        case keep
        /// An open alert resolves (resolution `no_data`).
        case resolve
        /// Missing data is itself a reason to alert.
        case alert
    }

    public var name: String
    public var description: String
    public var runbookURL: String?
    public var kind: Kind
    /// The metric of count and aggregate rules.
    public var metric: String?
    public var numerator: [String]
    public var denominator: [String]
    public var function: Function?
    /// Window in seconds (count, ratio, and aggregate over a window).
    public var windowSeconds: Int?
    /// Aggregate over the last N events instead of a window.
    public var lastEvents: Int?
    /// How far back the last N events are looked for, in seconds.
    public var lookbackSeconds: Int
    public var minSamples: Int
    public var comparison: Comparison
    public var threshold: Double
    public var recoveryThreshold: Double
    public var groupBy: GroupBy
    public var severity: Severity
    public var forSeconds: Int
    public var noData: NoData
    public var intervalSeconds: Int
    public var labels: [String: String]
    /// `where:`: only events that pass every matcher count.
    public var filters: [EventMatcher]
    /// At most this many groups; beyond it the evaluation fails with
    /// `too_many_groups` instead of opening an alert for each.
    public var maxGroups: Int
    /// Composite rules: the expression over other rules' states.
    public var expression: RuleExpression?
    /// SLO rules: the objective and its burn-rate conditions.
    public var slo: ServiceLevelObjective?

    public static let defaultMaxGroups = 100

    enum CodingKeys: String, CodingKey {
        case name, description, kind, metric, numerator, denominator, function, comparison, threshold, severity, labels
        case filters = "where", maxGroups = "max_groups", expression, slo
        case runbookURL = "runbook_url"
        case windowSeconds = "window_seconds"
        case lastEvents = "last"
        case lookbackSeconds = "lookback_seconds"
        case minSamples = "min_samples"
        case recoveryThreshold = "recovery_threshold"
        case groupBy = "group_by"
        case forSeconds = "for_seconds"
        case noData = "no_data"
        case intervalSeconds = "interval_seconds"
    }

    public init(
        name: String, description: String = "", runbookURL: String? = nil, kind: Kind, metric: String? = nil,
        numerator: [String] = [], denominator: [String] = [], function: Function? = nil, windowSeconds: Int? = 900,
        lastEvents: Int? = nil, lookbackSeconds: Int = 86_400, minSamples: Int = 1, comparison: Comparison = .greater,
        threshold: Double, recoveryThreshold: Double? = nil, groupBy: GroupBy = .none, severity: Severity = .warning,
        forSeconds: Int = 0, noData: NoData = .keep, intervalSeconds: Int = 60, labels: [String: String] = [:],
        filters: [EventMatcher] = [], maxGroups: Int = Rule.defaultMaxGroups, expression: RuleExpression? = nil,
        slo: ServiceLevelObjective? = nil
    ) {
        self.name = name
        self.description = description
        self.runbookURL = runbookURL
        self.kind = kind
        self.metric = metric
        self.numerator = numerator
        self.denominator = denominator
        self.function = function
        self.windowSeconds = lastEvents == nil ? windowSeconds : nil
        self.lastEvents = lastEvents
        self.lookbackSeconds = lookbackSeconds
        self.minSamples = minSamples
        self.comparison = comparison
        self.threshold = threshold
        self.recoveryThreshold = recoveryThreshold ?? threshold
        self.groupBy = groupBy
        self.severity = severity
        self.forSeconds = forSeconds
        self.noData = noData
        self.intervalSeconds = intervalSeconds
        self.labels = labels
        self.filters = filters
        self.maxGroups = maxGroups
        self.expression = expression
        self.slo = slo
    }

    /// Every metric name the rule reads (for early evaluation on arrival).
    public var metricNames: [String] {
        switch kind {
        case .ratio: Array(Set(numerator + denominator)).sorted()
        case .count, .aggregate: metric.map { [$0] } ?? []
        case .slo: Array(Set((slo?.good ?? []) + (slo?.total ?? []))).sorted()
        case .composite: []
        }
    }

    /// The rules a composite reads.
    public var inputs: [String] { expression?.references ?? [] }

    /// The rule the state machine decides a group with: the rule itself,
    /// or for an SLO rule the burn-rate condition of `severity` (each has
    /// its own alert): "min(long, short) burn rate > factor".
    public func condition(severity: Severity) -> Rule {
        guard kind == .slo, let burn = slo?.burnRates.first(where: { $0.severity == severity }) else { return self }
        var tier = self
        tier.severity = severity
        tier.comparison = .greater
        tier.threshold = burn.factor
        tier.recoveryThreshold = burn.factor
        return tier
    }

    /// The condition that opens an alert.
    public func breaches(_ value: Double) -> Bool { comparison.holds(value, threshold) }

    /// The condition that keeps an open alert open (hysteresis).
    public func stillBreaches(_ value: Double) -> Bool { comparison.holds(value, recoveryThreshold) }

    /// A short human description of the condition: "> 0.05".
    public var conditionText: String {
        switch kind {
        case .composite: return expression?.description ?? ""
        case .slo:
            guard let slo else { return "" }
            if let burn = slo.burnRates.first(where: { $0.severity == severity && $0.factor == threshold }) {
                return "burn rate > \(burn.factor) over \(burn.windowText)"
            }
            return "\(slo.objective * 100) % over \(DurationText.format(slo.periodSeconds))"
        default: return "\(comparison.rawValue) \(threshold)"
        }
    }
}

/// The range of every numeric field of a rule, wherever the rule comes from
/// (a rules file, an inline backtest rule). Values outside are refused with
/// the field and the range, so evaluation never meets a number it cannot
/// handle: windows stay inside the partition retention that backtests can
/// read, and thresholds stay far from Double's limits.
public enum RuleLimits {
    public static let window = 1...(31 * 86_400)
    public static let lookback = 1...(31 * 86_400)
    public static let forDuration = 0...(7 * 86_400)
    public static let interval = 1...86_400
    public static let lastEvents = 1...10_000
    public static let minSamples = 1...1_000_000
    public static let threshold = -1e12...1e12
    public static let maxGroups = 1...10_000
    public static let filters = 0...16
}

/// The stored definition (`alert_rules.definition`): the fields added with
/// label filters, composites and SLOs are written only when set, so a rule
/// stored before them reads back, and re-applying it changes nothing.
extension Rule {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decode(String.self, forKey: .description)
        runbookURL = try c.decodeIfPresent(String.self, forKey: .runbookURL)
        kind = try c.decode(Kind.self, forKey: .kind)
        metric = try c.decodeIfPresent(String.self, forKey: .metric)
        numerator = try c.decode([String].self, forKey: .numerator)
        denominator = try c.decode([String].self, forKey: .denominator)
        function = try c.decodeIfPresent(Function.self, forKey: .function)
        windowSeconds = try c.decodeIfPresent(Int.self, forKey: .windowSeconds)
        lastEvents = try c.decodeIfPresent(Int.self, forKey: .lastEvents)
        lookbackSeconds = try c.decode(Int.self, forKey: .lookbackSeconds)
        minSamples = try c.decode(Int.self, forKey: .minSamples)
        comparison = try c.decode(Comparison.self, forKey: .comparison)
        threshold = try c.decode(Double.self, forKey: .threshold)
        recoveryThreshold = try c.decode(Double.self, forKey: .recoveryThreshold)
        groupBy = try c.decode(GroupBy.self, forKey: .groupBy)
        severity = try c.decode(Severity.self, forKey: .severity)
        forSeconds = try c.decode(Int.self, forKey: .forSeconds)
        noData = try c.decode(NoData.self, forKey: .noData)
        intervalSeconds = try c.decode(Int.self, forKey: .intervalSeconds)
        labels = try c.decode([String: String].self, forKey: .labels)
        filters = try c.decodeIfPresent([EventMatcher].self, forKey: .filters) ?? []
        maxGroups = try c.decodeIfPresent(Int.self, forKey: .maxGroups) ?? Self.defaultMaxGroups
        if let text = try c.decodeIfPresent(String.self, forKey: .expression) {
            do {
                expression = try RuleExpression.parse(text)
            } catch {
                throw DecodingError.dataCorruptedError(forKey: .expression, in: c, debugDescription: error.message)
            }
        } else {
            expression = nil
        }
        slo = try c.decodeIfPresent(ServiceLevelObjective.self, forKey: .slo)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(description, forKey: .description)
        try c.encodeIfPresent(runbookURL, forKey: .runbookURL)
        try c.encode(kind, forKey: .kind)
        try c.encodeIfPresent(metric, forKey: .metric)
        try c.encode(numerator, forKey: .numerator)
        try c.encode(denominator, forKey: .denominator)
        try c.encodeIfPresent(function, forKey: .function)
        try c.encodeIfPresent(windowSeconds, forKey: .windowSeconds)
        try c.encodeIfPresent(lastEvents, forKey: .lastEvents)
        try c.encode(lookbackSeconds, forKey: .lookbackSeconds)
        try c.encode(minSamples, forKey: .minSamples)
        try c.encode(comparison, forKey: .comparison)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(recoveryThreshold, forKey: .recoveryThreshold)
        try c.encode(groupBy, forKey: .groupBy)
        try c.encode(severity, forKey: .severity)
        try c.encode(forSeconds, forKey: .forSeconds)
        try c.encode(noData, forKey: .noData)
        try c.encode(intervalSeconds, forKey: .intervalSeconds)
        try c.encode(labels, forKey: .labels)
        if !filters.isEmpty { try c.encode(filters, forKey: .filters) }
        if maxGroups != Self.defaultMaxGroups { try c.encode(maxGroups, forKey: .maxGroups) }
        try c.encodeIfPresent(expression?.description, forKey: .expression)
        try c.encodeIfPresent(slo, forKey: .slo)
    }
}
