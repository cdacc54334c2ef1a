import Foundation
import Testing
@testable import TocsinCore

func parse(_ yaml: String) -> RuleFile.Result { RuleFile.parse(yaml: yaml) }

@Suite("Label patterns")
struct LabelPatternTests {
    @Test("whole-value matching, classes, alternation, bounded repeats")
    func matching() throws {
        let cases: [(String, String, Bool)] = [
            ("/v2/.*", "/v2/video/upload", true), ("/v2/.*", "/v1/x", false), ("^/v2/", "/v2/", true), ("^/v2/", "/v2/x", false),
            ("video|image", "video", true), ("video|image", "videos", false), ("(?:a|b)+c", "ababc", true),
            ("[a-c]{2,3}", "abc", true), ("[a-c]{2,3}", "abcd", false), ("[a-c]{2}", "a", false), ("[^0-9]+", "abc", true),
            ("[^0-9]+", "ab1", false), ("\\d{3}", "429", true), ("\\w+", "user_cancelled", true), ("\\s", " ", true),
            ("a\\.b", "a.b", true), ("a\\.b", "axb", false), ("a.b", "a\nb", true), ("", "", true), ("x?", "", true),
            ("[-a]", "-", true), ("[a\\]]", "]", true), ("(a*)*b", String(repeating: "a", count: 200), false),
            ("\\D+", "ab", true), ("a{0}", "", true), ("é.", "éa", true), ("a$", "a", true), ("a|", "", true),
        ]
        for (pattern, value, expected) in cases {
            #expect(try LabelPattern(pattern).matches(value) == expected, "\(pattern) on \(value)")
        }
    }

    @Test("constructs the two engines read differently are refused")
    func refused() {
        for pattern in ["(a)\\1", "(?=a)", "(?!a)", "(?<=a)b", "(?<n>a)", "(?i)a", "\\bword", "\\Aa", "a\\z", "\\p{L}",
                        "\\x41", "[[:alpha:]]", "a**", "a*+", "a{2}{3}", "*a", "a{256}", "a{3,2}", "(a", "a)", "[a", "[]",
                        "a{", "}", "]", "[a&&b]", "[a--b]", "[\\W]", "\\", String(repeating: "a", count: 257),
                        "(((a{255}){255}){255})"] {
            #expect(throws: LabelPattern.Invalid.self, "\(pattern)") { try LabelPattern(pattern) }
        }
    }
}

@Suite("Rules of the new kinds: files")
struct RuleKindFileTests {
    static let valid = """
        rules:
          - name: slow_video_endpoints
            kind: aggregate
            metric: api.latency
            function: p95
            window: 15m
            comparison: ">"
            threshold: 2
            severity: warning
            where:
              - {label: media, equals: video}
              - {label: reason, not_equals: user_cancelled}
              - {label: endpoint, matches: "/v2/.*"}
              - {label: platform, in: [tiktok, instagram]}
              - {label: region, present: false}
            group_by: [endpoint, platform]
            max_groups: 50
          - name: failing_uploads
            kind: ratio
            numerator: [upload.failure]
            denominator: [upload.success, upload.failure]
            threshold: 0.05
            severity: error
            group_by: platform
          - name: slow_and_failing
            kind: composite
            expression: slow_video_endpoints and (failing_uploads or upload_slo) unless quiet
            severity: critical
          - name: quiet
            kind: count
            metric: api.call
            comparison: "<"
            threshold: 1
            severity: warning
          - name: upload_slo
            kind: slo
            good: [upload.success]
            total: [upload.success, upload.failure]
            objective: 0.995
            period: 30d
            group_by: platform
        """

