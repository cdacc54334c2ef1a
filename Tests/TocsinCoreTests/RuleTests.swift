import Foundation
import Testing
import TocsinCore

/// The default rules, read from the shipped file.
func defaultRules() throws -> [String: Rule] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("rules/default.yaml")
    let result = RuleFile.parse(yaml: try String(contentsOf: url, encoding: .utf8))
    #expect(result.problems.isEmpty, "\(result.problems)")
    return Dictionary(uniqueKeysWithValues: result.rules.map { ($0.name, $0) })
}

func points(_ name: String, _ count: Int, platform: String? = nil, value: Double = 1, at time: Date = 100) -> [RuleMath.Point] {
    (0..<count).map { RuleMath.Point(time: time + Double($0) * 0.001, name: name, platform: platform, value: value) }
}

@Suite("Rule math on hand-built data")
struct RuleMathTests {
    @Test("the four default rules are exactly the product's")
    func defaults() throws {
        let rules = try defaultRules()
        #expect(rules.keys.sorted() == ["high_error_rate", "high_webhook_latency", "oauth_failures", "token_refresh_failures"])
        let errorRate = try #require(rules["high_error_rate"])
        #expect(errorRate.kind == .ratio && errorRate.severity == .error && errorRate.groupBy == .platform)
        #expect(errorRate.numerator == ["upload.failure"] && errorRate.denominator == ["upload.success", "upload.failure"])
        #expect(errorRate.threshold == 0.05 && errorRate.minSamples == 10 && errorRate.windowSeconds == 900)
        let token = try #require(rules["token_refresh_failures"])
        #expect(token.kind == .count && token.severity == .critical && token.threshold == 3 && token.metric == "token.refresh.failure")
        let latency = try #require(rules["high_webhook_latency"])
        #expect(latency.kind == .aggregate && latency.function == .avg && latency.lastEvents == 50 && latency.threshold == 5)
        #expect(latency.severity == .warning && latency.windowSeconds == nil)
        let oauth = try #require(rules["oauth_failures"])
        #expect(oauth.kind == .count && oauth.groupBy == .platform && oauth.threshold == 5 && oauth.severity == .error)
        for rule in rules.values {
            #expect(rule.intervalSeconds == 60)
            #expect(rule.forSeconds == 0)
            #expect(rule.noData == .keep)
        }
    }

    @Test("high_error_rate: exactly 5 % does not fire, above does; 9 attempts never fire")
    func errorRate() throws {
        let rule = try #require(try defaultRules()["high_error_rate"])
        func value(success: Int, failure: Int) -> RuleMeasurement? {
            RuleMath.measure(rule, points: points("upload.success", success, platform: "tiktok")
                                 + points("upload.failure", failure, platform: "tiktok"), now: 200)["tiktok"]
        }
        let exactly5 = try #require(value(success: 95, failure: 5))
        #expect(exactly5.value == 0.05 && exactly5.samples == 100)
        #expect(!rule.breaches(exactly5.value!))
        let above = try #require(value(success: 94, failure: 6))
        #expect(rule.breaches(above.value!))
        let nine = try #require(value(success: 0, failure: 9))
        #expect(nine.value == nil && nine.samples == 9)
        #expect(AlertStateMachine.decide(rule: rule, open: nil, measurement: nine, now: 200) == .none)
        let ten = try #require(value(success: 0, failure: 10))
        #expect(AlertStateMachine.decide(rule: rule, open: nil, measurement: ten, now: 200) == .open(.firing))
    }

    @Test("token_refresh_failures: 4 fire, 3 do not")
    func tokenFailures() throws {
        let rule = try #require(try defaultRules()["token_refresh_failures"])
        let three = RuleMath.measure(rule, points: points("token.refresh.failure", 3), now: 200)[""]!
        let four = RuleMath.measure(rule, points: points("token.refresh.failure", 4), now: 200)[""]!
        #expect(AlertStateMachine.decide(rule: rule, open: nil, measurement: three, now: 200) == .none)
        #expect(AlertStateMachine.decide(rule: rule, open: nil, measurement: four, now: 200) == .open(.firing))
        // Events outside the 15-minute window do not count.
        let old = RuleMath.measure(rule, points: points("token.refresh.failure", 4, at: 100), now: 100 + 901)
        #expect(old.isEmpty)
        #expect(RuleMath.empty(rule) == RuleMeasurement(value: 0, samples: 0))
    }

