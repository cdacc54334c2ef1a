import Foundation
import Yams

/// One problem found in a rules file, with where it is.
public struct RuleProblem: Sendable, Equatable, CustomStringConvertible, Codable {
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

    static let fields: Set<String> = [
        "name", "description", "runbook_url", "kind", "metric", "numerator", "denominator", "function", "window",
        "last", "lookback", "min_samples", "comparison", "threshold", "recovery_threshold", "group_by", "severity",
        "for", "no_data", "interval", "labels",
    ]

    public static func parse(yaml: String, defaultIntervalSeconds: Int = 60) -> Result {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            return Result(rules: [], problems: [yamlProblem(error)])
        } catch {
            return Result(rules: [], problems: [RuleProblem(line: nil, rule: nil, field: nil, message: "not valid YAML: \(error)")])
        }
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
        var rules: [Rule] = []
        var names: [String: Int] = [:]
        for (index, node) in sequence.enumerated() {
            var reader = RuleReader(node: node, index: index, defaultInterval: defaultIntervalSeconds)
            let rule = reader.read()
            problems += reader.problems
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

    static func yamlProblem(_ error: YamlError) -> RuleProblem {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return RuleProblem(line: mark.line, rule: nil, field: nil, message: "not valid YAML: \(problem)")
        default:
            return RuleProblem(line: nil, rule: nil, field: nil, message: "not valid YAML: \(error)")
        }
    }

    /// Reads one rule mapping, collecting problems.
    struct RuleReader {
        let node: Node
        let index: Int
        let defaultInterval: Int
        var problems: [RuleProblem] = []
        var ruleName: String?

        init(node: Node, index: Int, defaultInterval: Int) {
            self.node = node
            self.index = index
            self.defaultInterval = defaultInterval
        }

        mutating func problem(_ field: String?, _ message: String, at node: Node? = nil) {
            problems.append(RuleProblem(line: (node ?? self.node).mark?.line, rule: ruleName ?? "#\(index + 1)",
                                        field: field, message: message))
        }

        mutating func read() -> Rule? {
            guard let mapping = node.mapping else {
                problem(nil, "a rule must be a mapping of fields")
                return nil
            }
            var values: [String: Node] = [:]
            for (key, value) in mapping {
                guard let name = key.string else { continue }
                if !RuleFile.fields.contains(name) {
                    problems.append(RuleProblem(line: key.mark?.line, rule: nil, field: name, message: "unknown field"))
                } else {
                    values[name] = value
                }
            }
            // Name first, so other problems can say which rule they are in.
            let name = string(values, "name", required: true)
            if let name {
                if name.range(of: "^[a-z][a-z0-9_]{0,63}$", options: .regularExpression) == nil {
                    problem("name", "must be 1 to 64 characters of a-z, 0-9 and _, starting with a letter", at: values["name"])
                } else if name == "backtest" {
                    problem("name", "backtest is reserved (it would clash with /api/rules/backtest)", at: values["name"])
                } else {
                    ruleName = name
                }
            }
            // Problems recorded before the name was known get it now.
            for i in problems.indices where problems[i].rule == nil { problems[i].rule = ruleName ?? "#\(index + 1)" }

            let description = string(values, "description") ?? ""
            let runbook = string(values, "runbook_url")
            if let runbook, !(runbook.hasPrefix("https://") || runbook.hasPrefix("http://")) {
                problem("runbook_url", "must be an http(s) URL", at: values["runbook_url"])
            }
            let kind: Rule.Kind? = choice(values, "kind", required: true)
            let severity: Rule.Severity? = choice(values, "severity", required: true)
            let comparison: Rule.Comparison = choice(values, "comparison") ?? .greater
            let groupBy: Rule.GroupBy = choice(values, "group_by") ?? .none
            let noData: Rule.NoData = choice(values, "no_data") ?? .keep
            let function: Rule.Function? = choice(values, "function")
            let threshold = number(values, "threshold", required: true)
            let recovery = number(values, "recovery_threshold")
            let window = duration(values, "window", RuleLimits.window)
            let lookback = duration(values, "lookback", RuleLimits.lookback)
            let forSeconds = duration(values, "for", RuleLimits.forDuration) ?? 0
            let interval = duration(values, "interval", RuleLimits.interval) ?? defaultInterval
            let last = integer(values, "last", RuleLimits.lastEvents)
            let minSamples = integer(values, "min_samples", RuleLimits.minSamples) ?? 1
            let labels = stringMap(values, "labels")
            var metric: String?
            var numerator: [String] = []
            var denominator: [String] = []

            switch kind {
            case .ratio:
                numerator = metricList(values, "numerator")
                denominator = metricList(values, "denominator")
                forbid(values, ["metric", "function", "last", "lookback"], for: "ratio")
            case .count:
                metric = metricName(values, "metric")
                forbid(values, ["numerator", "denominator", "function", "last", "lookback", "min_samples"], for: "count")
            case .aggregate:
                metric = metricName(values, "metric")
                if function == nil && values["function"] == nil {
                    problem("function", "is required for aggregate rules (avg, p95, max, sum or min)")
                }
                forbid(values, ["numerator", "denominator"], for: "aggregate")
                if last != nil && values["window"] != nil {
                    problem("window", "use either window or last, not both", at: values["window"])
                }
                if last == nil && values["lookback"] != nil {
                    problem("lookback", "only applies with last", at: values["lookback"])
                }
            case nil:
                break
            }
            if let threshold, let recovery {
                if comparison.firesHigh && recovery > threshold {
                    problem("recovery_threshold", "must not be above threshold when alerts fire on values \(comparison.rawValue) threshold",
                            at: values["recovery_threshold"])
                } else if !comparison.firesHigh && recovery < threshold {
                    problem("recovery_threshold", "must not be below threshold when alerts fire on values \(comparison.rawValue) threshold",
                            at: values["recovery_threshold"])
                }
            }
            guard problems.isEmpty, let name, let kind, let severity, let threshold else { return nil }
            return Rule(
                name: name, description: description, runbookURL: runbook, kind: kind, metric: metric,
                numerator: numerator, denominator: denominator, function: kind == .aggregate ? function : nil,
                windowSeconds: window ?? 900, lastEvents: kind == .aggregate ? last : nil,
                lookbackSeconds: lookback ?? 86_400, minSamples: minSamples, comparison: comparison, threshold: threshold,
                recoveryThreshold: recovery, groupBy: groupBy, severity: severity, forSeconds: forSeconds, noData: noData,
                intervalSeconds: interval, labels: labels)
        }