    @Test("filters, label groups, composites and SLOs read as written; today's files still read")
    func reads() throws {
        let result = parse(Self.valid)
        #expect(result.problems.isEmpty, "\(result.problems)")
        let rules = Dictionary(uniqueKeysWithValues: result.rules.map { ($0.name, $0) })
        let slow = try #require(rules["slow_video_endpoints"])
        #expect(slow.groupBy.keys == ["endpoint", "platform"] && slow.maxGroups == 50 && slow.filters.count == 5)
        #expect(EventMatcher.text(slow.filters).contains("endpoint =~ \"/v2/.*\""))
        let composite = try #require(rules["slow_and_failing"])
        #expect(composite.inputs == ["slow_video_endpoints", "failing_uploads", "upload_slo", "quiet"])
        #expect(composite.expression?.description == "(slow_video_endpoints and (failing_uploads or upload_slo)) unless quiet")
        // The groups of a composite: the labels every input groups by (quiet has none).
        #expect(composite.groupBy == .none)
        let slo = try #require(rules["upload_slo"]?.slo)
        #expect(slo.objective == 0.995 && slo.periodSeconds == 30 * 86_400 && slo.burnRates == ServiceLevelObjective.defaultBurnRates)
        #expect(rules["upload_slo"]?.severity == .critical)
        // A stored definition reads back equal, and one stored before these fields reads too.
        for rule in result.rules {
            let json = try JSONEncoder().encode(rule)
            #expect(try JSONDecoder().decode(Rule.self, from: json) == rule)
        }
        let old = #"{"name":"r","description":"","kind":"count","metric":"a","numerator":[],"denominator":[],"window_seconds":900,"lookback_seconds":86400,"min_samples":1,"comparison":">","threshold":1,"recovery_threshold":1,"group_by":"platform","severity":"error","for_seconds":0,"no_data":"keep","interval_seconds":60,"labels":{}}"#
        let decoded = try JSONDecoder().decode(Rule.self, from: Data(old.utf8))
        #expect(decoded.groupBy == .platform && decoded.filters.isEmpty && decoded.maxGroups == 100)
        let reencoded = String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self)
        #expect(!reencoded.contains("where") && !reencoded.contains("max_groups") && reencoded.contains(#""group_by":"platform""#))
    }

    @Test("a composite's groups are the labels its inputs share")
    func sharedGroups() throws {
        let result = parse("""
            rules:
              - {name: a, kind: count, metric: x, threshold: 1, severity: error, group_by: [platform, endpoint]}
              - {name: b, kind: count, metric: y, threshold: 1, severity: error, group_by: [endpoint, platform]}
              - {name: c, kind: count, metric: y, threshold: 1, severity: error, group_by: platform}
              - {name: ab, kind: composite, expression: a and b, severity: error}
              - {name: abc, kind: composite, expression: ab or c, severity: error}
            """)
        #expect(result.problems.isEmpty, "\(result.problems)")
        let rules = Dictionary(uniqueKeysWithValues: result.rules.map { ($0.name, $0) })
        #expect(rules["ab"]?.groupBy.keys == ["platform", "endpoint"])
        #expect(rules["abc"]?.groupBy.keys == ["platform"])
    }

    @Test("bad expressions, cycles, unknown rule names and bad regexes are refused with their line")
    func refusals() {
        let result = parse("""
            rules:
              - name: a
                kind: count
                metric: x
                threshold: 1
                severity: error
                where:
                  - {label: endpoint, matches: "(a)\\\\1"}
                  - {label: media, equals: video, not_equals: image}
                  - {label: "bad label", equals: x}
              - name: b
                kind: composite
                expression: a and
                severity: error
              - name: c
                kind: composite
                expression: a and nope
                severity: error
              - name: d
                kind: composite
                expression: e or a
                severity: error
              - name: e
                kind: composite
                expression: d unless a
                severity: error
              - name: f
                kind: composite
                expression: f
                severity: error
              - name: g
                kind: composite
                expression: (a or c
                severity: error
              - name: h
                kind: count
                metric: x
                threshold: 1
                severity: error
                group_by: [platform, a, b, c]
              - name: i
                kind: slo
                good: [upload.success]
                total: [upload.failure]
                objective: 1.5
                where:
                  - {label: media, equals: video}
              - name: j
                kind: composite
                expression: a
                threshold: 3
                severity: error
            """)
        func at(_ line: Int, _ field: String, _ text: String) -> Bool {
            result.problems.contains { $0.line == line && $0.field == field && $0.message.contains(text) }
        }
        #expect(at(8, "where[1].matches", "back-references"), "\(result.problems)")
        #expect(at(9, "where[2]", "exactly one of"), "\(result.problems)")
        #expect(at(10, "where[3].label", "is not a label name"), "\(result.problems)")
        #expect(at(13, "expression", "ends where a rule name"), "\(result.problems)")
        #expect(at(17, "expression", "reads 'nope', which is not a rule"), "\(result.problems)")
        #expect(at(21, "expression", "cycle: d → e → d"), "\(result.problems)")
        #expect(at(25, "expression", "cycle: e → d → e") || at(25, "expression", "cycle: d → e → d"), "\(result.problems)")
        #expect(at(29, "expression", "reads itself"), "\(result.problems)")
        #expect(at(33, "expression", "not closed"), "\(result.problems)")
        #expect(at(40, "group_by", "at most 3"), "\(result.problems)")
        #expect(at(43, "good", "not in total"), "\(result.problems)")
        #expect(at(45, "objective", "between"), "\(result.problems)")
        #expect(at(47, "where[1].label", "filter on platform only"), "\(result.problems)")
        #expect(at(51, "threshold", "does not apply to composite rules"), "\(result.problems)")
        #expect(result.rules.isEmpty)
    }

    @Test("an anchored-looking pattern is a warning, not a problem")
    func warnings() {
        let result = parse("""
            rules:
              - name: a
                kind: count
                metric: api.call
                threshold: 1
                severity: error
                where:
                  - {label: endpoint, matches: "^/v2/"}
            """)
        #expect(result.problems.isEmpty)
        #expect(result.warnings.map(\.line) == [8] && result.warnings.first?.message.contains("whole value") == true)
        let unseen = RuleFile.labelWarnings(parse("""
            rules:
              - {name: a, kind: count, metric: api.call, threshold: 1, severity: error, group_by: [platform, endpont]}
            """), seen: ["api.call": ["endpoint"]])
        #expect(unseen.map(\.field) == ["group_by"] && unseen.first?.line == 2 && unseen.first?.message.contains("endpont") == true)
    }
}

