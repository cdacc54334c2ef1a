import Foundation

/// The labels every notification matcher (routes, inhibit rules, grouping,
/// silences' labels) sees for an alert — one definition, documented in
/// docs/notifications.md:
///
/// - the alert's own labels (its group's labels and its rule's labels, as
///   the alert carries them),
/// - `platform` (when the alert has one), `severity`, and `rule` and
///   `alertname` (both the rule's name).
///
/// The built-in names win over an alert label of the same name, so a label
/// can never make an alert look like another rule or severity.
public enum AlertLabelSet {
    public static let builtIn: [String] = ["alertname", "platform", "rule", "severity"]

    public static func of(_ alert: Alert) -> [String: String] {
        if alert.external != nil {
            // An external alert brings its own label set; only `rule` (its
            // alertname) is added, and its own `severity` label is kept.
            var set = alert.labels
            set["rule"] = alert.rule
            set["alertname"] = alert.rule
            if set["severity"] == nil { set["severity"] = alert.severity.rawValue }
            return set
        }
        return of(rule: alert.rule, severity: alert.severity, platform: alert.platform, labels: alert.labels)
    }

    public static func of(rule: String, severity: Rule.Severity, platform: String?, labels: [String: String]) -> [String: String] {
        var set = labels
        if let platform { set["platform"] = platform }
        set["severity"] = severity.rawValue
        set["rule"] = rule
        set["alertname"] = rule
        return set
    }
}

/// One label's condition: equal to a value, one of a set, or matching a
/// regular expression (anchored at both ends, as in Alertmanager). A label
/// the alert does not have is the empty string.
public enum LabelMatcher: Sendable, Hashable, Codable, CustomStringConvertible {
    case equal(String)
    case oneOf([String])
    case regex(String)

    public var description: String {
        switch self {
        case .equal(let value): "=\(value)"
        case .oneOf(let values): "in [\(values.joined(separator: ", "))]"
        case .regex(let pattern): "=~ /\(pattern)/"
        }
    }

    public func matches(_ value: String?) -> Bool {
        let value = value ?? ""
        switch self {
        case .equal(let expected): return value == expected
        case .oneOf(let values): return values.contains(value)
        case .regex(let pattern): return Self.fullMatch(pattern, value)
        }
    }

    /// nil when the pattern can be used (`AnchoredRegex`), else why not.
    public static func regexProblem(_ pattern: String) -> String? {
        AnchoredRegex.problem(pattern)
    }

    static func fullMatch(_ pattern: String, _ value: String) -> Bool {
        AnchoredRegex.fullMatch(pattern, value)
    }

    enum CodingKeys: String, CodingKey { case eq, `in`, re }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let value = try c.decodeIfPresent(String.self, forKey: .eq) {
            self = .equal(value)
        } else if let values = try c.decodeIfPresent([String].self, forKey: .in) {
            self = .oneOf(values)
        } else {
            self = .regex(try c.decode(String.self, forKey: .re))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .equal(let value): try c.encode(value, forKey: .eq)
        case .oneOf(let values): try c.encode(values, forKey: .in)
        case .regex(let pattern): try c.encode(pattern, forKey: .re)
        }
    }
}

/// Label name → condition; all must hold.
public typealias LabelMatchers = [String: LabelMatcher]

extension Dictionary where Key == String, Value == LabelMatcher {
    public func matchAll(_ labels: [String: String]) -> Bool {
        allSatisfy { name, matcher in matcher.matches(labels[name]) }
    }
}

/// A recurring window of time, in a time zone: the times of day, weekdays,
/// days of the month, months and years it covers (each one given must
/// hold; an empty list means any). The fields and their forms are
/// Alertmanager's `time_intervals`, with seconds allowed in times.
public struct Recurrence: Sendable, Hashable, Codable {
    /// [start, end) in seconds of the local day; end at most 86 400.
    public struct TimeRange: Sendable, Hashable, Codable {
        public var start: Int
        public var end: Int
        public init(start: Int, end: Int) {
            self.start = start
            self.end = end
        }
    }

    /// Inclusive ranges; weekdays 1 (Monday) … 7 (Sunday); days of the
    /// month 1 … 31 or -31 … -1 (from the end of the month).
    public struct Span: Sendable, Hashable, Codable {
        public var from: Int
        public var to: Int
        public init(_ from: Int, _ to: Int) {
            self.from = from
            self.to = to
        }
    }

