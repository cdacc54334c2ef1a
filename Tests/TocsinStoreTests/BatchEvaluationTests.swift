import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinEngine
import TocsinStore

/// Rules evaluated together in one transaction (what a worker's scheduler
/// does): the same results as one at a time, and the per-rule guarantees.
@Suite("Rules evaluated in batches")
struct BatchEvaluationTests {
    static let yaml = """
        rules:
          - {name: errors, kind: ratio, numerator: upload.failure, denominator: [upload.success, upload.failure],
             window: 15m, threshold: 0.05, min_samples: 10, severity: error, group_by: platform}
          - {name: tokens, kind: count, metric: token.refresh.failure, window: 15m, threshold: 3, severity: critical}
          - {name: latency, kind: aggregate, metric: webhook.latency, function: avg, last: 50, threshold: 5, severity: warning}
          - {name: slow_p95, kind: aggregate, metric: webhook.latency, function: p95, window: 15m, threshold: 100,
             severity: warning, group_by: platform}
          - {name: budget, kind: slo, good: [upload.success], total: [upload.success, upload.failure], objective: 0.99,
             period: 1d, group_by: platform, burn_rates: [{severity: critical, factor: 14.4, long: 1h, short: 5m}]}
          - {name: both, kind: composite, expression: errors and tokens, severity: critical}
        """

    static func seed(_ pool: PostgresPool) async throws {
        try await insert(pool, "upload.success", count: 80, platform: "tiktok")
        try await insert(pool, "upload.failure", count: 20, platform: "tiktok")
        try await insert(pool, "upload.success", count: 100, platform: "instagram")
        try await insert(pool, "token.refresh.failure", count: 5)
        try await insert(pool, "webhook.latency", count: 60, platform: "tiktok", value: 7)
        try await insert(pool, "webhook.latency", count: 10, platform: "instagram", value: 2)
        try await pool.query("SELECT tocsin_rebuild_rollups('-infinity', 'infinity')")
    }

    static func ids(_ pool: PostgresPool) async throws -> [String: Int32] {
        var out: [String: Int32] = [:]
        for row in try await pool.query("SELECT id, name FROM alert_rules") { out[try row.decode("name")] = try row.decode("id") }
        return out
    }

