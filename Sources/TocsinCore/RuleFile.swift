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
        /// What is valid but probably not meant (e.g. an anchored pattern
        /// written with `^`): reported, never refused.
        public var warnings: [RuleProblem] = []
        /// The lines of the `group_by` and `where` fields, by rule.
        public var lines: [String: [String: Int]] = [:]

        public init(rules: [Rule], problems: [RuleProblem], warnings: [RuleProblem] = []) {
            self.rules = rules
            self.problems = problems
            self.warnings = warnings
        }
    }

    /// A file holds at most this many rules.
    public static let maxRules = 10_000

    static let fields: Set<String> = [
        "name", "description", "runbook_url", "kind", "metric", "numerator", "denominator", "function", "window",
        "last", "lookback", "min_samples", "comparison", "threshold", "recovery_threshold", "group_by", "severity",
        "for", "no_data", "interval", "labels", "where", "max_groups", "expression", "good", "total", "objective",
        "period", "burn_rates",
    ]

    /// The fields of each kind (beyond name, description, runbook_url,
    /// kind, interval and labels, which every kind has).
    static let kindFields: [Rule.Kind: Set<String>] = [
        .ratio: ["numerator", "denominator", "window", "min_samples", "comparison", "threshold", "recovery_threshold",
                 "group_by", "severity", "for", "no_data", "where", "max_groups"],
        .count: ["metric", "window", "comparison", "threshold", "recovery_threshold", "group_by", "severity", "for",
                 "no_data", "where", "max_groups"],
        .aggregate: ["metric", "function", "window", "last", "lookback", "min_samples", "comparison", "threshold",
                     "recovery_threshold", "group_by", "severity", "for", "no_data", "where", "max_groups"],
        .composite: ["expression", "severity", "for"],
        .slo: ["good", "total", "objective", "period", "burn_rates", "min_samples", "group_by", "for", "no_data", "where",
               "max_groups"],
    ]
    static let commonFields: Set<String> = ["name", "description", "runbook_url", "kind", "interval", "labels"]

    public static func parse(yaml: String, defaultIntervalSeconds: Int = 60) -> Result {
        switch YAMLDocument.compose(yaml) {
        case .success(let node): return parse(root: node, defaultIntervalSeconds: defaultIntervalSeconds, known: [])
        case .failure(let problem): return Result(rules: [], problems: [problem])
        }
    }

    /// Rules given as JSON (inline backtest rules): the same checks, with
    /// problems naming the field (there are no lines). A composite may read
    /// the `known` rules (the applied ones) besides those given.
    public static func parse(json: Any, defaultIntervalSeconds: Int = 60, known: [Rule] = []) -> Result {
        guard let root = YAMLDocument.node(json: json) else {
            return Result(rules: [], problems: [RuleProblem(line: nil, rule: nil, field: nil, message: "nested too deep")])
        }
        return parse(root: root, defaultIntervalSeconds: defaultIntervalSeconds, known: known)
    }

    static func parse(root: Node?, defaultIntervalSeconds: Int, known: [Rule]) -> Result {
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
        var expressionLines: [String: Int?] = [:]
        var warnings: [RuleProblem] = []
        var lines: [String: [String: Int]] = [:]
        var nameless = false
        for (index, node) in sequence.enumerated() {
            var reader = RuleReader(node: node, index: index, defaultInterval: defaultIntervalSeconds)
            let rule = reader.read()
            problems += reader.fields.problems
            warnings += reader.warnings
            guard let rule else {
                if reader.fields.item?.hasPrefix("#") ?? true { nameless = true }
                if let name = reader.fields.item, !name.hasPrefix("#") { names[name] = names[name] ?? node.mark?.line ?? 0 }
                continue
            }
            if let first = names[rule.name] {
                problems.append(RuleProblem(line: node.mark?.line, rule: rule.name, field: "name",
                                            message: "duplicate rule name (first defined on line \(first))"))
                continue
            }
            names[rule.name] = node.mark?.line ?? 0
            expressionLines[rule.name] = reader.fields.line(of: "expression")
            for field in ["group_by", "where"] {
                if reader.fields.has(field), let line = reader.fields.line(of: field) { lines[rule.name, default: [:]][field] = line }
            }
            rules.append(rule)
        }
        // Composites: every name they read must exist, without cycles; their
        // groups are the group labels their inputs share. (A rule that had
        // problems of its own is known by name, so it is not reported again.)
        let invalid = Set(names.keys).subtracting(rules.map(\.name))
        problems += Composites.resolve(&rules, known: known, lines: expressionLines, invalid: invalid,
                                       complete: !nameless)
        var result = Result(rules: problems.isEmpty ? rules : [], problems: problems, warnings: warnings)
        result.lines = lines
        return result
    }

    /// Warnings for label names a rule groups or filters by that none of
    /// the recent events of its metrics (`seen`, by metric name) has had:
    /// every event would fall in the group '' (or fail an `equals`).
    /// Usually a typo, or a label the applications do not send yet.
    public static func labelWarnings(_ result: Result, seen: [String: Set<String>]) -> [RuleProblem] {
        var out: [RuleProblem] = []
        for rule in result.rules {
            let known = rule.metricNames.reduce(into: Set<String>()) { $0.formUnion(seen[$1] ?? []) }
            let lines = result.lines[rule.name] ?? [:]
            for key in rule.groupBy.keys where key != "platform" && !known.contains(key) {
                out.append(RuleProblem(line: lines["group_by"], rule: rule.name, field: "group_by",
                                       message: "no recent event of \(rule.metricNames.joined(separator: ", ")) has the label '\(key)': its groups would all be ''"))
            }
            for matcher in rule.filters where !matcher.isPlatform && !known.contains(matcher.label) {
                out.append(RuleProblem(line: lines["where"], rule: rule.name, field: "where",
                                       message: "no recent event of \(rule.metricNames.joined(separator: ", ")) has the label '\(matcher.label)'"))
            }
        }
        return out
    }

    /// Reads one rule mapping, collecting problems.
    struct RuleReader {
        var fields: YAMLFields
        var warnings: [RuleProblem] = []
        let defaultInterval: Int
        let index: Int

        init(node: Node, index: Int, defaultInterval: Int) {
            self.fields = YAMLFields(node, item: nil, allowed: RuleFile.fields)
            self.defaultInterval = defaultInterval
            self.index = index
        }

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
                } else if ["and", "or", "unless"].contains(name) {
                    fields.problem("name", "\(name) is reserved (an operator of composite expressions)")
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
            if let kind {
                let allowed = RuleFile.commonFields.union(RuleFile.kindFields[kind] ?? [])
                for field in RuleFile.fields.subtracting(allowed).sorted() where fields.has(field) {
                    fields.problem(field, Self.notApplicable(field, kind))
                }
            }
            let severity: Rule.Severity? = kind == .slo ? nil : fields.choice("severity", required: true)
            let comparison: Rule.Comparison = fields.choice("comparison") ?? .greater
            let noData: Rule.NoData = fields.choice("no_data") ?? .keep
            let function: Rule.Function? = fields.choice("function")
            let needsThreshold = kind != nil && kind != .composite && kind != .slo
            let threshold = fields.number("threshold", RuleLimits.threshold, required: needsThreshold)
            let recovery = fields.number("recovery_threshold", RuleLimits.threshold)
            let window = fields.duration("window", RuleLimits.window)
            let lookback = fields.duration("lookback", RuleLimits.lookback)
            let forSeconds = fields.duration("for", RuleLimits.forDuration) ?? 0
            let interval = fields.duration("interval", RuleLimits.interval) ?? defaultInterval
            let last = fields.integer("last", RuleLimits.lastEvents)
            let minSamples = fields.integer("min_samples", RuleLimits.minSamples) ?? 1
            let maxGroups = fields.integer("max_groups", RuleLimits.maxGroups) ?? Rule.defaultMaxGroups
            let labels = fields.stringMap("labels") ?? [:]
            let groupBy = readGroupBy(slo: kind == .slo)
            let filters = readFilters(slo: kind == .slo)
            var metric: String?
            var numerator: [String] = []
            var denominator: [String] = []
            var expression: RuleExpression?
            var slo: ServiceLevelObjective?

            switch kind {
            case .ratio:
                numerator = metricList("numerator")
                denominator = metricList("denominator")
            case .count:
                metric = metricName("metric")
            case .aggregate:
                metric = metricName("metric")
                if function == nil && !fields.has("function") {
                    fields.problem("function", "is required for aggregate rules (avg, p95, max, sum or min)")
                }
                if last != nil && fields.has("window") {
                    fields.problem("window", "use either window or last, not both")
                }
                if last == nil && fields.has("lookback") {
                    fields.problem("lookback", "only applies with last")
                }
            case .composite:
                if let text = fields.string("expression", required: true, maxLength: RuleExpression.maxLength) {
                    do {
                        expression = try RuleExpression.parse(text)
                    } catch {
                        fields.problem("expression", error.message)
                    }
                }
            case .slo:
                slo = readSLO()
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
            guard fields.problems.isEmpty, let name, let kind else { return nil }
            switch kind {
            case .ratio, .count, .aggregate:
                guard let severity, let threshold else { return nil }
                return Rule(
                    name: name, description: description, runbookURL: runbook, kind: kind, metric: metric,
                    numerator: numerator, denominator: denominator, function: kind == .aggregate ? function : nil,
                    windowSeconds: window ?? 900, lastEvents: kind == .aggregate ? last : nil,
                    lookbackSeconds: lookback ?? 86_400, minSamples: minSamples, comparison: comparison, threshold: threshold,
                    recoveryThreshold: recovery, groupBy: groupBy, severity: severity, forSeconds: forSeconds, noData: noData,
                    intervalSeconds: interval, labels: labels, filters: filters, maxGroups: maxGroups)
            case .composite:
                // The expression holding is a value of 1, not holding 0.
                guard let severity, let expression else { return nil }
                return Rule(
                    name: name, description: description, runbookURL: runbook, kind: .composite, windowSeconds: nil,
                    comparison: .greaterOrEqual, threshold: 1, severity: severity, forSeconds: forSeconds,
                    intervalSeconds: interval, labels: labels, expression: expression)
            case .slo:
                // An SLO alert per burn rate; the rule's own severity is the
                // highest of them.
                guard let slo else { return nil }
                return Rule(
                    name: name, description: description, runbookURL: runbook, kind: .slo, windowSeconds: nil,
                    minSamples: minSamples, comparison: .greater, threshold: slo.burnRates.map(\.factor).min() ?? 1,
                    groupBy: groupBy, severity: slo.burnRates.map(\.severity).max() ?? .critical, forSeconds: forSeconds,
                    noData: noData, intervalSeconds: interval, labels: labels, filters: filters, maxGroups: maxGroups, slo: slo)
            }
        }

        static func notApplicable(_ field: String, _ kind: Rule.Kind) -> String {
            switch (field, kind) {
            case ("group_by", .composite):
                return "does not apply to composite rules: their groups are the group labels their inputs share"
            case ("severity", .slo):
                return "does not apply to slo rules: each of their burn_rates has its own severity"
            case ("where", .composite), ("max_groups", .composite):
                return "does not apply to composite rules: filter and bound the rules they read"
            default:
                return "does not apply to \(kind.rawValue) rules"
            }
        }

        /// `group_by: platform`, `group_by: none`, `group_by: [platform, endpoint]`.
        mutating func readGroupBy(slo: Bool) -> Rule.GroupBy {
            guard fields.has("group_by") else { return .none }
            guard let keys = fields.stringList("group_by", maxCount: Rule.GroupBy.maxKeys, maxLength: 64) else { return .none }
            if keys == ["none"] { return .none }
            var seen: Set<String> = []
            for key in keys {
                if key == "none" {
                    fields.problem("group_by", "none cannot be listed with other keys")
                } else if !EventMatcher.isValidLabelName(key) {
                    fields.problem("group_by", "'\(key.prefix(64))' is not a label name (1 to 64 of a-z, A-Z, 0-9, _ . - /, starting with a letter or _)")
                } else if !seen.insert(key).inserted {
                    fields.problem("group_by", "'\(key)' is listed twice")
                } else if slo && key != "platform" {
                    fields.problem("group_by", "slo rules read hourly rollups, which keep the platform but not labels: group_by platform or none")
                }
            }
            return Rule.GroupBy(keys)
        }

        /// `where:` — a list of `{label: NAME, OPERATOR: VALUE}`.
        mutating func readFilters(slo: Bool) -> [EventMatcher] {
            guard let node = fields.values["where"] else { return [] }
            guard let items = node.sequence.map(Array.init) else {
                fields.problem("where", "must be a list of matchers such as {label: media, equals: video}", at: node)
                return []
            }
            guard RuleLimits.filters.contains(items.count) else {
                fields.problem("where", "at most \(RuleLimits.filters.upperBound) matchers", at: node)
                return []
            }
            var out: [EventMatcher] = []
            for (i, item) in items.enumerated() {
                let at = "where[\(i + 1)]"
                var entry = YAMLFields(item, item: fields.item, allowed: Set(["label"] + EventMatcher.operators))
                defer {
                    for var problem in entry.problems {
                        problem.field = at + (problem.field.map { "." + $0 } ?? "")
                        fields.problems.append(problem)
                    }
                }
                guard entry.isMapping else { continue }
                guard let label = entry.string("label", required: true, maxLength: 64) else { continue }
                guard EventMatcher.isValidLabelName(label) else {
                    entry.problem("label", "'\(label.prefix(64))' is not a label name (1 to 64 of a-z, A-Z, 0-9, _ . - /, starting with a letter or _)")
                    continue
                }
                if slo && label != "platform" {
                    entry.problem("label", "slo rules read hourly rollups, which keep the platform but not labels: filter on platform only")
                    continue
                }
                let given = EventMatcher.operators.filter { entry.has($0) }
                guard given.count == 1, let op = given.first else {
                    entry.problem(nil, "needs exactly one of \(EventMatcher.operators.joined(separator: ", "))")
                    continue
                }
                let maxLength = EventMatcher.maxValueLength
                var operation: EventMatcher.Operation?
                switch op {
                case "equals": operation = entry.string(op, maxLength: maxLength).map { .equals($0) }
                case "not_equals": operation = entry.string(op, maxLength: maxLength).map { .notEquals($0) }
                case "in":
                    if let values = entry.stringList(op, maxCount: EventMatcher.maxValues, maxLength: maxLength) {
                        if values.isEmpty { entry.problem(op, "must list at least one value") } else { operation = .isIn(values) }
                    }
                case "present": operation = entry.bool(op).map { .present($0) }
                default:
                    guard let text = entry.string(op, maxLength: LabelPattern.maxLength * 4) else { break }
                    do {
                        let pattern = try LabelPattern(text)
                        operation = op == "matches" ? .matches(pattern) : .notMatches(pattern)
                        if text.hasPrefix("^") || (text.hasSuffix("$") && !text.hasSuffix("\\$")) {
                            warnings.append(RuleProblem(
                                line: entry.line(of: op), rule: fields.item, field: at + "." + op,
                                message: "patterns match the whole value, so ^ and $ are implied: '\(text.prefix(64))' does not match a mere prefix or suffix (for a prefix write '/v2/.*')"))
                        }
                    } catch {
                        entry.problem(op, "invalid pattern: \(error.message)")
                    }
                }
                if let operation { out.append(EventMatcher(label: label, operation)) }
            }
            return out
        }

        mutating func readSLO() -> ServiceLevelObjective? {
            let good = metricList("good")
            let total = metricList("total")
            for name in good where !total.contains(name) {
                fields.problem("good", "'\(name)' is not in total: good events are counted among the total")
            }
            let objective = fields.number("objective", ServiceLevelObjective.objectiveRange, required: true)
            let period = fields.duration("period", ServiceLevelObjective.periodRange) ?? 30 * 86_400
            var burnRates = ServiceLevelObjective.defaultBurnRates
            if let node = fields.values["burn_rates"] {
                burnRates = []
                guard let items = node.sequence.map(Array.init), (1...3).contains(items.count) else {
                    fields.problem("burn_rates", "must be a list of 1 to 3 {severity, factor, long, short}", at: node)
                    return nil
                }
                for (i, item) in items.enumerated() {
                    let at = "burn_rates[\(i + 1)]"
                    var entry = YAMLFields(item, item: fields.item, allowed: ["severity", "factor", "long", "short"])
                    let severity: Rule.Severity? = entry.choice("severity", required: true)
                    let factor = entry.number("factor", ServiceLevelObjective.factorRange, required: true)
                    let long = entry.duration("long", 60...(7 * 86_400))
                    let short = entry.duration("short", 60...(7 * 86_400))
                    if entry.isMapping && !entry.has("long") { entry.problem("long", "is required") }
                    if entry.isMapping && !entry.has("short") { entry.problem("short", "is required") }
                    if let long, let short, short >= long { entry.problem("short", "must be shorter than long") }
                    if let severity, burnRates.contains(where: { $0.severity == severity }) {
                        entry.problem("severity", "each severity has one burn rate")
                    }
                    for var problem in entry.problems {
                        problem.field = at + (problem.field.map { "." + $0 } ?? "")
                        fields.problems.append(problem)
                    }
                    if let severity, let factor, let long, let short, entry.problems.isEmpty {
                        burnRates.append(.init(severity: severity, factor: factor, longSeconds: long, shortSeconds: short))
                    }
                }
            }
            guard let objective, !good.isEmpty, !total.isEmpty else { return nil }
            return ServiceLevelObjective(good: good, total: total, objective: objective, periodSeconds: period,
                                         burnRates: burnRates)
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