    public var timeZone: String
    public var times: [TimeRange]
    public var weekdays: [Span]
    public var daysOfMonth: [Span]
    public var months: [Span]
    public var years: [Span]

    public init(timeZone: String = "UTC", times: [TimeRange] = [], weekdays: [Span] = [], daysOfMonth: [Span] = [],
                months: [Span] = [], years: [Span] = []) {
        self.timeZone = timeZone
        self.times = times
        self.weekdays = weekdays
        self.daysOfMonth = daysOfMonth
        self.months = months
        self.years = years
    }

    enum CodingKeys: String, CodingKey {
        case times, weekdays, months, years
        case timeZone = "time_zone", daysOfMonth = "days_of_month"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        timeZone = try c.decodeIfPresent(String.self, forKey: .timeZone) ?? "UTC"
        times = try c.decodeIfPresent([TimeRange].self, forKey: .times) ?? []
        weekdays = try c.decodeIfPresent([Span].self, forKey: .weekdays) ?? []
        daysOfMonth = try c.decodeIfPresent([Span].self, forKey: .daysOfMonth) ?? []
        months = try c.decodeIfPresent([Span].self, forKey: .months) ?? []
        years = try c.decodeIfPresent([Span].self, forKey: .years) ?? []
    }

    /// True when `date` falls inside the window.
    public func contains(_ date: Date) -> Bool {
        guard let zone = TimeZone(identifier: timeZone) else { return false }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = calendar.dateComponents([.year, .month, .day, .weekday, .hour, .minute, .second], from: date)
        guard let year = parts.year, let month = parts.month, let day = parts.day, let weekday = parts.weekday,
              let hour = parts.hour, let minute = parts.minute, let second = parts.second
        else { return false }
        let seconds = hour * 3600 + minute * 60 + second
        if !times.isEmpty && !times.contains(where: { $0.start <= seconds && seconds < $0.end }) { return false }
        // Foundation: 1 is Sunday; here 1 is Monday.
        let isoWeekday = weekday == 1 ? 7 : weekday - 1
        if !weekdays.isEmpty && !weekdays.contains(where: { $0.from <= isoWeekday && isoWeekday <= $0.to }) { return false }
        if !daysOfMonth.isEmpty {
            let length = calendar.range(of: .day, in: .month, for: date)?.count ?? 31
            let matched = daysOfMonth.contains { span in
                let from = span.from < 0 ? length + span.from + 1 : span.from
                let to = span.to < 0 ? length + span.to + 1 : span.to
                return from <= day && day <= to
            }
            if !matched { return false }
        }
        if !months.isEmpty && !months.contains(where: { $0.from <= month && month <= $0.to }) { return false }
        if !years.isEmpty && !years.contains(where: { $0.from <= year && year <= $0.to }) { return false }
        return true
    }

    /// Why the window can never hold (a day of the month that none of its
    /// months has), or nil.
    public var impossibility: String? {
        guard !daysOfMonth.isEmpty else { return nil }
        let monthSet = months.isEmpty ? Array(1...12) : months.flatMap { Array($0.from...$0.to) }
        let lengths: [Int: Int] = [1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31]
        for month in monthSet {
            let length = lengths[month] ?? 31
            for span in daysOfMonth {
                let from = span.from < 0 ? max(1, length + span.from + 1) : span.from
                let to = span.to < 0 ? length + span.to + 1 : min(span.to, length)
                if from <= to && from <= length { return nil }
            }
        }
        return "no month of the window has any of its days_of_month"
    }
}

extension NotifyConfig {
    /// A named recurring window for routes' `mute_time_intervals` and
    /// `active_time_intervals`.
    public struct TimeWindow: Sendable, Hashable, Codable {
        public var name: String
        public var recurrence: Recurrence

        public init(name: String, recurrence: Recurrence) {
            self.name = name
            self.recurrence = recurrence
        }
    }

    /// While an open alert matches `source`, alerts matching `target` (and
    /// not the source itself) whose `equal` labels have the source's
    /// values are not notified.
    public struct InhibitRule: Sendable, Hashable, Codable {
        public var name: String
        public var source: LabelMatchers
        public var target: LabelMatchers
        public var equal: [String]