    @Test("high_webhook_latency averages the last 50 events only")
    func webhookLatency() throws {
        let rule = try #require(try defaultRules()["high_webhook_latency"])
        // 100 slow events long ago, then 50 fast ones: only the last 50 count.
        let slow = points("webhook.latency", 100, value: 20, at: 1000)
        let fast = points("webhook.latency", 50, value: 1, at: 2000)
        let m = RuleMath.measure(rule, points: slow + fast, now: 3000)[""]!
        #expect(m.value == 1 && m.samples == 50)
        let mixed = RuleMath.measure(rule, points: points("webhook.latency", 49, value: 5, at: 1000)
                                     + points("webhook.latency", 1, value: 5.5, at: 2000), now: 3000)[""]!
        #expect(mixed.samples == 50)
        #expect(rule.breaches(mixed.value!))  // 5.01 > 5
        let exactly = RuleMath.measure(rule, points: points("webhook.latency", 50, value: 5), now: 3000)[""]!
        #expect(!rule.breaches(exactly.value!))
    }

    @Test("oauth_failures groups per platform: 6 on tiktok fire, 5 on instagram do not")
    func perPlatform() throws {
        let rule = try #require(try defaultRules()["oauth_failures"])
        let measured = RuleMath.measure(rule, points: points("oauth.failure", 6, platform: "tiktok")
                                        + points("oauth.failure", 5, platform: "instagram") + points("oauth.failure", 2), now: 200)
        #expect(measured["tiktok"]?.value == 6)
        #expect(measured["instagram"]?.value == 5)
        #expect(measured[""]?.value == 2)
        #expect(rule.breaches(measured["tiktok"]!.value!))
        #expect(!rule.breaches(measured["instagram"]!.value!))
    }

    @Test("aggregate functions, p95 as percentile_cont")
    func aggregates() {
        var values = (1...100).map(Double.init)
        #expect(RuleMath.aggregate(.p95, &values) == 95.05)
        var small = [3.0, 1, 2]
        #expect(RuleMath.aggregate(.avg, &small) == 2)
        #expect(RuleMath.aggregate(.max, &small) == 3)
        #expect(RuleMath.aggregate(.min, &small) == 1)
        #expect(RuleMath.aggregate(.sum, &small) == 6)
        var one = [7.0]
        #expect(RuleMath.aggregate(.p95, &one) == 7)
        var none: [Double] = []
        #expect(RuleMath.aggregate(.avg, &none) == nil)
    }
}

@Suite("Alert state machine")
struct StateMachineTests {
    let base = Rule(name: "r", kind: .count, metric: "m", threshold: 3)

    func m(_ value: Double?) -> RuleMeasurement { RuleMeasurement(value: value, samples: value == nil ? 0 : 1) }

    @Test("for: pending until the condition has held long enough")
    func forDuration() {
        var rule = base
        rule.forSeconds = 120
        #expect(AlertStateMachine.decide(rule: rule, open: nil, measurement: m(4), now: 0) == .open(.pending))
        let pending = OpenAlert(id: 1, status: .pending, startedAt: 0)
        #expect(AlertStateMachine.decide(rule: rule, open: pending, measurement: m(4), now: 60) == .keep)
        #expect(AlertStateMachine.decide(rule: rule, open: pending, measurement: m(4), now: 120) == .fire)
        // Clearing before `for` ends closes the pending alert without firing.
        #expect(AlertStateMachine.decide(rule: rule, open: pending, measurement: m(2), now: 60) == .resolve(.auto))
    }

    @Test("hysteresis: stays firing until the recovery threshold is crossed")
    func hysteresis() {
        var rule = base
        rule.threshold = 10
        rule.recoveryThreshold = 5
        let firing = OpenAlert(id: 1, status: .firing, startedAt: 0)
        #expect(AlertStateMachine.decide(rule: rule, open: nil, measurement: m(8), now: 0) == .none)
        #expect(AlertStateMachine.decide(rule: rule, open: firing, measurement: m(8), now: 60) == .keep)
        #expect(AlertStateMachine.decide(rule: rule, open: firing, measurement: m(5.5), now: 60) == .keep)
        #expect(AlertStateMachine.decide(rule: rule, open: firing, measurement: m(5), now: 60) == .resolve(.auto))
        // An acknowledged alert resolves the same way.
        let acked = OpenAlert(id: 1, status: .acknowledged, startedAt: 0)
        #expect(AlertStateMachine.decide(rule: rule, open: acked, measurement: m(4), now: 60) == .resolve(.auto))
    }

    @Test("< rules fire on low values")
    func lowerIsWorse() {
        var rule = base
        rule.comparison = .less
        rule.threshold = 0.9
        rule.recoveryThreshold = 0.95
        #expect(AlertStateMachine.decide(rule: rule, open: nil, measurement: m(0.8), now: 0) == .open(.firing))
        let firing = OpenAlert(id: 1, status: .firing, startedAt: 0)
        #expect(AlertStateMachine.decide(rule: rule, open: firing, measurement: m(0.92), now: 0) == .keep)
        #expect(AlertStateMachine.decide(rule: rule, open: firing, measurement: m(0.96), now: 0) == .resolve(.auto))
    }

