import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore

/// One event `secondsAgo` before the database's now (and at 10 000 − that
/// for the pure math, whose now is 10 000).
struct Seeded {
    var secondsAgo: Double
    var name: String
    var platform: String?
    var value: Double
    var labels: [String: String]

    var point: RuleMath.Point {
        RuleMath.Point(time: 10_000 - secondsAgo, name: name, platform: platform, value: value, labels: labels)
    }
}

func insert(_ pool: PostgresPool, _ events: [Seeded]) async throws {
    let labels = try events.map { String(decoding: try JSONEncoder().encode($0.labels), as: UTF8.self) }
    try await pool.query(
        """
        INSERT INTO metric_events (occurred_at, name, platform, value, labels)
        SELECT now() - make_interval(secs => a), n, p, v, l::jsonb
        FROM unnest(\(events.map(\.secondsAgo))::float8[], \(events.map(\.name))::text[], \(events.map(\.platform))::text[],
                    \(events.map(\.value))::float8[], \(labels)::text[]) AS t(a, n, p, v, l)
        """)
}

func evaluated(_ store: Store, _ pool: PostgresPool, _ name: String) async throws -> [String: GroupResult] {
    let outcome = try await TestEvaluator(store: store, workerID: "test").evaluate(ruleID: try await ruleID(pool, name),
                                                                                trigger: .manual, force: true)
    guard case .evaluated(let groups, _, _) = outcome else { throw NotEvaluated(rule: name) }
    return Dictionary(uniqueKeysWithValues: groups.map { ($0.groupKey ?? "", $0) })
}

@Suite("The new rule kinds in SQL agree with the pure math")
struct RuleKindSQLTests {
    /// Events with and without each label, on two platforms and none.
    static func labelledEvents() -> [Seeded] {
        let endpoints: [String?] = ["/v2/video/upload", "/v2/image/upload", "/v1/user", "/v2/a,b=c", nil]
        let media: [String?] = ["video", "image", nil, "reel"]
        let reasons: [String?] = ["user_cancelled", "quota_exceeded", nil]
        let platforms: [String?] = ["tiktok", "instagram", nil]
        var out: [Seeded] = []
        for k in 0..<240 {
            var labels: [String: String] = [:]
            if let e = endpoints[k % 5] { labels["endpoint"] = e }
            if let m = media[(k / 5) % 4] { labels["media"] = m }
            if let r = reasons[(k / 3) % 3] { labels["reason"] = r }
            let name = ["api.latency", "upload.failure", "upload.success"][k % 3]
            out.append(Seeded(secondsAgo: Double(k * 2 + 5), name: name, platform: platforms[(k / 7) % 3],
                              value: Double((k * 37) % 23) / 4, labels: labels))
        }
        return out
    }

    @Test("every accepted pattern matches in PostgreSQL exactly as in the pure matcher")
    func patterns() async throws {
        let patterns = ["/v2/.*", "^/v2/", "video|image", "(?:a|b)+c", "[a-c]{2,3}", "[^0-9]+", "\\d{3}", "\\w+", "\\s",
                        "a\\.b", "a.b", "", "x?", "[-a]", "[a\\]]", "(a*)*b", "\\D+", "a{0}", "é.", "a$", "a|", "[a\\-z]+",
                        "\\/v[12]\\/.*", "a{2,}?", "(x|y)*?z", "[\\d\\s]+", "\\W", "[\\^a]", "a\\{1\\}", "\\t\\n"]
        let values = ["", "a", "b", "c", "ab", "abc", "abcd", "ababc", "/v2/", "/v2/x", "/v1/x", "video", "videos", "image",
                      "429", "user_cancelled", " ", "a.b", "axb", "a\nb", "-", "]", "aaab", "éa", "a-z", "/v1/upload", "aaa",
                      "xyz", "1 2", "{", "a{1}", "^", "\t\n", "\u{00e9}"]
        try await withTestDatabase { db in
            try await db.withPool { pool in
                for source in patterns {
                    let pattern = try LabelPattern(source)
                    let rows = try await pool.query(
                        "SELECT v, v ~ ('^(?:' || \(pattern.postgresSource) || ')$') AS m FROM unnest(\(values)::text[]) AS v")
                    for row in rows {
                        let value: String = try row.decode("v")
                        #expect(try row.decode("m", as: Bool.self) == pattern.matches(value), "\(source) on \(value.debugDescription)")
                    }
                }
            }
        }
    }