@Suite("Rules of the new kinds: math")
struct RuleKindMathTests {
    func point(_ name: String, _ t: Double, _ platform: String?, _ labels: [String: String], value: Double = 1) -> RuleMath.Point {
        RuleMath.Point(time: Date(timeIntervalSince1970: t), name: name, platform: platform, value: value, labels: labels)
    }

    @Test("a missing label reads as empty; group keys are distinct and keep the platform form")
    func matchersAndKeys() throws {
        #expect(EventMatcher(label: "reason", .notEquals("user_cancelled")).matches(nil))
        #expect(!EventMatcher(label: "reason", .equals("x")).matches(nil))
        #expect(EventMatcher(label: "reason", .equals("")).matches(nil))
        #expect(EventMatcher(label: "reason", .present(false)).matches(nil))
        #expect(!EventMatcher(label: "reason", .present(false)).matches(""))
        #expect(try EventMatcher(label: "e", .notMatches(LabelPattern("x.*"))).matches(nil))
        let two: Rule.GroupBy = ["platform", "endpoint"]
        #expect(two.key(["tiktok", "/a,b=c"]) == "platform=tiktok,endpoint=/a\\,b\\=c")
        #expect(two.key(["tiktok,endpoint=x", ""]) != two.key(["tiktok", "x"]))
        #expect(Rule.GroupBy.platform.key(["tiktok"]) == "tiktok")
        #expect(two.labels(["tiktok", ""]) == ["platform": "tiktok"])
    }

    @Test("composites: and, or, unless per shared group")
    func composite() {
        var rule = Rule(name: "c", kind: .composite, windowSeconds: nil, comparison: .greaterOrEqual, threshold: 1,
                        groupBy: .platform, severity: .error, expression: try! RuleExpression.parse("a and b unless c"))
        rule.groupBy = .platform
        let inputs: [String: [Composites.InputGroup]] = [
            "a": [.init(labels: ["platform": "tiktok", "endpoint": "/x"], status: .firing),
                  .init(labels: ["platform": "instagram"], status: .firing)],
            "b": [.init(labels: ["platform": "tiktok"], status: .acknowledged), .init(labels: ["platform": "instagram"], status: .firing),
                  .init(labels: ["platform": "youtube"], status: .firing)],
            "c": [.init(labels: ["platform": "instagram"], status: .firing), .init(labels: ["platform": "tiktok"], status: .pending)],
        ]
        let out = Composites.evaluate(rule, inputs: inputs)
        #expect(out["tiktok"]?.holds == true)
        #expect(out["instagram"]?.holds == false)
        #expect(out["youtube"]?.holds == false)
        #expect(out["tiktok"]?.inputs == ["a": "firing", "b": "acknowledged", "c": "pending"])
    }

