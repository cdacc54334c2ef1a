import Foundation
import Testing
@testable import TocsinCore

@Suite("Notification policy: parsing, validation, matching, windows")
struct NotifyPolicyTests {
    static let channels = """
        channels:
          - name: slack-ops
            kind: slack
            url: https://hooks.slack.com/services/T/B/x
          - name: pagerduty
            kind: pagerduty
            routing_key: k
          - name: ops-mail
            kind: email
            smtp_url: smtp://127.0.0.1:2525
            from: t@example.com
            to: [a@example.com]

        """

    static func parse(_ yaml: String, templates: [String: String] = [:]) -> NotifyConfigFile.Result {
        NotifyConfigFile.parse(yaml: channels + yaml, environment: nil) { templates[$0] }
    }

    @Test("the issue's example file parses into routes, windows, inhibit rules and templates")
    func example() throws {
        let result = Self.parse("""
            routes:
              - channels: [slack-ops]
                group_by: [rule, platform]
                group_wait: 0s
                group_interval: 1m
                repeat_interval: 4h
                mute_time_intervals: [deploy-window]
                active_time_intervals: [business-hours]
                escalate:
                  - after: 15m
                    channels: [pagerduty]
                  - after: 45m
                    channels: [ops-mail]
            time_intervals:
              - name: business-hours
                time_zone: Europe/Paris
                weekdays: [monday:friday]
                times: [{start: "09:00", end: "18:00"}]
              - name: deploy-window
                weekdays: [tuesday]
                times: [{start: "14:00:00", end: "14:30:00"}]
            inhibit_rules:
              - name: critical-mutes-lesser
                source: {severity: critical}
                target: {severity: [warning, error]}
                equal: [platform]
            templates:
              slack: templates/slack.mustache
            """, templates: ["templates/slack.mustache": #"{"text": "{{title}}"}"#])
        let config = try #require(result.config, "\(result.problems)")
        let route = config.routes[0]
        #expect(route.groupBy == ["platform", "rule"])
        #expect(route.groupWaitSeconds == 0 && route.groupIntervalSeconds == 60)
        #expect(route.escalate == [.init(afterSeconds: 900, channels: ["pagerduty"]), .init(afterSeconds: 2700, channels: ["ops-mail"])])
        #expect(config.timeIntervals.map(\.name) == ["business-hours", "deploy-window"])
        #expect(config.timeIntervals[0].recurrence.weekdays == [.init(1, 5)])
        #expect(config.inhibitRules[0].target["severity"] == .oneOf(["warning", "error"]))
        #expect(config.templates[.slack]?.source == "templates/slack.mustache")
    }

    @Test("validation: unknown fields, channels, intervals and template kinds, impossible windows, levels out of order — with line and field")
    func validation() {
        let problems = Self.parse("""
            routes:
              - channels: [slack-ops]
                group_wiat: 5s
                mute_time_intervals: [nowhere]
                escalate:
                  - after: 30m
                    channels: [pagerduty]
                  - after: 15m
                    channels: [nobody]
              - channels: [slack-ops]
                group_interval: 1m
            time_intervals:
              - name: bad-times
                times: [{start: "18:00", end: "09:00"}]
              - name: never
                months: [february]
                days_of_month: [30:31]
              - name: bad-zone
                time_zone: Mars/Olympus
                weekdays: [funday]
            inhibit_rules:
              - name: broken
                source: {platform: {regex: "(unclosed"}}
                target: {severity: warning}
                equals: [platform]
            templates:
              telegram: t.mustache
            """).problems
        func has(_ field: String, line: Int, _ text: String) -> Bool {
            problems.contains { $0.field == field && $0.line == line + 12 && $0.message.contains(text) }
        }
        #expect(has("group_wiat", line: 3, "unknown field"), "\(problems.map { "\($0.line ?? 0) \($0.field ?? "") \($0.message)" })")
        #expect(has("mute_time_intervals", line: 4, "no time interval named nowhere"))
        #expect(has("after", line: 8, "must be later than the level before"))
        #expect(has("channels", line: 9, "no channel named nobody"))
        #expect(has("group_interval", line: 11, "applies only to a route with group_by"))
        #expect(has("times", line: 14, "end must be after start"))
        #expect(has("days_of_month", line: 17, "no month of the window has any of its days_of_month"))
        #expect(has("time_zone", line: 19, "not a time zone"))
        #expect(has("weekdays", line: 20, "funday"))
        #expect(has("source", line: 23, "not a valid regular expression"))
        #expect(has("equals", line: 25, "unknown field"))
        #expect(has("telegram", line: 27, "no channel kind named telegram"))
    }

    @Test("an older file keeps its stored form: the new sections and route fields are written only when set")
    func storedFormUnchanged() throws {
        let route = NotifyConfig.Route(channels: ["slack"], severities: [.critical], labels: ["team": "x"])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(NotifyConfig(channels: [], routes: [route])), as: UTF8.self)
        #expect(text == #"{"channels":[],"routes":[{"channels":["slack"],"labels":{"team":"x"},"repeat_interval_s":14400,"send_resolved":true,"severities":["critical"]}]}"#)
        let decoded = try JSONDecoder().decode(NotifyConfig.self, from: Data(text.utf8))
        #expect(decoded.routes == [route])
    }

    @Test("the label set: the alert's labels plus rule, alertname, severity and platform, which no label can override")
    func labelSet() {
        let set = AlertLabelSet.of(rule: "oauth_failures", severity: .error, platform: "tiktok",
                                   labels: ["team": "integrations", "severity": "critical"])
        #expect(set == ["team": "integrations", "severity": "error", "platform": "tiktok", "rule": "oauth_failures",
                        "alertname": "oauth_failures"])
        let matchers: LabelMatchers = ["platform": .regex("tik.*"), "severity": .oneOf(["error", "critical"]), "team": .equal("integrations")]
        #expect(matchers.matchAll(set))
        #expect(!(["platform": LabelMatcher.regex("tik")] as LabelMatchers).matchAll(set), "regexes are anchored")
        #expect((["region": LabelMatcher.equal("")] as LabelMatchers).matchAll(set), "a missing label is the empty string")
    }

    @Test("inhibition: target and source matchers, equal labels, never itself")
    func inhibition() {
        let rule = NotifyConfig.InhibitRule(name: "crit", source: ["severity": .equal("critical")],
                                            target: ["severity": .oneOf(["warning", "error"])], equal: ["platform"])
        let config = NotifyConfig(channels: [], routes: [], inhibitRules: [rule])
        let critical = AlertLabelSet.of(rule: "down", severity: .critical, platform: "tiktok", labels: [:])
        let warning = AlertLabelSet.of(rule: "slow", severity: .warning, platform: "tiktok", labels: [:])
        let elsewhere = AlertLabelSet.of(rule: "slow", severity: .warning, platform: "instagram", labels: [:])
        #expect(config.inhibition(of: warning, targetID: 2, openAlerts: [(1, critical)])?.sourceID == 1)
        #expect(config.inhibition(of: elsewhere, targetID: 3, openAlerts: [(1, critical)]) == nil)
        #expect(config.inhibition(of: critical, targetID: 1, openAlerts: [(1, critical)]) == nil)
    }

    @Test("recurring windows: time zone, weekdays, seconds, days from the end of the month, months and years")
    func windows() throws {
        func date(_ text: String) throws -> Date { try #require(RFC3339.parse(text)) }
        let paris = Recurrence(timeZone: "Europe/Paris", times: [.init(start: 9 * 3600, end: 18 * 3600)], weekdays: [.init(1, 5)])
        #expect(paris.contains(try date("2026-12-01T08:30:00Z")))   // Tuesday 09:30 in Paris
        #expect(!paris.contains(try date("2026-12-01T07:30:00Z")))  // 08:30 in Paris
        #expect(!paris.contains(try date("2026-12-05T10:00:00Z")))  // Saturday
        let seconds = Recurrence(times: [.init(start: 3600 + 5, end: 3600 + 9)])
        #expect(seconds.contains(try date("2026-12-01T01:00:05Z")))
        #expect(!seconds.contains(try date("2026-12-01T01:00:09Z")))
        let lastDay = Recurrence(daysOfMonth: [.init(-1, -1)])
        #expect(lastDay.contains(try date("2028-02-29T12:00:00Z")))
        #expect(!lastDay.contains(try date("2028-02-28T12:00:00Z")))
        let q1 = Recurrence(months: [.init(1, 3)], years: [.init(2027, 2027)])
        #expect(q1.contains(try date("2027-02-10T00:00:00Z")))
        #expect(!q1.contains(try date("2026-02-10T00:00:00Z")))
        #expect(Recurrence(daysOfMonth: [.init(30, 31)], months: [.init(2, 2)]).impossibility != nil)
        #expect(Recurrence(daysOfMonth: [.init(30, 31)], months: [.init(2, 3)]).impossibility == nil)
    }

    @Test("a route's windows: a mute interval holds, an active interval holds outside it")
    func heldBy() {
        let always = NotifyConfig.TimeWindow(name: "always", recurrence: Recurrence(years: [.init(1970, 9999)]))
        let never = NotifyConfig.TimeWindow(name: "never", recurrence: Recurrence(years: [.init(1970, 1971)]))
        var route = NotifyConfig.Route(channels: ["x"])
        let config = NotifyConfig(channels: [], routes: [], timeIntervals: [always, never])
        route.muteTimeIntervals = ["never"]
        #expect(config.heldBy(route: route, at: Date()) == nil)
        route.activeTimeIntervals = ["never"]
        #expect(config.heldBy(route: route, at: Date()) == "outside never")
        route.muteTimeIntervals = ["always"]
        #expect(config.heldBy(route: route, at: Date()) == "always")
    }

    @Test("recurring silences from JSON: the same forms, problems by field")
    func recurrenceJSON() {
        let good = Recurrence.parse(json: ["weekdays": ["saturday:sunday"], "times": [["start": "02:00", "end": "04:00"]],
                                           "time_zone": "UTC"] as [String: Any])
        #expect(good.recurrence?.weekdays == [.init(6, 7)])
        #expect(good.problems.isEmpty)
        let bad = Recurrence.parse(json: ["times": [["start": "25:00", "end": "26:00"]], "colour": "red"] as [String: Any])
        #expect(bad.recurrence == nil)
        #expect(bad.problems.contains { $0.field == "recurrence.times" })
        #expect(bad.problems.contains { $0.field == "recurrence.colour" })
        #expect(Recurrence.parse(json: [String: Any]()).problems.first?.reason.contains("at least one") == true)
    }

    @Test("group keys: the group_by values, a missing label as empty")
    func groupKey() {
        let (key, labels) = NotifyConfig.groupKey(["rule", "region"], labels: ["rule": "r0", "platform": "p1"])
        #expect(labels == ["rule": "r0", "region": ""])
        #expect(key == #"region="",rule="r0""#)
    }
}

