import Foundation
import TocsinCore
import TocsinStore

/// A rule with its current groups and last evaluation.
struct RuleBody: Encodable, Sendable {
    var name: String
    var description: String
    @NullEncoded var runbookURL: String?
    var kind: Rule.Kind
    @NullEncoded var metric: String?
    var numerator: [String]
    var denominator: [String]
    @NullEncoded var function: Rule.Function?
    @NullEncoded var windowSeconds: Int?
    @NullEncoded var last: Int?
    @NullEncoded var lookbackSeconds: Int?
    var minSamples: Int
    var comparison: Rule.Comparison
    var threshold: Double
    var recoveryThreshold: Double
    var groupBy: [String]
    var filters: [EventMatcher]
    var maxGroups: Int
    @NullEncoded var expression: String?
    var inputs: [String]
    @NullEncoded var slo: SLOBody?
    var severity: Rule.Severity
    var forSeconds: Int
    var noData: Rule.NoData
    var intervalSeconds: Int
    var labels: [String: String]
    var enabled: Bool
    var nextDueAt: Date
    @NullEncoded var lastEvaluatedAt: Date?
    var groups: [GroupBody]
    @NullEncoded var lastEvaluation: LastEvaluationBody?
    /// "ok", or "failing" while evaluations fail (and back off).
    var health: String
    var consecutiveErrors: Int
    @NullEncoded var lastError: RuleFailureBody?

    enum CodingKeys: String, CodingKey {
        case name, description, kind, metric, numerator, denominator, function, last, comparison, threshold, severity
        case labels, enabled, groups
        case runbookURL = "runbook_url", windowSeconds = "window_s", lookbackSeconds = "lookback_s", minSamples = "min_samples"
        case recoveryThreshold = "recovery_threshold", groupBy = "group_by", forSeconds = "for_s", noData = "no_data"
        case intervalSeconds = "interval_s", nextDueAt = "next_due_at", lastEvaluatedAt = "last_evaluated_at"
        case lastEvaluation = "last_evaluation"
        case health, consecutiveErrors = "consecutive_errors", lastError = "last_error"
        case filters = "where", maxGroups = "max_groups", expression, inputs, slo
    }

    init(_ stored: StoredRule, groups: [RuleRepository.GroupState], last: RuleRepository.LastEvaluation?) {
        let rule = stored.rule
        name = rule.name
        description = rule.description
        runbookURL = rule.runbookURL
        kind = rule.kind
        metric = rule.metric
        numerator = rule.numerator
        denominator = rule.denominator
        function = rule.function
        windowSeconds = rule.windowSeconds
        self.last = rule.lastEvents
        lookbackSeconds = rule.lastEvents == nil ? nil : rule.lookbackSeconds
        minSamples = rule.minSamples
        comparison = rule.comparison
        threshold = rule.threshold
        recoveryThreshold = rule.recoveryThreshold
        groupBy = rule.groupBy.keys
        filters = rule.filters
        maxGroups = rule.maxGroups
        expression = rule.expression?.description
        inputs = rule.inputs
        slo = rule.slo.map { SLOBody($0, last: last) }
        severity = rule.severity
        forSeconds = rule.forSeconds
        noData = rule.noData
        intervalSeconds = rule.intervalSeconds
        labels = rule.labels
        enabled = stored.enabled
        nextDueAt = stored.nextDueAt
        lastEvaluatedAt = stored.lastEvaluatedAt
        self.groups = groups.map(GroupBody.init)
        lastEvaluation = last.map(LastEvaluationBody.init)
        health = stored.consecutiveErrors > 0 ? "failing" : "ok"
        consecutiveErrors = stored.consecutiveErrors
        lastError = stored.lastError.map { RuleFailureBody(message: $0.message, at: $0.at, code: $0.code) }
    }
}

/// An SLO rule's objective, burn rates and, from its last evaluation, the
/// error budget left in each group.
struct SLOBody: Encodable, Sendable {
    struct BurnRate: Encodable, Sendable {
        var severity: Rule.Severity
        var factor: Double
        var longSeconds: Int
        var shortSeconds: Int
        enum CodingKeys: String, CodingKey {
            case severity, factor
            case longSeconds = "long_s", shortSeconds = "short_s"
        }
    }

    struct Budget: Encodable, Sendable {
        var groupKey: String
        var labels: [String: String]
        var remaining: Double
        var burnRates: [String: Double]
        enum CodingKeys: String, CodingKey {
            case labels, remaining
            case groupKey = "group_key", burnRates = "burn_rates"
        }
    }

    var good: [String]
    var total: [String]
    var objective: Double
    var periodSeconds: Int
    var burnRates: [BurnRate]
    var budgets: [Budget]

    enum CodingKeys: String, CodingKey {
        case good, total, objective, budgets
        case periodSeconds = "period_s", burnRates = "burn_rates"
    }

