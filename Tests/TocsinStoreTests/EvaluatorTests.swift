import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore

/// Inserts events `secondsAgo` before the database's now.
func insert(_ pool: PostgresPool, _ name: String, count: Int, platform: String? = nil, value: Double = 1,
            secondsAgo: Double = 30) async throws {
    try await pool.query(
        """
        INSERT INTO metric_events (occurred_at, name, platform, value)
        SELECT now() - make_interval(secs => \(secondsAgo) + g * 0.001), \(name), \(platform), \(value) FROM generate_series(1, \(count)) g
        """)
}

func ruleID(_ pool: PostgresPool, _ name: String) async throws -> Int32 {
    try await pool.query("SELECT id FROM alert_rules WHERE name = \(name)")[0].decode("id")
}

func openAlerts(_ pool: PostgresPool) async throws -> [(String, String, String)] {
    try await pool.query("SELECT rule_name, group_key, status FROM alerts WHERE status <> 'resolved' ORDER BY 1, 2").map {
        (try $0.decode("rule_name"), try $0.decode("group_key"), try $0.decode("status"))
    }
}

func defaultRuleFile() throws -> [Rule] {
    let path = TestEnvironment.repositoryRoot.appendingPathComponent("rules/default.yaml").path
    return RuleFile.parse(yaml: try String(contentsOfFile: path, encoding: .utf8)).rules
}

@Suite("Rule evaluation in SQL")
struct EvaluatorTests {
    @Test("boundaries: exactly 5 %, 9 attempts, 3 vs 4 token failures, per platform")
    func boundaries() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(try defaultRuleFile(), appliedBy: "test", source: "test")
                let evaluator = TestEvaluator(store: store, workerID: "test")
                // tiktok: exactly 5 % of 100; instagram: 9 attempts all failed; youtube: 6 % of 100.
                try await insert(pool, "upload.success", count: 95, platform: "tiktok")
                try await insert(pool, "upload.failure", count: 5, platform: "tiktok")
                try await insert(pool, "upload.failure", count: 9, platform: "instagram")
                try await insert(pool, "upload.success", count: 94, platform: "youtube")
                try await insert(pool, "upload.failure", count: 6, platform: "youtube")
                // Outside the window: ignored.
                try await insert(pool, "upload.failure", count: 50, platform: "tiktok", secondsAgo: 1000)
                try await insert(pool, "token.refresh.failure", count: 3)
                let outcome = try await evaluator.evaluate(ruleID: try await ruleID(pool, "high_error_rate"), trigger: .manual, force: true)
                guard case .evaluated(let groups, _, _) = outcome else {
                    Issue.record("not evaluated: \(outcome)")
                    return
                }
                let byGroup = Dictionary(uniqueKeysWithValues: groups.map { ($0.groupKey ?? "?", $0) })
                #expect(byGroup["tiktok"]?.value == 0.05)
                #expect(byGroup["tiktok"]?.outcome == .ok)
                #expect(byGroup["instagram"]?.value == nil)
                #expect(byGroup["instagram"]?.samples == 9)
                #expect(byGroup["instagram"]?.outcome == .noData)
                #expect(byGroup["youtube"]?.outcome == .firing)

                let tokenRule = try await ruleID(pool, "token_refresh_failures")
                _ = try await evaluator.evaluate(ruleID: tokenRule, trigger: .manual, force: true)
                #expect(try await openAlerts(pool).map(\.0) == ["high_error_rate"])
                try await insert(pool, "token.refresh.failure", count: 1)
                _ = try await evaluator.evaluate(ruleID: tokenRule, trigger: .manual, force: true)
                let open = try await openAlerts(pool)
                #expect(open.count == 2)
                #expect(open.contains { $0 == ("token_refresh_failures", "", "firing") })
                #expect(open.contains { $0 == ("high_error_rate", "youtube", "firing") })

