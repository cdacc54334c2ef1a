import Foundation
import Yams

/// One problem found in a rules file, with where it is.
public struct RuleProblem: Error, Sendable, Equatable, CustomStringConvertible, Codable {
    public var line: Int?
    public var rule: String?
    public var field: String?
    public var message: String

    public init(line: Int?, rule: String?, field: String?, message: String) {
        self.line = line
        self.rule = rule
        self.field = field
        self.message = message
    }

    public var description: String {
        var parts: [String] = []
        if let line { parts.append("line \(line)") }
        if let rule { parts.append("rule \(rule)") }
        if let field { parts.append("field \(field)") }
        return (parts.isEmpty ? "" : parts.joined(separator: ", ") + ": ") + message
    }
}

/// Durations in rule and notification files: `30s`, `15m`, `4h`, `1d`, or
/// a number of seconds.
public enum DurationText {
    /// The longest duration any field accepts: ten years. Each field has
    /// its own, smaller, documented range on top of this.
    public static let maximumSeconds = 10 * 366 * 86_400

    /// Seconds, or nil when the text is not a duration, is negative, or is
    /// longer than `maximumSeconds` (so no input can overflow the unit
    /// multiplication).
    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.utf8.count <= 24 else { return nil }
        var amountText = Substring(trimmed)
        var multiplier = 1
        if let unit = trimmed.last, !unit.isNumber {
            switch unit {
            case "s": multiplier = 1
            case "m": multiplier = 60
            case "h": multiplier = 3600
            case "d": multiplier = 86_400
            default: return nil
            }
            amountText = amountText.dropLast()
        }
        guard let amount = Int(amountText), amount >= 0 else { return nil }
        let (seconds, overflow) = amount.multipliedReportingOverflow(by: multiplier)
        guard !overflow, seconds <= maximumSeconds else { return nil }
        return seconds
    }

    public static func format(_ seconds: Int) -> String {
        if seconds > 0 && seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
        if seconds > 0 && seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds > 0 && seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}

/// Parses and checks a rules file:
///
/// ```yaml
/// rules:
///   - name: high_error_rate
///     kind: ratio
///     numerator: [upload.failure]
///     denominator: [upload.success, upload.failure]
///     min_samples: 10
///     window: 15m
///     comparison: ">"
///     threshold: 0.05
///     group_by: platform
///     severity: error
/// ```
public enum RuleFile {
    public struct Result: Sendable {
        public var rules: [Rule]
        public var problems: [RuleProblem]
    }

    /// A file holds at most this many rules.
    public static let maxRules = 10_000

    static let fields: Set<String> = [
        "name", "description", "runbook_url", "kind", "metric", "numerator", "denominator", "function", "window",
        "last", "lookback", "min_samples", "comparison", "threshold", "recovery_threshold", "group_by", "severity",
        "for", "no_data", "interval", "labels",
    ]

    public static func parse(yaml: String, defaultIntervalSeconds: Int = 60) -> Result {
        switch YAMLDocument.compose(yaml) {
        case .success(let node): return parse(root: node, defaultIntervalSeconds: defaultIntervalSeconds)
        case .failure(let problem): return Result(rules: [], problems: [problem])
        }
    }

    /// Rules given as JSON (inline backtest rules): the same checks, with
    /// problems naming the field (there are no lines).
    public static func parse(json: Any, defaultIntervalSeconds: Int = 60) -> Result {
        guard let root = YAMLDocument.node(json: json) else {
            return Result(rules: [], problems: [RuleProblem(line: nil, rule: nil, field: nil, message: "nested too deep")])
        }
        return parse(root: root, defaultIntervalSeconds: defaultIntervalSeconds)
    }

    static func parse(root: Node?, defaultIntervalSeconds: Int) -> Result {
        guard let root, let mapping = root.mapping else {
            return Result(rules: [], problems: [RuleProblem(line: root?.mark?.line, rule: nil, field: nil,
                                                            message: "the file must be a mapping with a `rules:` list")])
        }
        var problems: [RuleProblem] = []
        for (key, _) in mapping where key.string != "rules" {
            problems.append(RuleProblem(line: key.mark?.line, rule: nil, field: key.string,
                                        message: "unknown top-level key (expected rules)"))
        }
        guard let list = mapping["rules"] else {
            problems.append(RuleProblem(line: root.mark?.line, rule: nil, field: "rules", message: "missing `rules:` list"))
            return Result(rules: [], problems: problems)
        }
        guard let sequence = list.sequence else {
            problems.append(RuleProblem(line: list.mark?.line, rule: nil, field: "rules", message: "must be a list of rules"))
            return Result(rules: [], problems: problems)
        }
        guard sequence.count <= maxRules else {
            problems.append(RuleProblem(line: list.mark?.line, rule: nil, field: "rules", message: "at most \(maxRules) rules"))
            return Result(rules: [], problems: problems)
        }
        var rules: [Rule] = []
        var names: [String: Int] = [:]
        for (index, node) in sequence.enumerated() {
            var reader = RuleReader(node: node, index: index, defaultInterval: defaultIntervalSeconds)
            let rule = reader.read()
            problems += reader.fields.problems
            guard let rule else { continue }
            if let first = names[rule.name] {
                problems.append(RuleProblem(line: node.mark?.line, rule: rule.name, field: "name",
                                            message: "duplicate rule name (first defined on line \(first))"))
                continue
            }
            names[rule.name] = node.mark?.line ?? 0
            rules.append(rule)
        }
        return Result(rules: problems.isEmpty ? rules : [], problems: problems)
    }