    init(_ slo: ServiceLevelObjective, last: RuleRepository.LastEvaluation?) {
        good = slo.good
        total = slo.total
        objective = slo.objective
        periodSeconds = slo.periodSeconds
        burnRates = slo.burnRates.map {
            BurnRate(severity: $0.severity, factor: $0.factor, longSeconds: $0.longSeconds, shortSeconds: $0.shortSeconds)
        }
        // Each group's burn rates are logged once per severity, alike: one
        // budget per group. The group key drops the "/severity" suffix.
        var seen: Set<String> = []
        budgets = []
        for group in last?.groups ?? [] {
            guard let evidence = group.evidence, let remaining = evidence.budgetRemaining, let key = group.groupKey else { continue }
            let base = RuleMath.sloGroup(ofKey: key)
            guard seen.insert(base).inserted else { continue }
            budgets.append(Budget(groupKey: base, labels: evidence.group ?? [:], remaining: remaining,
                                  burnRates: evidence.burnRates ?? [:]))
        }
        budgets.sort { $0.groupKey < $1.groupKey }
    }
}

/// The last failed evaluation of a rule.
struct RuleFailureBody: Encodable, Sendable {
    var message: String
    var at: Date
    var code: RuleErrorCode
}

/// A group of a rule with an open alert.
struct GroupBody: Encodable, Sendable {
    var groupKey: String
    var status: AlertStatus
    @NullEncoded var value: Double?
    var samples: Int
    var since: Date
    var alertID: Int

    enum CodingKeys: String, CodingKey {
        case status, value, samples, since
        case groupKey = "group_key", alertID = "alert_id"
    }

    init(_ state: RuleRepository.GroupState) {
        groupKey = state.groupKey
        status = state.status
        value = state.value
        samples = state.samples
        since = state.since
        alertID = state.alertID
    }
}

struct LastEvaluationBody: Encodable, Sendable {
    var at: Date
    var durationMs: Double
    var workerID: String
    var trigger: EvaluationTrigger
    var groups: [GroupResultBody]

    enum CodingKeys: String, CodingKey {
        case at, trigger, groups
        case durationMs = "duration_ms", workerID = "worker_id"
    }

    init(_ last: RuleRepository.LastEvaluation) {
        at = last.at
        durationMs = last.durationMs
        workerID = last.workerID
        trigger = last.trigger
        groups = last.groups.map(GroupResultBody.init)
    }
}

/// One applied version of the rules (or of the notification configuration).
struct ConfigVersionBody: Encodable, Sendable {
    var version: Int
    var appliedAt: Date
    var appliedBy: String
    var source: String
    var diff: [String]

    enum CodingKeys: String, CodingKey {
        case version, source, diff
        case appliedAt = "applied_at", appliedBy = "applied_by"
    }

    init(_ version: ConfigVersion) {
        self.version = version.version
        appliedAt = version.appliedAt
        appliedBy = version.appliedBy
        source = version.source
        diff = version.diff
    }
}

/// The result of a backtest.
struct BacktestBody: Encodable, Sendable {
    struct Step: Encodable, Sendable {
        var at: Date
        var groupKey: String
        var labels: [String: String]
        var severity: Rule.Severity
        var transition: AlertTransition.Kind
        @NullEncoded var value: Double?
        var samples: Int
        @NullEncoded var resolution: Resolution?
        @NullEncoded var evidence: Evidence?
        enum CodingKeys: String, CodingKey {
            case at, labels, severity, transition, value, samples, resolution, evidence
            case groupKey = "group_key"
        }
    }

    struct SimulatedAlert: Encodable, Sendable {
        var groupKey: String
        var labels: [String: String]
        var severity: Rule.Severity
        var startedAt: Date
        @NullEncoded var firedAt: Date?
        @NullEncoded var resolvedAt: Date?
        @NullEncoded var resolution: Resolution?
        @NullEncoded var worstValue: Double?
        enum CodingKeys: String, CodingKey {
            case resolution, labels, severity
            case groupKey = "group_key", startedAt = "started_at", firedAt = "fired_at", resolvedAt = "resolved_at"
            case worstValue = "worst_value"
        }
    }

    var rule: String
    var since: Date
    var until: Date
    var intervalSeconds: Int
    var evaluations: Int
    var tooManyGroups: Int
    var steps: [Step]
    var alerts: [SimulatedAlert]

    enum CodingKeys: String, CodingKey {
        case rule, since, until, evaluations, steps, alerts
        case intervalSeconds = "interval_s", tooManyGroups = "too_many_groups"
    }

    init(rule: Rule, range: TimeRange, result: Backtest.Result) {
        self.rule = rule.name
        since = range.since
        until = range.until
        intervalSeconds = rule.intervalSeconds
        evaluations = result.evaluations
        tooManyGroups = result.tooManyGroups
        steps = result.steps.map {
            Step(at: $0.at, groupKey: $0.groupKey, labels: $0.labels, severity: $0.severity ?? rule.severity, transition: $0.transition,
                 value: $0.value, samples: $0.samples, resolution: $0.resolution, evidence: $0.evidence)
        }
        alerts = result.alerts.map {
            SimulatedAlert(groupKey: $0.groupKey, labels: $0.labels, severity: $0.severity ?? rule.severity, startedAt: $0.startedAt,
                           firedAt: $0.firedAt, resolvedAt: $0.resolvedAt, resolution: $0.resolution, worstValue: $0.worstValue)
        }
    }
}