    @Test("filters of every operator and grouping by two labels, for count, ratio, aggregate and last N")
    func filtersAndGroups() async throws {
        let yaml = """
            rules:
              - {name: video_latency, kind: aggregate, metric: api.latency, function: p95, window: 10m, threshold: 100,
                 severity: warning, group_by: [platform, endpoint],
                 where: [{label: endpoint, matches: "/v2/.*"}, {label: reason, not_equals: user_cancelled}]}
              - {name: failure_ratio, kind: ratio, numerator: upload.failure, denominator: [upload.success, upload.failure],
                 window: 10m, threshold: 0.5, severity: error, group_by: [media],
                 where: [{label: platform, in: [tiktok, instagram]}, {label: endpoint, not_matches: "/v1/[a-z]+"}]}
              - {name: cancelled, kind: count, metric: upload.failure, window: 10m, threshold: 1000, severity: error,
                 group_by: [reason, platform], where: [{label: media, present: true}, {label: reason, equals: user_cancelled}]}
              - {name: unlabelled, kind: count, metric: upload.success, window: 10m, threshold: 1000, severity: error,
                 where: [{label: media, present: false}, {label: platform, equals: ""}]}
              - {name: last_per_endpoint, kind: aggregate, metric: api.latency, function: max, last: 5, threshold: 100,
                 severity: warning, group_by: [endpoint], where: [{label: media, in: [video, reel]}]}
              - {name: sum_by_media, kind: aggregate, metric: api.latency, function: sum, window: 10m, threshold: 1000,
                 severity: warning, group_by: media, where: [{label: endpoint, matches: "/v2/(video|image)/upload|/v1/\\\\w+"}]}
            """
        let parsed = RuleFile.parse(yaml: yaml)
        #expect(parsed.problems.isEmpty, "\(parsed.problems)")
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(parsed.rules, appliedBy: "test", source: "test")
                let events = Self.labelledEvents()
                try await insert(pool, events)
                for rule in parsed.rules {
                    let sql = try await evaluated(store, pool, rule.name)
                    let math = RuleMath.measure(rule, points: events.map(\.point), now: 10_000)
                    #expect(!math.isEmpty, "\(rule.name): the seeded data should give it groups")
                    #expect(Set(sql.keys) == Set(math.keys), "\(rule.name): \(sql.keys.sorted()) vs \(math.keys.sorted())")
                    for (key, want) in math {
                        let got = try #require(sql[key], "\(rule.name) \(key)")
                        #expect(got.samples == want.samples, "\(rule.name) \(key)")
                        #expect(abs((got.value ?? -1) - (want.value ?? -1)) < 1e-9, "\(rule.name) \(key)")
                    }
                }
                // Alerts carry their group's labels, and the evidence the filter.
                try await pool.query("UPDATE alert_rules SET definition = jsonb_set(definition, '{threshold}', '0') WHERE name = 'video_latency'")
                _ = try await evaluated(store, pool, "video_latency")
                let alert = try await pool.query(
                    """
                    SELECT a.group_key, a.platform, a.labels::text AS labels, e.evidence::text AS evidence
                    FROM alerts a JOIN alert_events e ON e.alert_id = a.id
                    WHERE a.rule_name = 'video_latency' AND a.group_key = 'platform=tiktok,endpoint=/v2/a\\,b\\=c'
                    """)
                let row = try #require(alert.first)
                #expect(try row.decode("platform", as: String?.self) == "tiktok")
                #expect(try EvaluationJSON.labels(row.decode("labels")) == ["platform": "tiktok", "endpoint": "/v2/a,b=c"])
                let evidence = try JSONDecoder().decode(Evidence.self, from: Data(try row.decode("evidence", as: String.self).utf8))
                #expect(evidence.filter == #"endpoint =~ "/v2/.*", reason != "user_cancelled""#)
                #expect(evidence.group == ["platform": "tiktok", "endpoint": "/v2/a,b=c"])
            }
        }
    }

    @Test("last N per platform, its scans bounded by the hourly rollups (or not, with label matchers), agrees with the pure math across hours")
    func lastPerPlatform() async throws {
        let parsed = RuleFile.parse(yaml: """
            rules:
              - {name: last20, kind: aggregate, metric: webhook.latency, function: avg, last: 20, lookback: 4h, threshold: 100,
                 severity: warning, group_by: platform}
              - {name: last200, kind: aggregate, metric: webhook.latency, function: max, last: 200, lookback: 4h, threshold: 100,
                 severity: warning, group_by: platform}
              - {name: last500, kind: aggregate, metric: webhook.latency, function: p95, last: 500, lookback: 4h, threshold: 100,
                 severity: warning, group_by: platform}
              - {name: last30_filtered, kind: aggregate, metric: webhook.latency, function: sum, last: 30, lookback: 4h,
                 threshold: 100, severity: warning, group_by: platform, where: [{label: endpoint, equals: /hook}]}
              - {name: last40_platforms, kind: aggregate, metric: webhook.latency, function: min, last: 40, lookback: 4h,
                 threshold: 100, severity: warning, group_by: platform, where: [{label: platform, not_equals: youtube}]}
            """)
        #expect(parsed.problems.isEmpty, "\(parsed.problems)")
        var events: [Seeded] = []
        // tiktok: one event every 50 s for 6 hours (the lookback holds 288 of them);
        // instagram: a few, hours apart; no platform: one every 10 minutes;
        // youtube: only before the lookback.
        for k in 0..<432 {
            events.append(Seeded(secondsAgo: 20 + Double(k) * 50, name: "webhook.latency", platform: "tiktok",
                                 value: Double(k % 17), labels: k % 3 == 0 ? ["endpoint": "/hook"] : [:]))
        }
        for hoursAgo in [0.2, 1.5, 2.5, 3.9, 4.5] {
            events.append(Seeded(secondsAgo: hoursAgo * 3600, name: "webhook.latency", platform: "instagram",
                                 value: hoursAgo * 10, labels: ["endpoint": "/hook"]))
        }
        for k in 0..<30 {
            events.append(Seeded(secondsAgo: 300 + Double(k) * 600, name: "webhook.latency", platform: nil,
                                 value: Double(k), labels: [:]))
        }
        events.append(Seeded(secondsAgo: 5 * 3600, name: "webhook.latency", platform: "youtube", value: 1, labels: [:]))
        events.append(Seeded(secondsAgo: 60, name: "api.latency", platform: "tiktok", value: 999, labels: [:]))
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(parsed.rules, appliedBy: "test", source: "test")
                try await insert(pool, events)
                try await pool.query("SELECT tocsin_rebuild_rollups('-infinity', 'infinity')")
                for rule in parsed.rules {
                    let sql = try await evaluated(store, pool, rule.name)
                    let math = RuleMath.measure(rule, points: events.map(\.point), now: 10_000)
                    #expect(Set(sql.keys) == Set(math.keys), "\(rule.name): \(sql.keys.sorted()) vs \(math.keys.sorted())")
                    #expect(math["youtube"] == nil && math["tiktok"] != nil && math["instagram"] != nil)
                    for (key, want) in math {
                        let got = try #require(sql[key], "\(rule.name) \(key)")
                        #expect(got.samples == want.samples, "\(rule.name) \(key)")
                        #expect(abs((got.value ?? -1) - (want.value ?? -1)) < 1e-9, "\(rule.name) \(key)")
                    }
                }
            }
        }
    }

    @Test("SLO burn rates and budget: rollups for whole hours and events for the partial ones give the exact counts")
    func sloBurnRates() async throws {
        let yaml = """
            rules:
              - name: upload_slo
                kind: slo
                good: [upload.success]
                total: [upload.success, upload.failure]
                objective: 0.99
                period: 1d
                group_by: platform
                where: [{label: platform, not_equals: instagram}]
                burn_rates:
                  - {severity: critical, factor: 14.4, long: 1h, short: 5m}
                  - {severity: error, factor: 6, long: 6h, short: 30m}
                  - {severity: warning, factor: 1, long: 20h, short: 2h}
            """
        let parsed = RuleFile.parse(yaml: yaml)
        let rule = try #require(parsed.rules.first, "\(parsed.problems)")
        let edges: [Double] = [300, 1800, 3600, 7200, 21_600, 72_000, 86_400]
        var events: [Seeded] = []
        var k = 0
        var t = 7.0
        while t < 90_000 {
            // Keep clear of the windows' edges: the database's now moves on a little.
            if !edges.contains(where: { abs($0 - t) < 5 }) {
                let platform = ["tiktok", nil, "instagram", "tiktok"][k % 4]
                let bad = (k % 13 == 0) || (t < 2000 && k % 3 == 0)
                events.append(Seeded(secondsAgo: t, name: bad ? "upload.failure" : "upload.success", platform: platform,
                                     value: 1, labels: [:]))
            }
            k += 1
            t += t < 4000 ? 11 : 97
        }
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(parsed.rules, appliedBy: "test", source: "test")
                try await insert(pool, events)
                try await pool.query("SELECT tocsin_rebuild_rollups('-infinity', 'infinity')")
                let sql = try await evaluated(store, pool, "upload_slo")
                let counts = RuleMath.sloCounts(rule, points: events.map(\.point), now: 10_000)
                let math = RuleMath.sloGroups(rule, counts: counts, labels: ["tiktok": ["platform": "tiktok"], "": [:]])
                #expect(Set(sql.keys) == Set(math.keys), "\(sql.keys.sorted()) vs \(math.keys.sorted())")
                #expect(Set(sql.keys) == ["tiktok/critical", "tiktok/error", "tiktok/warning", "critical", "error", "warning"])
                for (key, want) in math {
                    let got = try #require(sql[key])
                    #expect(got.samples == want.measurement.samples, "\(key)")
                    #expect(abs((got.value ?? -1) - (want.measurement.value ?? -1)) < 1e-9, "\(key)")
                    #expect(got.evidence?.burnRates?.keys.sorted() == want.evidence?.burnRates?.keys.sorted())
                    for (window, rate) in want.evidence?.burnRates ?? [:] {
                        #expect(abs((got.evidence?.burnRates?[window] ?? -1) - rate) < 1e-9, "\(key) \(window)")
                    }
                    #expect(abs((got.evidence?.budgetRemaining ?? -9) - (want.evidence?.budgetRemaining ?? -8)) < 1e-9, "\(key)")
                }
                // The period's counts (the budget) are reused for 10 minutes, then counted again;
                // the burn rates are counted at every evaluation.
                let budget = try #require(sql["tiktok/critical"]?.evidence?.budgetRemaining)
                try await insert(pool, (0..<50).map { Seeded(secondsAgo: 80_000 + Double($0), name: "upload.failure",
                                                            platform: "tiktok", value: 1, labels: [:]) })
                try await pool.query("SELECT tocsin_rebuild_rollups('-infinity', 'infinity')")
                #expect(try await evaluated(store, pool, "upload_slo")["tiktok/critical"]?.evidence?.budgetRemaining == budget)
                try await pool.query("UPDATE alert_rules SET slo_period_counted_at = now() - interval '11 minutes'")
                let recounted = try await evaluated(store, pool, "upload_slo")["tiktok/critical"]?.evidence?.budgetRemaining
                #expect((recounted ?? 1) < budget)

                // The short windows burn hard (a third of the recent events fail): the critical
                // burn rate fires; its alert has the critical severity and the factor as threshold.
                let firing = try await pool.query(
                    "SELECT group_key, severity, threshold FROM alerts WHERE rule_name = 'upload_slo' AND status = 'firing' ORDER BY 1")
                let keys = try firing.map { try $0.decode("group_key", as: String.self) }
                #expect(keys.contains("tiktok/critical"), "\(keys)")
                for row in firing {
                    let key: String = try row.decode("group_key")
                    #expect(try row.decode("severity", as: String.self) == String(key.split(separator: "/").last!))
                }
            }
        }
    }

    @Test("composites: and, or, unless over inputs' alerts per shared group, after their inputs")
    func composites() async throws {
        let yaml = """
            rules:
              - {name: errors, kind: count, metric: upload.failure, window: 10m, threshold: 2, severity: error, group_by: platform,
                 interval: 1d}
              - {name: slow, kind: aggregate, metric: api.latency, function: max, window: 10m, threshold: 5, severity: warning,
                 group_by: [platform, endpoint], interval: 1d}
              - {name: both, kind: composite, expression: errors and slow, severity: critical}
              - {name: errors_only, kind: composite, expression: errors unless slow, severity: error}
              - {name: either, kind: composite, expression: (errors or slow), severity: warning, for: 1h}
            """
        let parsed = RuleFile.parse(yaml: yaml)
        #expect(parsed.problems.isEmpty, "\(parsed.problems)")
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(parsed.rules, appliedBy: "test", source: "test")
                try await insert(pool, [
                    Seeded(secondsAgo: 30, name: "upload.failure", platform: "tiktok", value: 1, labels: [:]),
                    Seeded(secondsAgo: 31, name: "upload.failure", platform: "tiktok", value: 1, labels: [:]),
                    Seeded(secondsAgo: 32, name: "upload.failure", platform: "tiktok", value: 1, labels: [:]),
                    Seeded(secondsAgo: 30, name: "upload.failure", platform: "instagram", value: 1, labels: [:]),
                    Seeded(secondsAgo: 31, name: "upload.failure", platform: "instagram", value: 1, labels: [:]),
                    Seeded(secondsAgo: 32, name: "upload.failure", platform: "instagram", value: 1, labels: [:]),
                    Seeded(secondsAgo: 30, name: "api.latency", platform: "tiktok", value: 9, labels: ["endpoint": "/x"]),
                    Seeded(secondsAgo: 30, name: "api.latency", platform: "tiktok", value: 1, labels: ["endpoint": "/y"]),
                    Seeded(secondsAgo: 30, name: "api.latency", platform: "youtube", value: 9, labels: ["endpoint": "/x"]),
                ])
                // Everything due: the composites wait until their inputs are no longer due (a
                // one-day interval keeps an evaluated input from being due again meanwhile).
                try await pool.query("UPDATE alert_rules SET next_due_at = now() - interval '1 second'")
                #expect(Set(try await store.rules.due(limit: 100).due.map(\.name)) == ["errors", "slow"])
                _ = try await TestEvaluator(store: store, workerID: "t").evaluate(ruleID: try await ruleID(pool, "errors"), trigger: .schedule)
                #expect(Set(try await store.rules.due(limit: 100).due.map(\.name)) == ["slow"])
                // A composite still waiting is not due inside its transaction either.
                #expect(try await TestEvaluator(store: store, workerID: "t").evaluate(ruleID: try await ruleID(pool, "both"),
                                                                                       trigger: .schedule) == .notDue)
                _ = try await TestEvaluator(store: store, workerID: "t").evaluate(ruleID: try await ruleID(pool, "slow"), trigger: .schedule)
                #expect(Set(try await store.rules.due(limit: 100).due.map(\.name)) == ["both", "errors_only", "either"])
                // An input due only after the composite (its next interval, or pulled forward by
                // events) does not hold the composite back: a lagging system cannot starve it.
                try await pool.query("UPDATE alert_rules SET next_due_at = now() WHERE name = 'errors'")
                #expect(Set(try await store.rules.due(limit: 100).due.map(\.name)) == ["errors", "both", "errors_only", "either"])
                try await pool.query("UPDATE alert_rules SET next_due_at = now() + interval '1 day' WHERE name = 'errors'")

                // The inputs' alerts, read back, give the pure math's answer.
                var inputs: [String: [Composites.InputGroup]] = [:]
                for row in try await pool.query("SELECT rule_name, labels::text AS labels, status FROM alerts WHERE status <> 'resolved'") {
                    inputs[try row.decode("rule_name"), default: []].append(.init(
                        labels: try EvaluationJSON.labels(row.decode("labels")), status: try row.decode("status")))
                }
                #expect(inputs["errors"]?.count == 2 && inputs["slow"]?.count == 2)
                for rule in parsed.rules where rule.kind == .composite {
                    let sql = try await evaluated(store, pool, rule.name)
                    let math = Composites.evaluate(rule, inputs: inputs)
                    #expect(Set(sql.keys) == Set(math.keys), "\(rule.name)")
                    for (key, want) in math {
                        #expect(sql[key]?.value == (want.holds ? 1 : 0), "\(rule.name) \(key)")
                        #expect(sql[key]?.evidence?.inputs == want.inputs, "\(rule.name) \(key)")
                    }
                }
                let open = try await openAlerts(pool).filter { ["both", "errors_only", "either"].contains($0.0) }
                #expect(open.map { "\($0.0)/\($0.1)/\($0.2)" } == [
                    "both/tiktok/firing", "either/instagram/pending", "either/tiktok/pending", "either/youtube/pending",
                    "errors_only/instagram/firing",
                ])
                let evidence: String = try await pool.query(
                    """
                    SELECT e.evidence::text AS evidence FROM alert_events e JOIN alerts a ON a.id = e.alert_id
                    WHERE a.rule_name = 'both'
                    """)[0].decode("evidence")
                let decoded = try JSONDecoder().decode(Evidence.self, from: Data(evidence.utf8))
                #expect(decoded.inputs == ["errors": "firing", "slow": "firing"] && decoded.expression == "errors and slow")
                #expect(decoded.group == ["platform": "tiktok"])
            }
        }
    }

    @Test("routes and silences match an alert's group labels; its payload carries them")
    func routingOnGroupLabels() async throws {
        let rules = RuleFile.parse(yaml: """
            rules:
              - {name: per_endpoint, kind: count, metric: api.call, window: 10m, threshold: 0, severity: error,
                 group_by: [platform, endpoint], labels: {team: api}}
            """).rules
        let notify = try #require(NotifyConfigFile.parse(yaml: """
            channels:
              - {name: uploads, kind: webhook, url_env: UPLOADS_URL}
              - {name: everything, kind: webhook, url_env: ALL_URL}
            routes:
              - {channels: [uploads], labels: {endpoint: /v2/video/upload, team: api}}
              - {channels: [everything]}
            """, environment: nil).config)
        try await withTestDatabase { db in
            try await db.applyNotify(notify)
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(rules, appliedBy: "test", source: "test")
                try await store.silences.create(rule: nil, platform: nil, severity: nil, labels: ["endpoint": "/me"],
                                                startsAt: nil, endsAt: Date().addingTimeInterval(3600), comment: "noisy",
                                                createdBy: "test")
                try await insert(pool, [
                    Seeded(secondsAgo: 20, name: "api.call", platform: "tiktok", value: 1, labels: ["endpoint": "/v2/video/upload"]),
                    Seeded(secondsAgo: 20, name: "api.call", platform: "tiktok", value: 1, labels: ["endpoint": "/me"]),
                ])
                _ = try await evaluated(store, pool, "per_endpoint")
                let rows = try await pool.query(
                    """
                    SELECT a.group_key, n.channel, n.status, n.content::text AS content
                    FROM notifications n JOIN alerts a ON a.id = n.alert_id ORDER BY 1, 2
                    """)
                let seen = try rows.map { "\(try $0.decode("group_key", as: String.self)) \(try $0.decode("channel", as: String.self)) \(try $0.decode("status", as: String.self))" }
                #expect(seen == [
                    "platform=tiktok,endpoint=/me everything silenced",
                    "platform=tiktok,endpoint=/v2/video/upload everything pending",
                    "platform=tiktok,endpoint=/v2/video/upload uploads pending",
                ])
                let payload = try NotificationPayload.decode(try rows[1].decode("content"))
                #expect(payload.alert.groupLabels == ["platform": "tiktok", "endpoint": "/v2/video/upload"])
                #expect(payload.alert.labels == ["platform": "tiktok", "endpoint": "/v2/video/upload", "team": "api"])
            }
        }
    }

    @Test("more groups than max_groups: the evaluation fails with too_many_groups and writes nothing")
    func maxGroups() async throws {
        let parsed = RuleFile.parse(yaml: """
            rules:
              - {name: per_endpoint, kind: count, metric: api.call, window: 10m, threshold: 0, severity: error,
                 group_by: [endpoint], max_groups: 3}
            """)
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(parsed.rules, appliedBy: "test", source: "test")
                try await insert(pool, (0..<3).map { Seeded(secondsAgo: 20, name: "api.call", platform: nil, value: 1, labels: ["endpoint": "/\($0)"]) })
                #expect(try await evaluated(store, pool, "per_endpoint").count == 3)
                try await insert(pool, [Seeded(secondsAgo: 20, name: "api.call", platform: nil, value: 1, labels: ["endpoint": "/3"])])
                await #expect(throws: TooManyGroups(limit: 3)) { _ = try await evaluated(store, pool, "per_endpoint") }
                #expect(try await openAlerts(pool).count == 3)
                let failures = try await store.rules.recordFailure(ruleID: try await ruleID(pool, "per_endpoint"),
                                                                   message: "\(TooManyGroups(limit: 3))", code: .tooManyGroups,
                                                                   trigger: .manual, workerID: "test")
                #expect(failures == 1)
                let stored = try #require(try await store.rules.get(name: "per_endpoint"))
                #expect(stored.lastError?.code == .tooManyGroups && stored.consecutiveErrors == 1)
                let failing = try await store.rules.failingCount()
                #expect(failing.all == 1 && failing.tooManyGroups == 1)
            }
        }
    }
}

struct NotEvaluated: Error {
    var rule: String
}

enum EvaluationJSON {
    static func labels(_ text: String) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }
}