    /// Reads one rule mapping, collecting problems.
    struct RuleReader {
        var fields: YAMLFields
        let defaultInterval: Int

        init(node: Node, index: Int, defaultInterval: Int) {
            self.fields = YAMLFields(node, item: nil, allowed: RuleFile.fields)
            self.defaultInterval = defaultInterval
            self.index = index
        }

        let index: Int

        mutating func read() -> Rule? {
            guard fields.isMapping else {
                fields.name("#\(index + 1)")
                return nil
            }
            // Name first, so other problems can say which rule they are in.
            let name = fields.string("name", required: true, maxLength: 64)
            var validName = false
            if let name {
                // \z, not $: $ also matches before a final line break.
                if name.range(of: "^[a-z][a-z0-9_]{0,63}\\z", options: .regularExpression) == nil {
                    fields.problem("name", "must be 1 to 64 characters of a-z, 0-9 and _, starting with a letter")
                } else if name == "backtest" || name == "versions" {
                    fields.problem("name", "\(name) is reserved (it would clash with /api/rules/\(name))")
                } else {
                    validName = true
                }
            }
            fields.name(validName ? name! : "#\(index + 1)")

            let description = fields.string("description", maxLength: 2000) ?? ""
            let runbook = fields.string("runbook_url", maxLength: 2000)
            if let runbook, !(runbook.hasPrefix("https://") || runbook.hasPrefix("http://")) {
                fields.problem("runbook_url", "must be an http(s) URL")
            }
            let kind: Rule.Kind? = fields.choice("kind", required: true)
            let severity: Rule.Severity? = fields.choice("severity", required: true)
            let comparison: Rule.Comparison = fields.choice("comparison") ?? .greater
            let groupBy: Rule.GroupBy = fields.choice("group_by") ?? .none
            let noData: Rule.NoData = fields.choice("no_data") ?? .keep
            let function: Rule.Function? = fields.choice("function")
            let threshold = fields.number("threshold", RuleLimits.threshold, required: true)
            let recovery = fields.number("recovery_threshold", RuleLimits.threshold)
            let window = fields.duration("window", RuleLimits.window)
            let lookback = fields.duration("lookback", RuleLimits.lookback)
            let forSeconds = fields.duration("for", RuleLimits.forDuration) ?? 0
            let interval = fields.duration("interval", RuleLimits.interval) ?? defaultInterval
            let last = fields.integer("last", RuleLimits.lastEvents)
            let minSamples = fields.integer("min_samples", RuleLimits.minSamples) ?? 1
            let labels = fields.stringMap("labels") ?? [:]
            var metric: String?
            var numerator: [String] = []
            var denominator: [String] = []

            switch kind {
            case .ratio:
                numerator = metricList("numerator")
                denominator = metricList("denominator")
                forbid(["metric", "function", "last", "lookback"], for: "ratio")
            case .count:
                metric = metricName("metric")
                forbid(["numerator", "denominator", "function", "last", "lookback", "min_samples"], for: "count")
            case .aggregate:
                metric = metricName("metric")
                if function == nil && !fields.has("function") {
                    fields.problem("function", "is required for aggregate rules (avg, p95, max, sum or min)")
                }
                forbid(["numerator", "denominator"], for: "aggregate")
                if last != nil && fields.has("window") {
                    fields.problem("window", "use either window or last, not both")
                }
                if last == nil && fields.has("lookback") {
                    fields.problem("lookback", "only applies with last")
                }
            case nil:
                break
            }
            if let threshold, let recovery {
                if comparison.firesHigh && recovery > threshold {
                    fields.problem("recovery_threshold", "must not be above threshold when alerts fire on values \(comparison.rawValue) threshold")
                } else if !comparison.firesHigh && recovery < threshold {
                    fields.problem("recovery_threshold", "must not be below threshold when alerts fire on values \(comparison.rawValue) threshold")
                }
            }
            guard fields.problems.isEmpty, let name, let kind, let severity, let threshold else { return nil }
            return Rule(
                name: name, description: description, runbookURL: runbook, kind: kind, metric: metric,
                numerator: numerator, denominator: denominator, function: kind == .aggregate ? function : nil,
                windowSeconds: window ?? 900, lastEvents: kind == .aggregate ? last : nil,
                lookbackSeconds: lookback ?? 86_400, minSamples: minSamples, comparison: comparison, threshold: threshold,
                recoveryThreshold: recovery, groupBy: groupBy, severity: severity, forSeconds: forSeconds, noData: noData,
                intervalSeconds: interval, labels: labels)
        }

        mutating func forbid(_ names: [String], for kind: String) {
            for field in names where fields.has(field) {
                fields.problem(field, "does not apply to \(kind) rules")
            }
        }

        mutating func metricName(_ field: String) -> String? {
            guard let name = fields.string(field, required: true, maxLength: MetricName.maxLength + 64) else { return nil }
            guard MetricName.isValid(name) else {
                fields.problem(field, "'\(name.prefix(64))' is not a valid metric name")
                return nil
            }
            return name
        }

        mutating func metricList(_ field: String) -> [String] {
            guard fields.has(field) else {
                fields.problem(field, "is required (a metric name or a list of them)")
                return []
            }
            guard let items = fields.stringList(field, maxCount: 32, maxLength: MetricName.maxLength + 64) else { return [] }
            var names: [String] = []
            for item in items {
                guard MetricName.isValid(item) else {
                    fields.problem(field, "'\(item.prefix(64))' is not a valid metric name")
                    continue
                }
                names.append(item)
            }
            if items.isEmpty { fields.problem(field, "must name at least one metric") }
            return names
        }
    }
}