    @Test("a batch measures, decides and logs every rule as evaluating it alone does")
    func sameAsAlone() async throws {
        let parsed = RuleFile.parse(yaml: Self.yaml)
        #expect(parsed.problems.isEmpty, "\(parsed.problems)")
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(parsed.rules, appliedBy: "test", source: "test")
                try await Self.seed(pool)
                let ids = try await Self.ids(pool)
                let plain = ["errors", "tokens", "latency", "slow_p95", "budget"]
                try await pool.query("UPDATE alert_rules SET next_due_at = now()")
                let batch = try await store.evaluations.evaluateBatch(
                    ruleIDs: plain.map { ids[$0]! } + [ids["both"]!], trigger: .schedule, workerID: "batch")
                // A composite is never part of a batch: it reads its inputs' committed states.
                #expect(batch[ids["both"]!] == .notDue)
                var fromBatch: [String: [String: GroupResult]] = [:]
                for name in plain {
                    guard case .evaluated(let groups, let ms, _) = batch[ids[name]!] else {
                        Issue.record("\(name) was not evaluated in the batch: \(String(describing: batch[ids[name]!]))")
                        continue
                    }
                    #expect(ms > 0, "\(name): its share of the batch's time")
                    fromBatch[name] = Dictionary(uniqueKeysWithValues: groups.map { ($0.groupKey ?? "", $0) })
                }
                #expect(fromBatch["errors"]?["tiktok"]?.outcome == .firing)
                #expect(fromBatch["errors"]?["instagram"]?.outcome == .ok)
                #expect(fromBatch["tokens"]?[""]?.outcome == .firing)
                #expect(fromBatch["latency"]?[""]?.value == 7 * 40.0 / 50 + 2 * 10.0 / 50)
                // Each rule is logged, its alerts written and its next due time set, as alone.
                let logged = try await pool.query(
                    """
                    SELECT rule_name, count(*) AS n, bool_and(worker_id = 'batch' AND trigger = 'schedule') AS mine
                    FROM rule_evaluations GROUP BY 1 ORDER BY 1
                    """).map { (try $0.decode("rule_name", as: String.self), try $0.decode("n", as: Int.self), try $0.decode("mine", as: Bool.self)) }
                #expect(logged.map(\.0) == plain.sorted())
                #expect(logged.allSatisfy { $0.2 })
                #expect(logged.first { $0.0 == "errors" }?.1 == 2)
                let open = try await openAlerts(pool).map { "\($0.0)/\($0.1)/\($0.2)" }
                #expect(open == ["budget/tiktok/critical/firing", "errors/tiktok/firing", "latency//firing", "tokens//firing"])
                let scheduled = try await pool.query(
                    """
                    SELECT count(*) FILTER (WHERE next_due_at = date_trunc('minute', last_evaluated_at) + interval '1 minute') AS aligned,
                           count(*) FILTER (WHERE slo_period_counted_at IS NOT NULL) AS counted
                    FROM alert_rules WHERE name = ANY(\(plain)::text[])
                    """)[0]
                #expect(try scheduled.decode("aligned", as: Int.self) == plain.count)
                #expect(try scheduled.decode("counted", as: Int.self) == 1, "the SLO rule stores its period's counts")
                // Evaluated alone, on the same events, every group has the same value and samples.
                for name in plain {
                    let alone = try await evaluated(store, pool, name)
                    #expect(Set(alone.keys) == Set(fromBatch[name]?.keys ?? [:].keys), "\(name)")
                    for (key, want) in alone {
                        #expect(fromBatch[name]?[key]?.value == want.value, "\(name) \(key)")
                        #expect(fromBatch[name]?[key]?.samples == want.samples, "\(name) \(key)")
                    }
                }
                // Nothing due: a second batch evaluates nothing.
                let again = try await store.evaluations.evaluateBatch(ruleIDs: plain.map { ids[$0]! }, trigger: .schedule,
                                                                      workerID: "batch")
                #expect(again.values.allSatisfy { $0 == .notDue })
            }
        }
    }

    @Test("in a batch, a rule another transaction holds is busy, one not due or disabled is left alone")
    func perRuleGuarantees() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(try defaultRuleFile(), appliedBy: "test", source: "test")
                let ids = try await Self.ids(pool)
                try await pool.query("UPDATE alert_rules SET next_due_at = now()")
                try await pool.query("UPDATE alert_rules SET next_due_at = now() + interval '1 hour' WHERE name = 'oauth_failures'")
                try await pool.query("UPDATE alert_rules SET enabled = false WHERE name = 'high_webhook_latency'")
                let holder = try await blocking { try PostgresConnection.connect(db.url) }
                try await blocking {
                    try holder.execute(script: "BEGIN")
                    _ = try holder.tryAdvisoryTransactionLock(namespace: 0x7463_0003, id: ids["token_refresh_failures"]!)
                }
                let outcomes = try await store.evaluations.evaluateBatch(ruleIDs: Array(ids.values), trigger: .schedule,
                                                                         workerID: "batch")
                try await blocking {
                    try holder.execute(script: "ROLLBACK")
                    holder.close()
                }
                #expect(outcomes[ids["token_refresh_failures"]!] == .busy)
                #expect(outcomes[ids["oauth_failures"]!] == .notDue)
                #expect(outcomes[ids["high_webhook_latency"]!] == .notDue)
                guard case .evaluated = outcomes[ids["high_error_rate"]!] else {
                    Issue.record("the due rule was not evaluated: \(String(describing: outcomes[ids["high_error_rate"]!]))")
                    return
                }
                let logged = try await pool.query("SELECT DISTINCT rule_name FROM rule_evaluations").map { try $0.decode("rule_name", as: String.self) }
                #expect(logged == ["high_error_rate"])
                // The busy rule is still due, for the next batch.
                let retried = try await store.evaluations.evaluateBatch(ruleIDs: Array(ids.values), trigger: .schedule,
                                                                        workerID: "batch")
                guard case .evaluated = retried[ids["token_refresh_failures"]!] else {
                    Issue.record("the rule was not evaluated once its lock was free")
                    return
                }
            }
        }
    }

    @Test("a forced batch (run checks now) evaluates rules not due, waits for a lock another transaction holds, skips disabled ones")
    func forced() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(try defaultRuleFile(), appliedBy: "test", source: "test")
                let ids = try await Self.ids(pool)
                try await pool.query("UPDATE alert_rules SET next_due_at = now() + interval '1 hour'")
                try await pool.query("UPDATE alert_rules SET enabled = false WHERE name = 'high_webhook_latency'")
                let held = ids["token_refresh_failures"]!
                let holder = try await blocking { try PostgresConnection.connect(db.url) }
                try await blocking {
                    try holder.execute(script: "BEGIN")
                    _ = try holder.tryAdvisoryTransactionLock(namespace: 0x7463_0003, id: held)
                }
                let batch = Task {
                    try await store.evaluations.evaluateBatch(ruleIDs: Array(ids.values), trigger: .manual, force: true,
                                                              workerID: "check")
                }
                // The batch waits for the held lock: nothing of it is committed meanwhile.
                #expect(try await eventually {
                    try await pool.query(
                        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[0].decode("n", as: Int.self) == 1
                })
                #expect(try await pool.query("SELECT count(*) AS n FROM rule_evaluations")[0].decode("n", as: Int.self) == 0)
                try await blocking {
                    try holder.execute(script: "ROLLBACK")
                    holder.close()
                }
                let outcomes = try await batch.value
                #expect(outcomes[ids["high_webhook_latency"]!] == .notDue)
                for name in ["high_error_rate", "token_refresh_failures", "oauth_failures"] {
                    guard case .evaluated = outcomes[ids[name]!] else {
                        Issue.record("\(name) was not evaluated: \(String(describing: outcomes[ids[name]!]))")
                        continue
                    }
                }
                let logged = try await pool.query(
                    "SELECT rule_name, trigger FROM rule_evaluations ORDER BY 1"
                ).map { "\(try $0.decode("rule_name", as: String.self))/\(try $0.decode("trigger", as: String.self))" }
                #expect(logged == ["high_error_rate/manual", "oauth_failures/manual", "token_refresh_failures/manual"])
            }
        }
    }

    @Test("a rule that fails in a batch fails alone: the others are evaluated, it records its error and backs off")
    func failureFallsBackToOneAtATime() async throws {
        let parsed = RuleFile.parse(yaml: """
            rules:
              - {name: errors, kind: ratio, numerator: upload.failure, denominator: [upload.success, upload.failure],
                 window: 15m, threshold: 0.05, min_samples: 10, severity: error, group_by: platform}
              - {name: tokens, kind: count, metric: token.refresh.failure, window: 15m, threshold: 3, severity: critical}
              - {name: narrow, kind: count, metric: upload.success, window: 15m, threshold: 1000, severity: warning,
                 group_by: platform, max_groups: 1}
            """)
        #expect(parsed.problems.isEmpty, "\(parsed.problems)")
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(parsed.rules, appliedBy: "test", source: "test")
                try await Self.seed(pool)
                let ids = try await Self.ids(pool)
                try await pool.query("UPDATE alert_rules SET next_due_at = now()")
                let evaluator = RuleEvaluator(store: store, workerID: "batch")
                let outcomes = try await evaluator.evaluate(batch: Array(ids.values))
                for name in ["errors", "tokens"] {
                    guard case .success(.evaluated) = outcomes[ids[name]!] else {
                        Issue.record("\(name) was not evaluated: \(String(describing: outcomes[ids[name]!]))")
                        continue
                    }
                }
                guard case .failure(let error) = outcomes[ids["narrow"]!] else {
                    Issue.record("two platforms over max_groups 1 did not fail: \(String(describing: outcomes[ids["narrow"]!]))")
                    return
                }
                #expect(error is TooManyGroups)
                let rows = try await pool.query(
                    """
                    SELECT name, consecutive_errors, last_error_code,
                           next_due_at > coalesce(last_error_at, last_evaluated_at) AS backs_off
                    FROM alert_rules ORDER BY name
                    """)
                let state = try rows.map {
                    "\(try $0.decode("name", as: String.self)) \(try $0.decode("consecutive_errors", as: Int.self)) "
                        + "\(try $0.decode("last_error_code", as: String?.self) ?? "-") \(try $0.decode("backs_off", as: Bool.self))"
                }
                #expect(state == ["errors 0 - true", "narrow 1 too_many_groups true", "tokens 0 - true"])
                let outcomesLogged = try await pool.query(
                    "SELECT rule_name, outcome FROM rule_evaluations ORDER BY rule_name, outcome").map {
                        "\(try $0.decode("rule_name", as: String.self)) \(try $0.decode("outcome", as: String.self))" }
                #expect(outcomesLogged == ["errors firing", "errors ok", "narrow error", "tokens firing"])
            }
        }
    }

    @Test("events that arrive while a batch is evaluated make its rules due again a second later")
    func wakeDuringBatch() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(try defaultRuleFile(), appliedBy: "test", source: "test")
                let ids = try await Self.ids(pool)
                try await pool.query("UPDATE alert_rules SET next_due_at = now()")
                let batch = Task {
                    try await store.evaluations.evaluateBatch(ruleIDs: Array(ids.values), trigger: .schedule, workerID: "batch",
                                                              pause: .milliseconds(1500))
                }
                // Until the batch has read its rules and measured (it is idle in its
                // transaction after a statement on metric_events: measuring, or the pause).
                var inside = false
                for _ in 0..<600 where !inside {
                    try await Task.sleep(for: .milliseconds(10))
                    inside = try await pool.query(
                        """
                        SELECT count(*) > 0 AS inside FROM pg_stat_activity
                        WHERE state = 'idle in transaction' AND query LIKE '%FROM metric_events%' AND pid <> pg_backend_pid()
                        """)[0].decode("inside")
                }
                #expect(inside, "the batch did not get to measuring")
                // The wake locks the rule rows the batch will lock at its end: in the same order, so no deadlock.
                #expect(try await store.rules.wake(readers: ["token.refresh.failure", "oauth.failure"]) == 2)
                let outcomes = try await batch.value
                #expect(outcomes.values.filter { if case .evaluated = $0 { true } else { false } }.count == 4)
                let rows = try await pool.query(
                    """
                    SELECT name, due_reason,
                           CASE WHEN due_reason = 'event' THEN next_due_at <= last_evaluated_at + interval '1 second'
                                ELSE next_due_at = date_trunc('minute', last_evaluated_at) + interval '1 minute' END AS soon
                    FROM alert_rules ORDER BY name
                    """).map { "\(try $0.decode("name", as: String.self)) \(try $0.decode("due_reason", as: String.self)) \(try $0.decode("soon", as: Bool.self))" }
                // Woken: due a second after the evaluation; the others at the next interval.
                #expect(rows == ["high_error_rate schedule true", "high_webhook_latency schedule true",
                                 "oauth_failures event true", "token_refresh_failures event true"])
            }
        }
    }
}
