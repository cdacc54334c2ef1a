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

    public enum GroupBy: String, Sendable, Codable, CaseIterable {
        case platform
        case none
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

    enum CodingKeys: String, CodingKey {
        case name, description, kind, metric, numerator, denominator, function, comparison, threshold, severity, labels
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
        forSeconds: Int = 0, noData: NoData = .keep, intervalSeconds: Int = 60, labels: [String: String] = [:]
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
    }

    /// Every metric name the rule reads (for early evaluation on arrival).
    public var metricNames: [String] {
        switch kind {
        case .ratio: Array(Set(numerator + denominator)).sorted()
        case .count, .aggregate: metric.map { [$0] } ?? []
        }
    }

    /// The condition that opens an alert.
    public func breaches(_ value: Double) -> Bool { comparison.holds(value, threshold) }

    /// The condition that keeps an open alert open (hysteresis).
    public func stillBreaches(_ value: Double) -> Bool { comparison.holds(value, recoveryThreshold) }

    /// A short human description of the condition: "> 0.05".
    public var conditionText: String { "\(comparison.rawValue) \(threshold)" }
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
}
