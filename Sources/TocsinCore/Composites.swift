import Foundation

/// How composite rules read other rules: the checks of a rules file
/// (names exist, no cycles), the groups a composite has, and its
/// evaluation over its inputs' states.
public enum Composites {
    /// Checks every composite of `rules` and sets its `groupBy` to the group
    /// labels its inputs share (a composite of rules grouped by platform and
    /// by [platform, endpoint] has one group per platform). A composite may
    /// read rules of the file and, when not shadowed, `known` rules.
    static func resolve(_ rules: inout [Rule], known: [Rule], lines: [String: Int?], invalid: Set<String>,
                        complete: Bool) -> [RuleProblem] {
        var byName: [String: Rule] = [:]
        for rule in known { byName[rule.name] = rule }
        for rule in rules { byName[rule.name] = rule }
        var problems: [RuleProblem] = []
        for rule in rules where rule.kind == .composite {
            let line = lines[rule.name] ?? nil
            for input in rule.inputs where byName[input] == nil && !invalid.contains(input) {
                problems.append(RuleProblem(line: line, rule: rule.name, field: "expression",
                                            message: "reads '\(input)', which is not a rule" + (complete ? "" : " (or is one whose name is invalid)")))
            }
            if rule.inputs.contains(rule.name) {
                problems.append(RuleProblem(line: line, rule: rule.name, field: "expression", message: "reads itself"))
            }
        }
        // Cycles through other composites: depth-first, reporting each
        // composite on a cycle once, with the cycle.
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        var reported: Set<String> = []
        func visit(_ name: String, _ path: [String]) {
            guard let rule = byName[name], rule.kind == .composite else { return }
            if state[name] == 2 { return }
            if state[name] == 1 {
                guard let start = path.firstIndex(of: name) else { return }
                let cycle = Array(path[start...]) + [name]
                for member in cycle.dropLast() where !reported.contains(member) && rules.contains(where: { $0.name == member }) {
                    reported.insert(member)
                    if member == name && cycle.count == 2 { continue }  // reported above as "reads itself"
                    problems.append(RuleProblem(line: lines[member] ?? nil, rule: member, field: "expression",
                                                message: "composites form a cycle: \(cycle.joined(separator: " → "))"))
                }
                return
            }
            state[name] = 1
            for input in rule.inputs { visit(input, path + [name]) }
            state[name] = 2
        }
        for rule in rules where rule.kind == .composite { visit(rule.name, []) }
        guard problems.isEmpty else { return problems }
        // Group labels, inputs first.
        var resolved: [String: Rule.GroupBy] = [:]
        func groups(_ name: String) -> Rule.GroupBy {
            if let done = resolved[name] { return done }
            guard let rule = byName[name] else { return .none }
            guard rule.kind == .composite else { return rule.groupBy }
            let inputs = rule.inputs.map(groups)
            var keys = inputs.first?.keys ?? []
            for other in inputs.dropFirst() { keys = keys.filter(other.keys.contains) }
            resolved[name] = Rule.GroupBy(keys)
            return resolved[name]!
        }
        for i in rules.indices where rules[i].kind == .composite { rules[i].groupBy = groups(rules[i].name) }
        return []
    }

    /// The state of one input of a composite for one of its groups.
    public struct InputGroup: Sendable, Equatable {
        public var labels: [String: String]
        public var status: AlertStatus
        public init(labels: [String: String], status: AlertStatus) {
            self.labels = labels
            self.status = status
        }
        /// An input holds where its alert fires (or fired and is
        /// acknowledged); a pending alert does not hold yet.
        public var holds: Bool { status == .firing || status == .acknowledged }
    }

    /// One group of a composite: whether the expression holds there, and
    /// each input's state (for the evidence).
    public struct Outcome: Sendable, Equatable {
        public var labels: [String: String]
        public var holds: Bool
        /// Input name → "firing", "acknowledged", "pending" or "ok".
        public var inputs: [String: String]
    }

    /// Evaluates `rule` (a composite, its groupBy resolved) over the open
    /// alerts of its inputs, by name, and returns every group where an
    /// input has an open alert, or where the composite has one (`open`).
    public static func evaluate(_ rule: Rule, inputs: [String: [InputGroup]],
                                open: [[String: String]] = []) -> [String: Outcome] {
        let keys = rule.groupBy
        func project(_ labels: [String: String]) -> String { keys.key(keys.keys.map { labels[$0] ?? "" }) }
        var holding: [String: Set<String>] = [:]
        var states: [String: [String: String]] = [:]  // group → input → state
        var groupLabels: [String: [String: String]] = [:]
        for name in rule.inputs {
            for group in inputs[name] ?? [] {
                let key = project(group.labels)
                groupLabels[key] = keys.labels(keys.keys.map { group.labels[$0] ?? "" })
                if group.holds { holding[name, default: []].insert(key) }
                // The strongest state of the input among the groups projected here.
                let rank = ["ok": 0, "pending": 1, "acknowledged": 2, "firing": 3]
                let state = group.status.rawValue
                if (rank[state] ?? 0) > (rank[states[key]?[name] ?? "ok"] ?? 0) { states[key, default: [:]][name] = state }
            }
        }
        for labels in open {
            let key = project(labels)
            if groupLabels[key] == nil { groupLabels[key] = keys.labels(keys.keys.map { labels[$0] ?? "" }) }
        }
        let firing = rule.expression?.evaluate(holding) ?? []
        var out: [String: Outcome] = [:]
        for (key, labels) in groupLabels {
            var inputStates: [String: String] = [:]
            for name in rule.inputs { inputStates[name] = states[key]?[name] ?? "ok" }
            out[key] = Outcome(labels: labels, holds: firing.contains(key), inputs: inputStates)
        }
        if keys.isEmpty && out.isEmpty {
            out[""] = Outcome(labels: [:], holds: false, inputs: Dictionary(uniqueKeysWithValues: rule.inputs.map { ($0, "ok") }))
        }
        return out
    }
}
