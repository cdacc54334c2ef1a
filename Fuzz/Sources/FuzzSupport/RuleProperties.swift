import Foundation
import TocsinCore

/// What every parsed rules file satisfies, from a file or an inline
/// definition: rules only when there is no problem, and each rule within
/// RuleLimits and the documented lengths, storable as the JSON document
/// PostgreSQL keeps (jsonb refuses \u0000).
public func checkRules(_ result: RuleFile.Result, defaultInterval: Int) {
    require(result.rules.isEmpty || result.problems.isEmpty,
            "\(result.rules.count) rules returned with \(result.problems.count) problems")
    require(result.rules.count <= RuleFile.maxRules, "\(result.rules.count) rules")
    for problem in result.problems {
        require(!problem.message.isEmpty, "a problem without a message")
        if let line = problem.line { require(line >= 0, "problem at line \(line)") }
    }
    var names: Set<String> = []
    for rule in result.rules {
        require(names.insert(rule.name).inserted, "rule \(rule.name) twice")
        checkRule(rule, defaultInterval: defaultInterval)
    }
}

public func checkRule(_ rule: Rule, defaultInterval: Int) {
    let at = "rule \(excerpt(rule.name))"
    let nameBytes = Array(rule.name.utf8)
    require(!nameBytes.isEmpty && nameBytes.count <= 64 && (0x61...0x7A).contains(nameBytes[0])
            && nameBytes.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F },
            "\(at): the name is not ^[a-z][a-z0-9_]{0,63}$")
    require(rule.name != "backtest" && rule.name != "versions", "\(at): a reserved name")
    require(isBoundedText(rule.description, maxLength: 2000), "\(at): description \(excerpt(rule.description)) unbounded or with NUL")
    if let runbook = rule.runbookURL {
        require(isBoundedText(runbook, maxLength: 2000) && (runbook.hasPrefix("https://") || runbook.hasPrefix("http://")),
                "\(at): runbook_url \(excerpt(runbook))")
    }
    switch rule.kind {
    case .ratio:
        require(rule.metric == nil && rule.function == nil && rule.lastEvents == nil, "\(at): ratio with metric/function/last")
        for list in [rule.numerator, rule.denominator] {
            require(!list.isEmpty && list.count <= 32 && list.allSatisfy(MetricName.isValid),
                    "\(at): numerator/denominator \(list.map { excerpt($0) })")
        }
    case .count:
        require(rule.metric.map(MetricName.isValid) == true, "\(at): count without a valid metric")
        require(rule.numerator.isEmpty && rule.denominator.isEmpty && rule.function == nil && rule.lastEvents == nil,
                "\(at): count with ratio/aggregate fields")
    case .aggregate:
        require(rule.metric.map(MetricName.isValid) == true, "\(at): aggregate without a valid metric")
        require(rule.function != nil, "\(at): aggregate without a function")
        require(rule.numerator.isEmpty && rule.denominator.isEmpty, "\(at): aggregate with numerator/denominator")
    case .composite:
        require(rule.expression != nil && rule.metric == nil && rule.numerator.isEmpty && rule.denominator.isEmpty
                && rule.filters.isEmpty && rule.slo == nil && rule.windowSeconds == nil,
                "\(at): composite without an expression or with other kinds' fields")
        require(!rule.inputs.isEmpty && rule.inputs.count <= RuleExpression.maxReferences && !rule.inputs.contains(rule.name),
                "\(at): composite inputs \(rule.inputs.map { excerpt($0) })")
    case .slo:
        guard let slo = rule.slo else {
            require(false, "\(at): slo without an objective")
            return
        }
        require(ServiceLevelObjective.objectiveRange.contains(slo.objective) && ServiceLevelObjective.periodRange.contains(slo.periodSeconds),
                "\(at): objective \(slo.objective) over \(slo.periodSeconds) s")
        require(!slo.good.isEmpty && !slo.total.isEmpty && slo.good.allSatisfy(slo.total.contains)
                && (slo.good + slo.total).allSatisfy(MetricName.isValid), "\(at): good/total")
        require((1...3).contains(slo.burnRates.count) && Set(slo.burnRates.map(\.severity)).count == slo.burnRates.count,
                "\(at): \(slo.burnRates.count) burn rates")
        for burn in slo.burnRates {
            require(ServiceLevelObjective.factorRange.contains(burn.factor) && burn.shortSeconds < burn.longSeconds
                    && burn.shortSeconds >= 60 && burn.longSeconds <= 7 * 86_400, "\(at): burn rate \(burn)")
        }
        require(rule.groupBy.keys.allSatisfy { $0 == "platform" } && rule.filters.allSatisfy(\.isPlatform),
                "\(at): slo grouped or filtered by labels")
    }
    // Filters and groups: bounded, with label names a rule may use.
    require(RuleLimits.filters.contains(rule.filters.count), "\(at): \(rule.filters.count) matchers")
    for matcher in rule.filters {
        require(EventMatcher.isValidLabelName(matcher.label), "\(at): matcher label \(excerpt(matcher.label))")
        switch matcher.operation {
        case .equals(let v), .notEquals(let v):
            require(isBoundedText(v, maxLength: EventMatcher.maxValueLength), "\(at): matcher value \(excerpt(v))")
        case .matches(let p), .notMatches(let p):
            require(isBoundedText(p.source, maxLength: LabelPattern.maxLength), "\(at): pattern \(excerpt(p.source))")
        case .isIn(let values):
            require(!values.isEmpty && values.count <= EventMatcher.maxValues
                    && values.allSatisfy { isBoundedText($0, maxLength: EventMatcher.maxValueLength) }, "\(at): in-list")
        case .present:
            break
        }
    }
    require(rule.groupBy.keys.count <= Rule.GroupBy.maxKeys && rule.groupBy.keys.allSatisfy(EventMatcher.isValidLabelName)
            && Set(rule.groupBy.keys).count == rule.groupBy.keys.count, "\(at): group_by \(rule.groupBy.keys.map { excerpt($0) })")
    require(RuleLimits.maxGroups.contains(rule.maxGroups), "\(at): max_groups \(rule.maxGroups)")
    if let last = rule.lastEvents {
        require(RuleLimits.lastEvents.contains(last) && rule.windowSeconds == nil, "\(at): last \(last) with window \(String(describing: rule.windowSeconds))")
    } else if rule.kind != .composite && rule.kind != .slo {
        require(rule.windowSeconds.map(RuleLimits.window.contains) == true, "\(at): window \(String(describing: rule.windowSeconds))")
    }
    require(RuleLimits.lookback.contains(rule.lookbackSeconds), "\(at): lookback \(rule.lookbackSeconds)")
    require(RuleLimits.forDuration.contains(rule.forSeconds), "\(at): for \(rule.forSeconds)")
    require(RuleLimits.interval.contains(rule.intervalSeconds) || rule.intervalSeconds == defaultInterval,
            "\(at): interval \(rule.intervalSeconds)")
    require(RuleLimits.minSamples.contains(rule.minSamples), "\(at): min_samples \(rule.minSamples)")
    for value in [rule.threshold, rule.recoveryThreshold] {
        require(value.isFinite && RuleLimits.threshold.contains(value), "\(at): threshold/recovery \(value)")
    }
    require(rule.comparison.firesHigh ? rule.recoveryThreshold <= rule.threshold : rule.recoveryThreshold >= rule.threshold,
            "\(at): recovery \(rule.recoveryThreshold) on the wrong side of \(rule.comparison.rawValue) \(rule.threshold)")
    require(rule.labels.count <= 32, "\(at): \(rule.labels.count) labels")
    for (key, value) in rule.labels {
        require(!key.isEmpty && isBoundedText(key, maxLength: 256) && isBoundedText(value, maxLength: 256),
                "\(at): label \(excerpt(key)): \(excerpt(value))")
    }
    // The stored form (ConfigRepository.json): reads back as the same rule,
    // and PostgreSQL's jsonb can hold it.
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(rule) else {
        require(false, "\(at) cannot be encoded")
        return
    }
    let document = String(decoding: data, as: UTF8.self)
    require(!document.contains("\\u0000"), "\(at): the stored document holds \\u0000, which jsonb refuses")
    let decoded = try? JSONDecoder().decode(Rule.self, from: data)
    require(decoded == rule, "\(at) does not read back from its stored form \(excerpt(document, 200))")
}