        public init(name: String, source: LabelMatchers, target: LabelMatchers, equal: [String] = []) {
            self.name = name
            self.source = source
            self.target = target
            self.equal = equal
        }

        /// Does an open alert with `sourceLabels` inhibit one with `targetLabels`?
        public func inhibits(source sourceLabels: [String: String], target targetLabels: [String: String]) -> Bool {
            target.matchAll(targetLabels) && source.matchAll(sourceLabels)
                && equal.allSatisfy { (sourceLabels[$0] ?? "") == (targetLabels[$0] ?? "") }
        }
    }

    /// A level of a route's escalation: still firing and unacknowledged
    /// `afterSeconds` after it fired, the alert goes to `channels` too.
    public struct EscalationLevel: Sendable, Hashable, Codable {
        public var afterSeconds: Int
        public var channels: [String]

        public init(afterSeconds: Int, channels: [String]) {
            self.afterSeconds = afterSeconds
            self.channels = channels
        }

        enum CodingKeys: String, CodingKey {
            case channels
            case afterSeconds = "after_s"
        }
    }

    /// What a route's policy says for one channel: which route (its index
    /// and name), how alerts are grouped, and the windows that hold them.
    public struct Delivery: Sendable {
        public var channel: Channel
        public var routeIndex: Int
        public var route: Route
        /// The shortest repeat interval of the routes reaching the channel.
        public var repeatIntervalSeconds: Int

        public var routeName: String { route.displayName(index: routeIndex) }
    }

    /// The channels an alert's transition goes to, each with the first
    /// matching route that reaches it (its policy decides grouping, windows
    /// and escalation for that channel).
    public func deliveries(labels: [String: String], severity: Rule.Severity, rule: String,
                           transition: AlertTransition.Kind) -> [Delivery] {
        var out: [Delivery] = []
        for (index, route) in routes.enumerated() where route.matches(rule: rule, severity: severity, labels: labels) {
            if transition == .resolved && !route.sendResolved { continue }
            for name in route.channels {
                if let i = out.firstIndex(where: { $0.channel.name == name }) {
                    out[i].repeatIntervalSeconds = min(out[i].repeatIntervalSeconds, route.repeatIntervalSeconds)
                } else if let channel = channel(named: name) {
                    out.append(Delivery(channel: channel, routeIndex: index, route: route,
                                        repeatIntervalSeconds: route.repeatIntervalSeconds))
                }
            }
        }
        return out
    }

    /// The deliveries of an alert (by its label set).
    public func deliveries(for alert: Alert, transition: AlertTransition.Kind) -> [Delivery] {
        deliveries(labels: AlertLabelSet.of(alert), severity: alert.severity, rule: alert.rule, transition: transition)
    }

    public func timeWindow(named name: String) -> TimeWindow? { timeIntervals.first { $0.name == name } }

    /// The window that holds a route's notifications at `now`: a mute
    /// interval that contains it, or an active interval list none of which
    /// does (named "not in a, b"). nil when the route may send.
    public func heldBy(route: Route, at now: Date) -> String? {
        for name in route.muteTimeIntervals where timeWindow(named: name)?.recurrence.contains(now) == true {
            return name
        }
        if !route.activeTimeIntervals.isEmpty,
           !route.activeTimeIntervals.contains(where: { timeWindow(named: $0)?.recurrence.contains(now) == true }) {
            return "outside " + route.activeTimeIntervals.joined(separator: ", ")
        }
        return nil
    }

    /// The first inhibit rule and open source alert that inhibit `target`.
    public func inhibition(of target: [String: String], targetID: Int,
                           openAlerts: [(id: Int, labels: [String: String])]) -> (rule: String, sourceID: Int)? {
        for rule in inhibitRules where rule.target.matchAll(target) {
            for source in openAlerts where source.id != targetID && rule.inhibits(source: source.labels, target: target) {
                return (rule.name, source.id)
            }
        }
        return nil
    }

    /// The values of `groupBy` in a label set, as the group's key and labels.
    public static func groupKey(_ groupBy: [String], labels: [String: String]) -> (key: String, labels: [String: String]) {
        var picked: [String: String] = [:]
        for name in groupBy { picked[name] = labels[name] ?? "" }
        let key = groupBy.sorted().map { "\($0)=\(picked[$0]!.debugDescription)" }.joined(separator: ",")
        return (key, picked)
    }
}