                // The evidence: the firing transition carries the value, threshold and samples.
                let evidence = try await pool.query(
                    """
                    SELECT e.value, e.threshold, e.samples FROM alert_events e JOIN alerts a ON a.id = e.alert_id
                    WHERE a.rule_name = 'high_error_rate' AND e.transition = 'fired'
                    """)
                #expect(try evidence[0].decode("value", as: Double.self) == 0.06)
                #expect(try evidence[0].decode("threshold", as: Double.self) == 0.05)
                #expect(try evidence[0].decode("samples", as: Int.self) == 100)
            }
        }
    }

    @Test("the SQL agrees with the pure math on the same events")
    func sqlMatchesMath() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                var latency = Rule(name: "p95_latency", kind: .aggregate, metric: "api.latency", function: .p95,
                                   windowSeconds: 600, threshold: 1, groupBy: .platform, severity: .warning)
                latency.intervalSeconds = 60
                let last = Rule(name: "last_max", kind: .aggregate, metric: "api.latency", function: .max, lastEvents: 7,
                                threshold: 100, groupBy: .platform, severity: .warning)
                try await store.rules.apply([latency, last], appliedBy: "test", source: "test")
                var expected: [RuleMath.Point] = []
                for (i, platform) in ["tiktok", "instagram"].enumerated() {
                    for k in 0..<40 {
                        let value = Double((k * 37 + i * 11) % 23) / 4
                        try await pool.query(
                            "INSERT INTO metric_events (occurred_at, name, platform, value) VALUES (now() - make_interval(secs => \(Double(k * 10 + 5))), 'api.latency', \(platform), \(value))")
                        expected.append(RuleMath.Point(time: 10_000 - Double(k * 10 + 5), name: "api.latency", platform: platform, value: value))
                    }
                }
                // Written with SQL, not the API: the rollups (which per-platform last N reads) are rebuilt.
                try await pool.query("SELECT tocsin_rebuild_rollups('-infinity', 'infinity')")
                let evaluator = TestEvaluator(store: store, workerID: "test")
                for rule in [latency, last] {
                    let outcome = try await evaluator.evaluate(ruleID: try await ruleID(pool, rule.name), trigger: .manual, force: true)
                    guard case .evaluated(let groups, _, _) = outcome else {
                        Issue.record("not evaluated")
                        return
                    }
                    let math = RuleMath.measure(rule, points: expected, now: 10_000)
                    #expect(groups.count == 2)
                    for group in groups {
                        let want = try #require(math[group.groupKey ?? ""])
                        #expect(group.samples == want.samples, "\(rule.name) \(group.groupKey ?? "")")
                        #expect(abs((group.value ?? -1) - (want.value ?? -2)) < 1e-9, "\(rule.name) \(group.groupKey ?? "")")
                    }
                }
            }
        }
    }

    @Test("exactly one evaluation per interval: a second due check finds it done; a held lock is busy")
    func duePerInterval() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(try defaultRuleFile(), appliedBy: "test", source: "test")
                let id = try await ruleID(pool, "token_refresh_failures")
                let evaluator = TestEvaluator(store: store, workerID: "test")
                // Clear of a minute's end: there the next scheduled evaluation comes
                // sooner than a wake could pull it (one second after the last).
                let intoMinute: Double = try await pool.query(
                    "SELECT extract(second FROM now())::float8 AS s")[0].decode("s")
                if intoMinute > 55 { try await Task.sleep(for: .seconds(60.5 - intoMinute)) }
                guard case .evaluated = try await evaluator.evaluate(ruleID: id, trigger: .schedule) else {
                    Issue.record("a due rule was not evaluated")
                    return
                }
                #expect(try await evaluator.evaluate(ruleID: id, trigger: .schedule) == .notDue)
                // Events for its metric pull the rule forward (one second after its last
                // evaluation at the earliest); that evaluation is logged as triggered by events.
                #expect(try await store.rules.wake(readers: ["token.refresh.failure"]) == 1)
                #expect(try await store.rules.wake(readers: ["no.rule.reads.this"]) == 0)
                try await Task.sleep(for: .milliseconds(1100))
                guard case .evaluated = try await evaluator.evaluate(ruleID: id, trigger: .schedule) else {
                    Issue.record("an event-woken rule was not evaluated")
                    return
                }
                let triggers = try await pool.query(
                    "SELECT trigger FROM rule_evaluations WHERE rule_id = \(Int(id)) ORDER BY id").map { try $0.decode("trigger", as: String.self) }
                #expect(triggers == ["schedule", "event"])
                // Next due is the start of the next aligned minute.
                let due = try await pool.query(
                    "SELECT next_due_at = date_trunc('minute', now()) + interval '1 minute' AS aligned FROM alert_rules WHERE id = \(Int(id))")
                #expect(try due[0].decode("aligned", as: Bool.self))
                // Another transaction holding the rule's lock makes it busy.
                try await pool.query("UPDATE alert_rules SET next_due_at = now() WHERE id = \(Int(id))")
                let holder = try await blocking { try PostgresConnection.connect(db.url) }
                try await blocking {
                    try holder.execute(script: "BEGIN")
                    _ = try holder.tryAdvisoryTransactionLock(namespace: 0x7463_0003, id: id)
                }
                #expect(try await evaluator.evaluate(ruleID: id, trigger: .schedule) == .busy)
                try await blocking {
                    try holder.execute(script: "ROLLBACK")
                    holder.close()
                }
                guard case .evaluated = try await evaluator.evaluate(ruleID: id, trigger: .schedule) else {
                    Issue.record("not evaluated after the lock was released")
                    return
                }
            }
        }
    }

    @Test("events that arrive while a rule is being evaluated make it due again a second later, not at the next interval")
    func wakeDuringEvaluation() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(try defaultRuleFile(), appliedBy: "test", source: "test")
                let id = try await ruleID(pool, "token_refresh_failures")
                try await pool.query("UPDATE alert_rules SET next_due_at = now() WHERE id = \(Int(id))")
                // The evaluation pauses inside its transaction after reading
                // the events; meanwhile new ones arrive and wake the rule.
                let evaluation = Task {
                    try await store.evaluations.evaluate(ruleID: id, trigger: .schedule, workerID: "test",
                                                         pause: .milliseconds(1500))
                }
                try await Task.sleep(for: .milliseconds(500))
                #expect(try await store.rules.wake(readers: ["token.refresh.failure"]) == 1)
                guard case .evaluated = try await evaluation.value else {
                    Issue.record("the due rule was not evaluated")
                    return
                }
                let row = try await pool.query(
                    """
                    SELECT due_reason, next_due_at <= last_evaluated_at + interval '1 second' AS soon
                    FROM alert_rules WHERE id = \(Int(id))
                    """)[0]
                #expect(try row.decode("due_reason", as: String.self) == "event")
                #expect(try row.decode("soon", as: Bool.self), "the wake was overwritten by the next interval's due time")

                // Without events meanwhile, the next due time is the next interval's.
                try await pool.query("UPDATE alert_rules SET next_due_at = now() WHERE id = \(Int(id))")
                try await Task.sleep(for: .milliseconds(1100))
                guard case .evaluated = try await store.evaluations.evaluate(ruleID: id, trigger: .schedule, workerID: "test")
                else {
                    Issue.record("the due rule was not evaluated")
                    return
                }
                let scheduled = try await pool.query(
                    """
                    SELECT due_reason, next_due_at = date_trunc('minute', last_evaluated_at) + interval '1 minute' AS aligned
                    FROM alert_rules WHERE id = \(Int(id))
                    """)[0]
                #expect(try scheduled.decode("due_reason", as: String.self) == "schedule")
                #expect(try scheduled.decode("aligned", as: Bool.self))
            }
        }
    }

    @Test("events stamped ahead of an evaluation's now make the rule due when they enter the window, not an interval later")
    func eventsAhead() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                // A daily interval: the next scheduled evaluation cannot come first.
                let rules = RuleFile.parse(yaml: """
                    rules:
                      - {name: token_refresh_failures, kind: count, metric: token.refresh.failure, window: 15m,
                         threshold: 3, severity: critical, interval: 1d}
                    """).rules
                try await store.rules.apply(rules, appliedBy: "test", source: "test")
                let id = try await ruleID(pool, "token_refresh_failures")
                // A sender whose clock is 6 s ahead of the database's.
                try await pool.query(
                    """
                    INSERT INTO metric_events (occurred_at, name, value)
                    SELECT now() + interval '6 seconds', 'token.refresh.failure', 1 FROM generate_series(1, 4)
                    """)
                try await pool.query("UPDATE alert_rules SET next_due_at = now() WHERE id = \(Int(id))")
                guard case .evaluated = try await store.evaluations.evaluate(ruleID: id, trigger: .schedule, workerID: "test") else {
                    Issue.record("the due rule was not evaluated")
                    return
                }
                // Due when they enter the window.
                let row = try await pool.query(
                    """
                    SELECT extract(epoch FROM next_due_at - now())::float8 AS wait,
                           next_due_at = (SELECT min(occurred_at) FROM metric_events) AS at_entry,
                           (SELECT count(*) FROM alerts WHERE rule_id = \(Int(id))) AS alerts
                    FROM alert_rules WHERE id = \(Int(id))
                    """)[0]
                #expect(try row.decode("alerts", as: Int.self) == 0, "not in the window yet")
                #expect(try row.decode("at_entry", as: Bool.self), "not due an interval later")
                let wait: Double = try row.decode("wait")
                // Once due, the evaluation counts them.
                try await Task.sleep(for: .seconds(max(0, wait) + 0.2))
                guard case .evaluated = try await store.evaluations.evaluate(ruleID: id, trigger: .schedule, workerID: "test") else {
                    Issue.record("the rule was not due when its events entered the window")
                    return
                }
                let fired: Int = try await pool.query(
                    "SELECT count(*) AS n FROM alerts WHERE rule_id = \(Int(id)) AND status = 'firing'")[0].decode("n")
                #expect(fired == 1)
            }
        }
    }

    @Test("for, hysteresis, no_data and manual resolution against the database")
    func lifecycle() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                let held = Rule(name: "held", kind: .count, metric: "oauth.failure", windowSeconds: 600, threshold: 1,
                                recoveryThreshold: 0, groupBy: .none, severity: .error, forSeconds: 1)
                let vanishing = Rule(name: "vanishing", kind: .aggregate, metric: "webhook.latency", function: .avg,
                                     windowSeconds: 60, threshold: 5, severity: .warning, noData: .resolve)
                try await store.rules.apply([held, vanishing], appliedBy: "test", source: "test")
                let evaluator = TestEvaluator(store: store, workerID: "test")
                let heldID = try await ruleID(pool, "held")
                try await insert(pool, "oauth.failure", count: 2)
                _ = try await evaluator.evaluate(ruleID: heldID, trigger: .manual, force: true)
                #expect(try await openAlerts(pool).first?.2 == "pending")
                // A pending alert has not fired: there is nothing to acknowledge yet.
                let pendingID: Int = try await pool.query("SELECT id FROM alerts WHERE rule_name = 'held'")[0].decode("id")
                await #expect(throws: AlertRepository.ActionError.conflict("the alert is pending: it has not fired yet")) {
                    try await store.alerts.act(.acknowledge, alertID: pendingID, actor: "ops", note: nil)
                }
                try await Task.sleep(for: .milliseconds(1100))
                _ = try await evaluator.evaluate(ruleID: heldID, trigger: .manual, force: true)
                #expect(try await openAlerts(pool).first?.2 == "firing")
                // Manual resolution while the condition still holds: a new alert opens next time.
                let alertID: Int = try await pool.query("SELECT id FROM alerts WHERE rule_name = 'held'")[0].decode("id")
                let resolved = try await store.alerts.act(.resolve, alertID: alertID, actor: "ops", note: "rebooted")
                #expect(resolved.status == .resolved && resolved.resolution == .manual && resolved.resolvedBy == "ops")
                await #expect(throws: AlertRepository.ActionError.conflict("the alert is already resolved")) {
                    try await store.alerts.act(.resolve, alertID: alertID, actor: "ops", note: nil)
                }
                _ = try await evaluator.evaluate(ruleID: heldID, trigger: .manual, force: true)
                let count: Int = try await pool.query("SELECT count(*) AS n FROM alerts WHERE rule_name = 'held'")[0].decode("n")
                #expect(count == 2)

                // no_data: resolve closes the alert once the events leave the window.
                let vanishingID = try await ruleID(pool, "vanishing")
                try await pool.query(
                    "INSERT INTO metric_events (occurred_at, name, value) VALUES (now() - interval '58 seconds', 'webhook.latency', 9)")
                _ = try await evaluator.evaluate(ruleID: vanishingID, trigger: .manual, force: true)
                #expect(try await openAlerts(pool).contains { $0.0 == "vanishing" })
                try await Task.sleep(for: .seconds(2.5))
                _ = try await evaluator.evaluate(ruleID: vanishingID, trigger: .manual, force: true)
                let resolution: String? = try await pool.query(
                    "SELECT resolution FROM alerts WHERE rule_name = 'vanishing'")[0].decode("resolution")
                #expect(resolution == "no_data")

                // The history has every transition in order.
                let transitions = try await pool.query(
                    "SELECT transition, actor FROM alert_events WHERE alert_id = \(alertID) ORDER BY id")
                #expect(try transitions.map { try $0.decode("transition", as: String.self) } == ["pending", "fired", "resolved"])
                #expect(try transitions.last?.decode("actor", as: String.self) == "ops")
            }
        }
    }

    @Test("a rule removed from the file is disabled, not deleted; every change is a version with its diff")
    func sync() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                let rules = try defaultRuleFile()
                let first = try await store.rules.apply(rules, appliedBy: "ops", source: "rules.yaml")
                #expect(first.created && first.version == 1)
                #expect(first.diff.filter { $0.hasPrefix("+ rule ") }.count == 4)
                let again = try await store.rules.apply(rules, appliedBy: "ops", source: "rules.yaml")
                #expect(!again.created && again.version == 1 && again.diff.isEmpty)
                var changed = Array(rules.dropLast())
                changed[0].threshold = 0.1
                let second = try await store.rules.apply(changed, appliedBy: "someone", source: "other.yaml")
                #expect(second.created && second.version == 2)
                #expect(second.diff.contains("- rule \(rules.last!.name)"))
                #expect(second.diff.contains { $0.hasPrefix("~ rule \(rules[0].name): ") && $0.contains("threshold") })
                #expect(second.diff.count == 2)
                #expect(try await store.rules.list().count == 3)
                #expect(try await store.rules.list(includeDisabled: true).count == 4)
                #expect(try await store.rules.get(name: rules[0].name)?.rule.threshold == 0.1)
                let versions = try await store.config.versions(.rules, limit: 10)
                #expect(versions.map(\.version) == [2, 1])
                #expect(versions[0].appliedBy == "someone" && versions[0].source == "other.yaml")
                let stamped: Int = try await pool.query(
                    "SELECT count(*) AS n FROM alert_rules WHERE version = 2")[0].decode("n")
                #expect(stamped == 2)
            }
        }
    }
}