        mutating func forbid(_ values: [String: Node], _ fields: [String], for kind: String) {
            for field in fields where values[field] != nil {
                problem(field, "does not apply to \(kind) rules", at: values[field])
            }
        }

        mutating func string(_ values: [String: Node], _ field: String, required: Bool = false) -> String? {
            guard let node = values[field] else {
                if required { problem(field, "is required") }
                return nil
            }
            guard let scalar = node.scalar, node.null == nil else {
                problem(field, "must be a string", at: node)
                return nil
            }
            return scalar.string
        }

        mutating func choice<T: RawRepresentable & CaseIterable>(
            _ values: [String: Node], _ field: String, required: Bool = false
        ) -> T? where T.RawValue == String {
            guard let text = string(values, field, required: required) else { return nil }
            guard let value = T(rawValue: text) else {
                problem(field, "must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))", at: values[field])
                return nil
            }
            return value
        }

        mutating func number(_ values: [String: Node], _ field: String, required: Bool = false) -> Double? {
            guard let node = values[field] else {
                if required { problem(field, "is required") }
                return nil
            }
            guard let scalar = node.scalar, let value = Double(scalar.string), value.isFinite else {
                problem(field, "must be a number", at: node)
                return nil
            }
            guard RuleLimits.threshold.contains(value) else {
                problem(field, "must be between \(RuleLimits.threshold.lowerBound) and \(RuleLimits.threshold.upperBound)", at: node)
                return nil
            }
            return value
        }

        mutating func integer(_ values: [String: Node], _ field: String, _ range: ClosedRange<Int>) -> Int? {
            guard let node = values[field] else { return nil }
            guard let scalar = node.scalar, let value = Int(scalar.string), range.contains(value) else {
                problem(field, "must be a whole number from \(range.lowerBound) to \(range.upperBound)", at: node)
                return nil
            }
            return value
        }

        mutating func duration(_ values: [String: Node], _ field: String, _ range: ClosedRange<Int>) -> Int? {
            guard let node = values[field] else { return nil }
            guard let scalar = node.scalar, let seconds = DurationText.parse(scalar.string), range.contains(seconds) else {
                problem(field, "must be a duration from \(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound)), such as 30s, 15m, 4h or 1d", at: node)
                return nil
            }
            return seconds
        }

        mutating func metricName(_ values: [String: Node], _ field: String) -> String? {
            guard let name = string(values, field, required: true) else { return nil }
            guard MetricName.isValid(name) else {
                problem(field, "'\(name)' is not a valid metric name", at: values[field])
                return nil
            }
            return name
        }

        mutating func metricList(_ values: [String: Node], _ field: String) -> [String] {
            guard let node = values[field] else {
                problem(field, "is required (a metric name or a list of them)")
                return []
            }
            let items: [Node] = node.sequence.map(Array.init) ?? [node]
            var names: [String] = []
            for item in items {
                guard let name = item.scalar?.string, MetricName.isValid(name) else {
                    problem(field, "'\(item.scalar?.string ?? "?")' is not a valid metric name", at: item)
                    continue
                }
                names.append(name)
            }
            if names.isEmpty && items.isEmpty { problem(field, "must name at least one metric", at: node) }
            return names
        }

        mutating func stringMap(_ values: [String: Node], _ field: String) -> [String: String] {
            guard let node = values[field] else { return [:] }
            guard let mapping = node.mapping else {
                problem(field, "must be a mapping of names to strings", at: node)
                return [:]
            }
            var labels: [String: String] = [:]
            for (key, value) in mapping {
                guard let k = key.string, let v = value.scalar?.string else {
                    problem(field, "label values must be strings", at: value)
                    continue
                }
                labels[k] = v
            }
            return labels
        }
    }
}
