import Foundation
import Yams

/// Reads the policy sections of a notifications file — `time_intervals`,
/// `inhibit_rules`, `templates` — and label matchers, with every problem's
/// line and field.
struct PolicyReader {
    var problems: [RuleProblem] = []

    static let maxTimeIntervals = 100
    static let maxInhibitRules = 100
    static let weekdayNames = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    static let monthNames = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
                             "october", "november", "december"]

    static func isLabelName(_ text: String) -> Bool {
        text.range(of: "^[A-Za-z_][A-Za-z0-9_]{0,63}\\z", options: .regularExpression) != nil
    }

    /// At most 256 Unicode scalars and no NUL (PostgreSQL text refuses it).
    static func isBoundedValue(_ text: String) -> Bool {
        text.unicodeScalars.count <= 256 && !text.utf8.contains(0)
    }

    static func isItemName(_ text: String) -> Bool {
        text.range(of: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\\z", options: .regularExpression) != nil
    }

    mutating func problem(_ node: Node?, _ item: String?, _ field: String?, _ message: String) {
        problems.append(RuleProblem(line: node?.mark?.line, rule: item, field: field, message: message))
    }

    func sequence(_ node: Node?, field: String, max: Int, problems: inout [RuleProblem]) -> [Node] {
        guard let node else { return [] }
        guard let items = node.sequence else {
            problems.append(RuleProblem(line: node.mark?.line, rule: nil, field: field, message: "must be a list"))
            return []
        }
        guard items.count <= max else {
            problems.append(RuleProblem(line: node.mark?.line, rule: nil, field: field, message: "at most \(max) items"))
            return []
        }
        return Array(items)
    }

    // MARK: Label matchers

    /// `name: value` (equal), `name: [a, b]` (one of), `name: {regex: "…"}`.
    mutating func matchers(_ node: Node?, field: String, item: String?) -> LabelMatchers {
        guard let node else { return [:] }
        guard let mapping = node.mapping, mapping.count <= 32 else {
            problem(node, item, field, "must be a mapping of at most 32 label names to a value, a list of values or {regex: …}")
            return [:]
        }
        var out: LabelMatchers = [:]
        for (key, value) in mapping {
            guard let name = key.string, Self.isLabelName(name) else {
                problem(key, item, field, "\(key.string ?? "?") is not a label name")
                continue
            }
            if let scalar = value.scalar, value.null == nil {
                guard Self.isBoundedValue(scalar.string) else {
                    problem(value, item, field, "values are at most 256 characters, without NUL")
                    continue
                }
                out[name] = .equal(scalar.string)
            } else if let list = value.sequence {
                let values = list.compactMap { $0.null == nil ? $0.scalar?.string : nil }
                guard values.count == list.count, (1...100).contains(values.count), values.allSatisfy(Self.isBoundedValue) else {
                    problem(value, item, field, "\(name): a list of 1 to 100 values of at most 256 characters, without NUL")
                    continue
                }
                out[name] = .oneOf(values)
            } else if let inner = value.mapping, inner.count == 1, inner["regex"] != nil,
                      let pattern = inner["regex"]?.scalar?.string, Self.isBoundedValue(pattern) {
                if let why = LabelMatcher.regexProblem(pattern) {
                    problem(value, item, field, "\(name): \(why)")
                } else {
                    out[name] = .regex(pattern)
                }
            } else {
                problem(value, item, field, "\(name): give a value, a list of values or {regex: \"…\"} (at most 256 characters, without NUL)")
            }
        }
        return out
    }

    // MARK: Time intervals

    mutating func timeIntervals(_ node: Node?) -> [NotifyConfig.TimeWindow] {
        var out: [NotifyConfig.TimeWindow] = []
        for (index, item) in sequence(node, field: "time_intervals", max: Self.maxTimeIntervals, problems: &problems).enumerated() {
            var fields = YAMLFields(item, item: "time interval #\(index + 1)",
                                    allowed: ["name", "time_zone", "weekdays", "times", "days_of_month", "months", "years"])
            guard let name = fields.string("name", maxLength: 64), Self.isItemName(name) else {
                fields.problem("name", "is required: 1 to 64 characters of letters, digits, _, . and -")
                problems += fields.problems
                continue
            }
            fields.name("time interval \(name)")
            if out.contains(where: { $0.name == name }) { fields.problem("name", "duplicate time interval name") }
            let recurrence = Self.recurrence(&fields)
            problems += fields.problems
            if let recurrence, fields.problems.isEmpty { out.append(.init(name: name, recurrence: recurrence)) }
        }
        return out
    }

    /// The window fields of a time interval (or of a recurring silence).
    static func recurrence(_ fields: inout YAMLFields) -> Recurrence? {
        var recurrence = Recurrence()
        if let zone = fields.string("time_zone", maxLength: 64) {
            if zone.contains("..") || zone.hasPrefix("/") || TimeZone(identifier: zone) == nil {
                fields.problem("time_zone", "\(zone) is not a time zone of the zone database (such as Europe/Paris or UTC)")
            } else {
                recurrence.timeZone = zone
            }
        }
        if let node = fields.values["times"] {
            let items = node.sequence.map(Array.init) ?? [node]
            if items.count > 20 { fields.problem("times", "at most 20 ranges", at: node) }
            for item in items.prefix(20) {
                guard let mapping = item.mapping, mapping.count == 2, let start = mapping["start"]?.scalar?.string,
                      let end = mapping["end"]?.scalar?.string
                else {
                    fields.problem("times", "each range is {start: \"HH:MM\", end: \"HH:MM\"} (seconds allowed: HH:MM:SS)", at: item)
                    continue
                }
                guard let from = clock(start, allowEnd: false), let to = clock(end, allowEnd: true) else {
                    fields.problem("times", "times are HH:MM or HH:MM:SS from 00:00 to 24:00", at: item)
                    continue
                }
                guard from < to else {
                    fields.problem("times", "the range \(start)–\(end) is empty: end must be after start (a range across midnight is two ranges)", at: item)
                    continue
                }
                recurrence.times.append(.init(start: from, end: to))
            }
        }
        recurrence.weekdays = spans(&fields, "weekdays", range: 1...7, names: weekdayNames)
        recurrence.daysOfMonth = spans(&fields, "days_of_month", range: -31...31, names: [])
        recurrence.months = spans(&fields, "months", range: 1...12, names: monthNames)
        recurrence.years = spans(&fields, "years", range: 1970...9999, names: [])
        if fields.problems.isEmpty, let why = recurrence.impossibility { fields.problem("days_of_month", why) }
        return fields.problems.isEmpty ? recurrence : nil
    }

    /// Seconds of the day of `HH:MM[:SS]`; 24:00 only as an end.
    static func clock(_ text: String, allowEnd: Bool) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (2...3).contains(parts.count), parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) }),
              let hour = Int(parts[0]), let minute = Int(parts[1]), (0...59).contains(minute)
        else { return nil }
        let second = parts.count == 3 ? Int(parts[2]) : 0
        guard let second, (0...59).contains(second) else { return nil }
        let total = hour * 3600 + minute * 60 + second
        if hour == 24 { return allowEnd && total == 86_400 ? total : nil }
        return (0...23).contains(hour) ? total : nil
    }

    /// `[monday:friday, sunday]`, `[1:7, -1]`, `["2025:2026"]`: single
    /// values or `from:to` ranges, by name or number.
    static func spans(_ fields: inout YAMLFields, _ field: String, range: ClosedRange<Int>, names: [String]) -> [Recurrence.Span] {
        guard let node = fields.values[field] else { return [] }
        let items = node.sequence.map(Array.init) ?? [node]
        guard items.count <= 50 else {
            fields.problem(field, "at most 50 items", at: node)
            return []
        }
        func value(_ text: Substring) -> Int? {
            let lower = text.lowercased().trimmingCharacters(in: .whitespaces)
            if let index = names.firstIndex(of: lower) { return index + 1 }
            guard lower.count <= 5, let number = Int(lower), range.contains(number), number != 0 else { return nil }
            return number
        }
        var out: [Recurrence.Span] = []
        for item in items {
            guard let text = item.scalar?.string, item.null == nil, text.count <= 32 else {
                fields.problem(field, "must be a list of values or from:to ranges", at: item)
                continue
            }
            // A negative day is "-3", a range of negative days "-3:-1".
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let from = value(parts[0]), let to = value(parts.last!) else {
                let expected = names.isEmpty ? "\(range.lowerBound) to \(range.upperBound)" : "\(names.first!) to \(names.last!) (or numbers)"
                fields.problem(field, "\(text) is not a value or range of \(expected)", at: item)
                continue
            }
            guard (from < 0) == (to < 0), from <= to else {
                fields.problem(field, "the range \(text) is empty: it must go forward", at: item)
                continue
            }
            out.append(.init(from, to))
        }
        return out
    }

    // MARK: Inhibit rules

    mutating func inhibitRules(_ node: Node?) -> [NotifyConfig.InhibitRule] {
        var out: [NotifyConfig.InhibitRule] = []
        for (index, item) in sequence(node, field: "inhibit_rules", max: Self.maxInhibitRules, problems: &problems).enumerated() {
            var fields = YAMLFields(item, item: "inhibit rule #\(index + 1)", allowed: ["name", "source", "target", "equal"])
            guard let name = fields.string("name", maxLength: 64), Self.isItemName(name) else {
                fields.problem("name", "is required: 1 to 64 characters of letters, digits, _, . and -")
                problems += fields.problems
                continue
            }
            fields.name("inhibit rule \(name)")
            if out.contains(where: { $0.name == name }) { fields.problem("name", "duplicate inhibit rule name") }
            var reader = PolicyReader()
            let source = reader.matchers(fields.values["source"], field: "source", item: fields.item)
            let target = reader.matchers(fields.values["target"], field: "target", item: fields.item)
            fields.problems += reader.problems
            if source.isEmpty && !fields.has("source") || target.isEmpty && !fields.has("target") {
                fields.problem(source.isEmpty ? "source" : "target", "is required: the labels of the alerts it applies to")
            }
            let equal = fields.stringList("equal", maxCount: 20, maxLength: 64) ?? []
            if let bad = equal.first(where: { !Self.isLabelName($0) }) { fields.problem("equal", "\(bad) is not a label name") }
            problems += fields.problems
            if fields.problems.isEmpty { out.append(.init(name: name, source: source, target: target, equal: equal)) }
        }
        return out
    }

    // MARK: Templates

    mutating func templates(_ node: Node?, read: ((String) -> String?)?) -> [NotifyConfig.Channel.Kind: NotifyConfig.MessageTemplate] {
        guard let node else { return [:] }
        guard let mapping = node.mapping else {
            problem(node, nil, "templates", "must map channel kinds (slack, webhook, pagerduty, email) to template files")
            return [:]
        }
        var out: [NotifyConfig.Channel.Kind: NotifyConfig.MessageTemplate] = [:]
        for (key, value) in mapping {
            guard let name = key.string, let kind = NotifyConfig.Channel.Kind(rawValue: name) else {
                problem(key, "templates", key.string, "no channel kind named \(key.string ?? "?") (slack, webhook, pagerduty, email)")
                continue
            }
            guard let path = value.scalar?.string, value.null == nil, !path.isEmpty, path.count <= 1024, !path.contains("\0") else {
                problem(value, "templates", name, "must be the path of a Mustache file")
                continue
            }
            guard let read else {
                problem(value, "templates", name, "templates are read from files: check or apply the file with the tocsin command")
                continue
            }
            guard let text = read(path) else {
                problem(value, "templates", name, "cannot read \(path) (relative paths are from the notifications file's folder)")
                continue
            }
            guard text.utf8.count <= 64 * 1024, !text.contains("\0") else {
                problem(value, "templates", name, "\(path) must be UTF-8 text of at most 64 KiB")
                continue
            }
            out[kind] = .init(source: path, text: text)
        }
        return out
    }
}

extension Recurrence {
    public static let fields = ["time_zone", "weekdays", "times", "days_of_month", "months", "years"]

    /// A recurrence given as JSON (the API's recurring silences): the same
    /// fields and forms as a time interval. Returns the problems as
    /// (field, reason).
    public static func parse(json value: Any) -> (recurrence: Recurrence?, problems: [(field: String, reason: String)]) {
        guard value is [String: Any], let node = YAMLDocument.node(json: value) else {
            return (nil, [("recurrence", "must be an object with \(fields.joined(separator: ", "))")])
        }
        var reader = YAMLFields(node, item: nil, allowed: Set(fields))
        let recurrence = PolicyReader.recurrence(&reader)
        if reader.problems.isEmpty, let recurrence, recurrence == Recurrence(timeZone: recurrence.timeZone) {
            return (nil, [("recurrence", "give at least one of weekdays, times, days_of_month, months, years")])
        }
        return (reader.problems.isEmpty ? recurrence : nil,
                reader.problems.map { ("recurrence." + ($0.field ?? ""), $0.message) })
    }
}