@Suite("Anchored regular expressions")
struct AnchoredRegexTests {
    @Test("whole values only; over 250 UTF-16 code units or not compiling is refused and matches nothing")
    func bounds() {
        #expect(AnchoredRegex.fullMatch("oauth_.*", "oauth_refresh"))
        #expect(!AnchoredRegex.fullMatch("oauth", "oauth_refresh"), "anchored at both ends")
        #expect(!AnchoredRegex.fullMatch("a|b", "ab"), "the alternation is inside the anchors")
        #expect(AnchoredRegex.fullMatch("a|ab", "ab"), "a shorter alternative matching first does not hide a whole match")
        #expect(!AnchoredRegex.fullMatch("prod", "prod\n"), "the end is the end of the value, not before a final newline (as Go)")
        #expect(AnchoredRegex.fullMatch("prod\\n", "prod\n"))
        #expect(!AnchoredRegex.fullMatch("b", "ab"), "the start is the start of the value")
        #expect(AnchoredRegex.problem(String(repeating: "a", count: 250)) == nil)
        let long = String(repeating: "a", count: 251)
        #expect(AnchoredRegex.problem(long)?.contains("250") == true)
        #expect(!AnchoredRegex.fullMatch(long, long))
        // 125 astral scalars are 250 UTF-16 code units; 126 are too many.
        #expect(AnchoredRegex.problem(String(repeating: "😀", count: 125)) == nil)
        #expect(AnchoredRegex.problem(String(repeating: "😀", count: 126)) != nil)
        #expect(AnchoredRegex.problem("(") == "is not a valid regular expression")
        #expect(!AnchoredRegex.fullMatch("(", "("))
        #expect(LabelMatcher.regexProblem(long) != nil, "the policy's regex matchers have the same bound")
    }

    @Test("a pattern is compiled once and shared; the cache stays bounded")
    func cache() {
        let pattern = "cache-" + String(UInt64.random(in: 0...UInt64.max)) + ".*"
        #expect(AnchoredRegex.compiled(pattern) === AnchoredRegex.compiled(pattern))
        for i in 0..<(AnchoredRegex.capacity + 10) { _ = AnchoredRegex.compiled("bound-\(i)") }
        #expect(AnchoredRegex.cache.withLock { $0.count } <= AnchoredRegex.capacity)
    }
}
