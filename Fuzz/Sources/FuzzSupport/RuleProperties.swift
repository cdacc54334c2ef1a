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
    }
    if let last = rule.lastEvents {
        require(RuleLimits.lastEvents.contains(last) && rule.windowSeconds == nil, "\(at): last \(last) with window \(String(describing: rule.windowSeconds))")
    } else {
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
