import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinStore

/// Inserts events that stay inside every default rule's window for a while.
func seedFiringEvents(_ pool: PostgresPool) async throws {
    try await pool.query(
        """
        INSERT INTO metric_events (occurred_at, name, platform, value)
        SELECT now() - interval '10 seconds', n, p, 1
        FROM (VALUES ('upload.failure', 'tiktok', 20), ('upload.success', 'tiktok', 10),
                     ('upload.success', 'instagram', 50), ('oauth.failure', 'instagram', 7),
                     ('token.refresh.failure', NULL, 4)) AS v(n, p, c),
             generate_series(1, c)
        """)
}

@Suite("Workers as processes", .serialized)
struct WorkerProcessTests {
    @Test("3 workers with a 1 s interval for 45 intervals: at most one evaluation per rule and group per interval, at least 30 covered, no duplicate alerts")
    func threeWorkers() async throws {
        try await withTestDatabase { db in
            try await db.withPool { pool in try await seedFiringEvents(pool) }
            try await db.applyDefaultRules(intervalSeconds: 1)
            let env = ["DATABASE_URL": db.url, "ALERT_CHECK_INTERVAL": "1", "WORKER_CONCURRENCY": "2", "DB_POOL_SIZE": "4",
                       "LOG_LEVEL": "warning"]
            let workers = try (0..<3).map { _ in try TestProcess.launch(["worker"], environment: env) }
            try await Task.sleep(for: .seconds(45))
            for worker in workers { worker.signal(SIGTERM) }
            for worker in workers {
                #expect(try await worker.wait(timeout: .seconds(30)) == 0, "stderr: \(worker.stderr)")
            }
            try await db.withPool { pool in
                let duplicates = try await pool.query(
                    """
                    SELECT rule_name, group_key, floor(extract(epoch FROM started_at)) AS slot, count(*) AS n
                    FROM rule_evaluations GROUP BY 1, 2, 3 HAVING count(*) > 1
                    """)
                #expect(duplicates.count == 0, "evaluations twice in one interval: \(duplicates.count)")
                let perRule = try await pool.query(
                    """
                    SELECT rule_name, group_key, count(DISTINCT floor(extract(epoch FROM started_at))) AS intervals
                    FROM rule_evaluations GROUP BY 1, 2 ORDER BY 1, 2
                    """)
                // Every rule and group of the seeded data was evaluated in (nearly) every interval.
                let groups = try perRule.map { "\(try $0.decode("rule_name", as: String.self))/\(try $0.decode("group_key", as: String?.self) ?? "-")" }
                #expect(Set(groups).isSuperset(of: ["high_error_rate/tiktok", "high_error_rate/instagram", "oauth_failures/instagram",
                                                    "token_refresh_failures/", "high_webhook_latency/"]))
                let coverage = try perRule.map { "\(try $0.decode("rule_name", as: String.self))/\(try $0.decode("group_key", as: String?.self) ?? "-")=\(try $0.decode("intervals", as: Int.self))" }
                for row in perRule {
                    #expect(try row.decode("intervals", as: Int.self) >= 30, "coverage: \(coverage)")
                }
                let participants: Int = try await pool.query(
                    "SELECT count(DISTINCT worker_id) AS n FROM rule_evaluations")[0].decode("n")
                #expect(participants >= 2, "only one worker ever won the lock")
                // One alert per firing rule and group, never two open at once.
                let alerts = try await pool.query("SELECT rule_name, group_key, count(*) AS n FROM alerts GROUP BY 1, 2 ORDER BY 1, 2")
                #expect(try alerts.map { "\(try $0.decode("rule_name", as: String.self))/\(try $0.decode("group_key", as: String.self))=\(try $0.decode("n", as: Int.self))" }
                        == ["high_error_rate/tiktok=1", "oauth_failures/instagram=1", "token_refresh_failures/=1"])
                let overlapping: Int = try await pool.query(
                    """
                    SELECT count(*) AS n FROM alerts a JOIN alerts b
                      ON a.rule_id = b.rule_id AND a.group_key = b.group_key AND a.id < b.id
                     AND tstzrange(a.started_at, a.resolved_at) && tstzrange(b.started_at, b.resolved_at)
                    """)[0].decode("n")
                #expect(overlapping == 0)
                let workerRows: Int = try await pool.query(
                    "SELECT count(*) AS n FROM workers WHERE stopped_at IS NOT NULL")[0].decode("n")
                #expect(workerRows == 3)
            }
        }
    }

    @Test("a worker SIGKILLed mid-evaluation leaves nothing half-written; another evaluates the rule when due")
    func killedMidEvaluation() async throws {
        try await withTestDatabase { db in
            try await db.withPool { pool in try await seedFiringEvents(pool) }
            try await db.applyDefaultRules()
            let env = ["DATABASE_URL": db.url, "ALERT_CHECK_INTERVAL": "60", "LOG_LEVEL": "warning"]
            var pausing = env
            pausing["TOCSIN_TEST_EVALUATION_PAUSE_MS"] = "5000"
            let first = try TestProcess.launch(["worker"], environment: pausing)
            try await db.withPool { pool in
                // Wait until it holds rule locks (inside evaluation transactions).
                let inside = try await eventually {
                    let n: Int = try await pool.query(
                        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = \(0x7463_0003)::int8::oid")[0].decode("n")
                    return n > 0
                }
                #expect(inside, "the worker never started evaluating: \(first.stderr)")
                try await Task.sleep(for: .milliseconds(300))
                first.signal(SIGKILL)
                #expect(try await first.wait() == 128 + SIGKILL)
                // The server notices the dead backend and rolls its transactions back.
                let released = try await eventually {
                    let n: Int = try await pool.query(
                        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = \(0x7463_0003)::int8::oid")[0].decode("n")
                    return n == 0
                }
                #expect(released)
                let written: Int = try await pool.query(
                    """
                    SELECT (SELECT count(*) FROM rule_evaluations) + (SELECT count(*) FROM alerts)
                         + (SELECT count(*) FROM alert_events)
                         + (SELECT count(*) FROM alert_rules WHERE last_evaluated_at IS NOT NULL) AS n
                    """)[0].decode("n")
                #expect(written == 0)

                let second = try TestProcess.launch(["worker"], environment: env)
                let evaluated = try await eventually {
                    let n: Int = try await pool.query(
                        "SELECT count(DISTINCT rule_id) AS n FROM rule_evaluations")[0].decode("n")
                    return n == 4
                }
                #expect(evaluated, "stderr: \(second.stderr)")
                let firing = try await pool.query(
                    "SELECT rule_name, group_key, status FROM alerts ORDER BY 1, 2").map {
                        "\(try $0.decode("rule_name", as: String.self))/\(try $0.decode("group_key", as: String.self))/\(try $0.decode("status", as: String.self))"
                    }
                #expect(firing == ["high_error_rate/tiktok/firing", "oauth_failures/instagram/firing", "token_refresh_failures//firing"])
                let evaluators: Int = try await pool.query(
                    "SELECT count(DISTINCT worker_id) AS n FROM rule_evaluations")[0].decode("n")
                #expect(evaluators == 1)
                second.signal(SIGTERM)
                #expect(try await second.wait() == 0)
            }
        }
    }
}