    @Test("an SLO burn-rate backtest over a hand-built history: the transitions computed by hand")
    func sloBacktest() throws {
        // 99 % objective (budget 1 %). Traffic: 100 events a minute, 1 % bad,
        // from 09:00; from 10:00 to 10:30, 20 % bad (burn rate 20).
        let result = parse("""
            rules:
              - name: upload_slo
                kind: slo
                good: [upload.success]
                total: [upload.success, upload.failure]
                objective: 0.99
                interval: 5m
                burn_rates:
                  - {severity: critical, factor: 14.4, long: 1h, short: 5m}
                  - {severity: error, factor: 6, long: 6h, short: 30m}
            """)
        let rule = try #require(result.rules.first, "\(result.problems)")
        let t0 = RFC3339.parse("2026-11-28T09:00:00Z")!
        var events: [RuleMath.Point] = []
        for minute in 0..<180 {
            let bad = (60..<90).contains(minute) ? 20 : 1
            for k in 0..<100 {
                let t = t0.addingTimeInterval(Double(minute * 60) + Double(k) * 0.5)
                events.append(RuleMath.Point(time: t, name: k < bad ? "upload.failure" : "upload.success", platform: nil, value: 1))
            }
        }
        let run = Backtest.run(rule, points: events, range: TimeRange(since: t0 + 3600, until: t0 + 3 * 3600))
        // By hand, at each step T (every 5 min from 10:00), over [T - w, T):
        // critical (1h and 5m above 14.4): the 1h window holds at most the 30
        // bad minutes, (30·20 + 30·1)/6000 = 10.5 % → burn 10.5: never.
        // error (6h and 30m above 6): the 6h window reaches back to 09:00, so
        // with n minutes since 09:00, b of them bad: burn (n + 19b)/n.
        //   10:20: (80 + 380)/80 = 5.75          → below 6
        //   10:25: (85 + 475)/85 = 6.588; 30m: (5 + 25·20)/3000 → 16.83: fires
        //   10:50: (110 + 570)/110 = 6.18 > 6: still firing
        //   10:55: (115 + 570)/115 = 5.96 ≤ 6: resolves
        let steps = run.steps.map { "\(RFC3339.format($0.at).prefix(16)) \($0.groupKey) \($0.transition.rawValue)" }
        #expect(steps == ["2026-11-28T10:25 error fired", "2026-11-28T10:55 error resolved"], "\(steps)")
        let fired = try #require(run.steps.first)
        #expect(fired.severity == .error)
        #expect(abs((fired.value ?? 0) - 6.588235294) < 1e-6)
        #expect(fired.evidence?.burnRates?["30m"].map { abs($0 - 16.8333333) < 1e-4 } == true)
        #expect(fired.evidence?.condition == "burn rate > 6.0 over 6h/30m")
    }

    @Test("the backtest's max_groups bound fails steps like the worker would")
    func maxGroups() {
        var rule = Rule(name: "r", kind: .count, metric: "api.call", windowSeconds: 60, threshold: 0, groupBy: ["endpoint"],
                        severity: .error, maxGroups: 2)
        rule.intervalSeconds = 60
        let events = (0..<3).map { point("api.call", 10, nil, ["endpoint": "/\($0)"]) }
        let run = Backtest.run(rule, points: events, range: TimeRange(since: Date(timeIntervalSince1970: 60),
                                                                          until: Date(timeIntervalSince1970: 180)))
        #expect(run.tooManyGroups == 1 && run.steps.isEmpty)
        rule.maxGroups = 3
        let allowed = Backtest.run(rule, points: events, range: TimeRange(since: Date(timeIntervalSince1970: 60),
                                                                              until: Date(timeIntervalSince1970: 180)))
        #expect(allowed.tooManyGroups == 0 && allowed.steps.filter { $0.transition == .fired }.count == 3)
        #expect(Set(allowed.steps.map(\.groupKey)) == ["endpoint=/0", "endpoint=/1", "endpoint=/2"])
    }
}