    @Test("no_data policies: keep, resolve, alert")
    func noData() {
        let firing = OpenAlert(id: 1, status: .firing, startedAt: 0)
        var rule = base
        rule.noData = .keep
        #expect(AlertStateMachine.decide(rule: rule, open: firing, measurement: .noData, now: 0) == .keep)
        #expect(AlertStateMachine.decide(rule: rule, open: nil, measurement: .noData, now: 0) == .none)
        rule.noData = .resolve
        #expect(AlertStateMachine.decide(rule: rule, open: firing, measurement: .noData, now: 0) == .resolve(.noData))
        #expect(AlertStateMachine.decide(rule: rule, open: nil, measurement: .noData, now: 0) == .none)
        rule.noData = .alert
        #expect(AlertStateMachine.decide(rule: rule, open: nil, measurement: .noData, now: 0) == .open(.firing))
        #expect(AlertStateMachine.decide(rule: rule, open: firing, measurement: .noData, now: 0) == .keep)
        // When data returns and is fine, the no-data alert resolves.
        #expect(AlertStateMachine.decide(rule: rule, open: firing, measurement: m(1), now: 0) == .resolve(.auto))
    }
}

@Suite("Rules files")
struct RuleFileTests {
    @Test("problems name the line, rule and field")
    func problems() {
        let yaml = """
            rules:
              - name: good_rule
                kind: count
                metric: upload.failure
                threshold: 3
                severity: error
              - name: bad_rule
                kind: ratio
                numerator: [Upload.Failure]
                denominator: upload.success
                threshold: lots
                severity: fatal
                window: 15 minutes
                colour: red
              - name: good_rule
                kind: count
                metric: a
                threshold: 1
                severity: warning
            """
        let result = RuleFile.parse(yaml: yaml)
        #expect(result.rules.isEmpty)
        func find(_ field: String) -> RuleProblem? { result.problems.first { $0.field == field } }
        #expect(find("numerator")?.line == 9)
        #expect(find("numerator")?.rule == "bad_rule")
        #expect(find("threshold")?.line == 11)
        #expect(find("severity")?.message.contains("warning, error, critical") == true)
        #expect(find("window")?.line == 13)
        #expect(find("colour")?.line == 14)
        #expect(find("colour")?.rule == "bad_rule")
        #expect(result.problems.contains { $0.field == "name" && $0.message.contains("duplicate") && $0.line == 15 })
        #expect(find("severity")?.description.hasPrefix("line 12, rule bad_rule, field severity: ") == true)
    }

    @Test("every numeric field has a range, reported with the field", arguments: [
        ("window", "32d"), ("window", "106751991167301d"), ("window", "0s"), ("for", "8d"), ("interval", "2d"),
        ("threshold", "1e300"), ("threshold", "-2e12"), ("threshold", ".inf"), ("min_samples", "1000001"),
        ("min_samples", "99999999999999999999"),
    ])
    func ranges(field: String, value: String) {
        let yaml = """
            rules:
              - name: bounded
                kind: ratio
                numerator: [upload.failure]
                denominator: [upload.success]
                threshold: \(field == "threshold" ? value : "1")
                severity: error
            \(field == "threshold" ? "" : "    \(field): \(value)")
            """
        let result = RuleFile.parse(yaml: yaml)
        #expect(result.rules.isEmpty)
        #expect(result.problems.map(\.field) == [field], "\(result.problems)")
    }

    @Test("last is bounded: at most 10,000 events")
    func lastBound() {
        let yaml = """
            rules:
              - name: bounded
                kind: aggregate
                metric: webhook.latency
                function: avg
                last: 10001
                threshold: 1
                severity: error
            """
        #expect(RuleFile.parse(yaml: yaml).problems.map(\.field) == ["last"])
    }

    @Test("kind-specific fields and hysteresis direction are checked")
    func kinds() {
        func problems(_ body: String) -> [RuleProblem] {
            RuleFile.parse(yaml: "rules:\n  - name: r\n    severity: error\n    threshold: 5\n" + body).problems
        }
        #expect(problems("    kind: aggregate\n    metric: a\n").contains { $0.field == "function" })
        #expect(problems("    kind: aggregate\n    metric: a\n    function: avg\n    last: 5\n    window: 5m\n").contains { $0.field == "window" })
        #expect(problems("    kind: count\n    metric: a\n    function: avg\n").contains { $0.field == "function" })
        #expect(problems("    kind: count\n    metric: a\n    recovery_threshold: 6\n").contains { $0.field == "recovery_threshold" })
        #expect(problems("    kind: count\n    metric: a\n    recovery_threshold: 4\n    for: 2m\n    no_data: alert\n").isEmpty)
        #expect(problems("    kind: count\n    metric: a\n    runbook_url: ftp://x\n").contains { $0.field == "runbook_url" })
        #expect(RuleFile.parse(yaml: "rules:\n  - name: backtest\n    kind: count\n    metric: a\n    threshold: 1\n    severity: error\n")
            .problems.first?.message.contains("reserved") == true)
        #expect(RuleFile.parse(yaml: "rules: [\n").problems.first?.message.hasPrefix("not valid YAML") == true)
        #expect(RuleFile.parse(yaml: "- a\n").problems.count == 1)
    }

    @Test("durations")
    func durations() {
        #expect(DurationText.parse("90s") == 90)
        #expect(DurationText.parse("15m") == 900)
        #expect(DurationText.parse("4h") == 14_400)
        #expect(DurationText.parse("1d") == 86_400)
        #expect(DurationText.parse("30") == 30)
        #expect(DurationText.parse("15 minutes") == nil)
        #expect(DurationText.parse("-5m") == nil)
        // Amounts whose seconds would overflow Int, or exceed ten years, are not durations.
        #expect(DurationText.parse("106751991167301d") == nil)
        #expect(DurationText.parse("9223372036854775807s") == nil)
        #expect(DurationText.parse("99999999999999999999999m") == nil)
        #expect(DurationText.parse("3661d") == nil)
        #expect(DurationText.parse("3660d") == 3660 * 86_400)
        #expect(DurationText.format(14_400) == "4h")
    }
}

@Suite("Backtests")
struct BacktestTests {
    @Test("a hand-built history gives the expected firing and resolving times")
    func history() throws {
        var rule = try #require(try defaultRules()["token_refresh_failures"])
        rule.intervalSeconds = 60
        // 4 failures at 10:00:30 → the evaluation at 10:01 fires; the window
        // (15 min) lets them go at 10:15:30 → the evaluation at 10:16 resolves.
        let t0 = RFC3339.parse("2026-11-28T10:00:00Z")!
        let events = points("token.refresh.failure", 4, at: t0 + 30)
        let result = Backtest.run(rule, points: events, range: TimeRange(since: t0, until: t0 + 3600))
        #expect(result.evaluations == 60)
        #expect(result.steps.map(\.transition) == [.fired, .resolved])
        #expect(result.steps[0].at == t0 + 60)
        #expect(result.steps[1].at == t0 + 16 * 60)
        #expect(result.alerts == [Backtest.SimulatedAlert(groupKey: "", startedAt: t0 + 60, firedAt: t0 + 60,
                                                           resolvedAt: t0 + 960, resolution: .auto, worstValue: 4)])
    }
}

@Suite("Latency histograms")
struct LatencyHistogramTests {
    @Test("buckets are 10 % wide and the p95 estimate is within 5 %")
    func estimate() {
        #expect(LatencyHistogram.bucket(0.0005) == 0)
        #expect(LatencyHistogram.bucket(0.001) == 0)
        #expect(LatencyHistogram.bucket(0.0011) == 1)
        #expect(LatencyHistogram.bucket(1e9) == LatencyHistogram.bucketCount - 1)
        // Total for every Double: nothing traps the conversion to Int.
        #expect(LatencyHistogram.bucket(1e306) == LatencyHistogram.bucketCount - 1)
        #expect(LatencyHistogram.bucket(.greatestFiniteMagnitude) == LatencyHistogram.bucketCount - 1)
        #expect(LatencyHistogram.bucket(.infinity) == LatencyHistogram.bucketCount - 1)
        #expect(LatencyHistogram.bucket(.nan) == 0)
        #expect(LatencyHistogram.bucket(-.infinity) == 0)
        for spread in [1.001, 1.0003, 1.01] {
            var values = (0..<5000).map { 0.005 * pow(spread, Double($0 % 1000)) }
            values.sort()
            var counts = Array(repeating: 0, count: LatencyHistogram.bucketCount)
            for v in values { counts[LatencyHistogram.bucket(v)] += 1 }
            let exact = RuleMath.percentileCont(sorted: values, 0.95)!
            let estimate = LatencyHistogram.percentile(counts, fraction: 0.95, min: values.first!, max: values.last!)!
            #expect(abs(estimate - exact) / exact < 0.05, "spread \(spread): \(estimate) vs \(exact)")
        }
        // One repeated value is exact (clamped to the observed range).
        var same = Array(repeating: 0, count: LatencyHistogram.bucketCount)
        same[LatencyHistogram.bucket(2)] = 40
        #expect(LatencyHistogram.percentile(same, fraction: 0.95, min: 2, max: 2) == 2)
        #expect(LatencyHistogram.percentile(Array(repeating: 0, count: 160), fraction: 0.95, min: 0, max: 0) == nil)
    }
}
