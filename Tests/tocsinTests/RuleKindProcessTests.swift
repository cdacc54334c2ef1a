import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore

@Suite("Composite and grouped rules in real processes", .serialized)
struct RuleKindProcessTests {
    @Test("3 workers: a composite fires only once both inputs fire, once, after them, and never twice in an interval")
    func compositeAcrossWorkers() async throws {
        let parsed = RuleFile.parse(yaml: """
            rules:
              - {name: upload_errors, kind: count, metric: upload.failure, window: 1h, threshold: 2, severity: error, interval: 1s}
              - {name: oauth_errors, kind: count, metric: oauth.failure, window: 1h, threshold: 2, severity: error, interval: 1s}
              - {name: both_failing, kind: composite, expression: upload_errors and oauth_errors, severity: critical, interval: 1s}
            """)
        #expect(parsed.problems.isEmpty, "\(parsed.problems)")
        try await withTestDatabase { db in
            try await db.applyRules(parsed.rules)
            try await db.withPool { pool in
                try await pool.query(
                    "INSERT INTO metric_events (occurred_at, name, value) SELECT now() - interval '5 seconds', 'upload.failure', 1 FROM generate_series(1, 3)")
            }
            let env = ["DATABASE_URL": db.url, "ALERT_CHECK_INTERVAL": "1", "WORKER_CONCURRENCY": "2", "DB_POOL_SIZE": "4",
                       "LOG_LEVEL": "warning"]
            let workers = try (0..<3).map { _ in try TestProcess.launch(["worker"], environment: env) }
            try await db.withPool { pool in
                @Sendable func firing(_ rule: String) async throws -> Int {
                    try await pool.query(
                        "SELECT count(*) AS n FROM alerts WHERE rule_name = \(rule) AND status = 'firing'")[0].decode("n")
                }
                // One input fires; the composite is evaluated over several
                // intervals while only that input holds, and does not fire.
                #expect(try await eventually(timeout: .seconds(20)) { (try? await firing("upload_errors")) == 1 })
                @Sendable func evaluatedAlone() async throws -> Int {
                    try await pool.query(
                        "SELECT count(*) AS n FROM rule_evaluations WHERE rule_name = 'both_failing' AND outcome = 'ok'")[0].decode("n")
                }
                #expect(try await eventually(timeout: .seconds(30)) { (try? await evaluatedAlone()) ?? 0 >= 3 },
                        "the composite was not evaluated while only one input held")
                #expect(try await firing("both_failing") == 0)
                // The other fires too: the composite fires.
                try await pool.query(
                    "INSERT INTO metric_events (occurred_at, name, value) SELECT now() - interval '1 second', 'oauth.failure', 1 FROM generate_series(1, 3)")
                #expect(try await eventually(timeout: .seconds(20)) { (try? await firing("both_failing")) == 1 })
                try await Task.sleep(for: .seconds(5))
            }
            for worker in workers { worker.signal(SIGTERM) }
            for worker in workers {
                #expect(try await worker.wait(timeout: .seconds(30)) == 0, "stderr: \(worker.stderr)")
            }
            try await db.withPool { pool in
                let alerts: Int = try await pool.query("SELECT count(*) AS n FROM alerts WHERE rule_name = 'both_failing'")[0].decode("n")
                #expect(alerts == 1)
                let fired = try await pool.query(
                    """
                    SELECT e.at, e.evidence::text AS evidence FROM alert_events e JOIN alerts a ON a.id = e.alert_id
                    WHERE a.rule_name = 'both_failing' AND e.transition = 'fired'
                    """)
                #expect(fired.count == 1)
                let evidence = try JSONDecoder().decode(Evidence.self, from: Data(try fired[0].decode("evidence", as: String.self).utf8))
                #expect(evidence.inputs == ["upload_errors": "firing", "oauth_errors": "firing"])
                // After both inputs had fired.
                let order: Bool = try await pool.query(
                    """
                    SELECT (SELECT fired_at FROM alerts WHERE rule_name = 'both_failing')
                           >= (SELECT max(fired_at) FROM alerts WHERE rule_name IN ('upload_errors', 'oauth_errors')) AS after
                    """)[0].decode("after")
                #expect(order)
                let duplicates = try await pool.query(
                    """
                    SELECT rule_name, floor(extract(epoch FROM started_at)) AS slot, count(*) AS n
                    FROM rule_evaluations WHERE trigger <> 'event' GROUP BY 1, 2 HAVING count(*) > 1
                    """)
                #expect(duplicates.count == 0, "evaluations twice in one interval: \(duplicates.count)")
                let participants: Int = try await pool.query(
                    "SELECT count(DISTINCT worker_id) AS n FROM rule_evaluations WHERE rule_name = 'both_failing'")[0].decode("n")
                #expect(participants >= 1)
            }
        }
    }

    @Test("a rule with more groups than max_groups shows too_many_groups in the API and on /metrics, and opens nothing")
    func tooManyGroups() async throws {
        try await withTestDatabase { db in
            let file = URL(fileURLWithPath: TestEnvironment.temporaryDirectory + "/groups-" + randomSuffix() + ".yaml")
            try """
                rules:
                  - name: per_endpoint
                    kind: count
                    metric: api.call
                    window: 1h
                    threshold: 0
                    severity: error
                    group_by: [platform, endpoint]
                    max_groups: 2
                """.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            try await db.withPool { pool in
                try await pool.query(
                    """
                    INSERT INTO metric_events (occurred_at, name, platform, value, labels)
                    SELECT now() - interval '5 seconds', 'api.call', 'tiktok', 1, jsonb_build_object('endpoint', '/e' || g)
                    FROM generate_series(1, 3) g
                    """)
            }
            let key = try await db.createKey(scopes: [.read])
            let port = try freePort()
            let server = try TestProcess.launch(["run", "--port", "\(port)"], environment: [
                "DATABASE_URL": db.url, "LOG_LEVEL": "error", "ALERT_CHECK_INTERVAL": "60", "ALERT_RULES_FILE": file.path,
            ])
            let client = TestHTTPClient(port: port)
            let auth = ["Authorization": "Bearer \(key)"]
            #expect(try await eventually { (try? await client.get("/readyz"))?.status == 200 }, "stderr: \(server.stderr)")
            #expect(try await eventually(timeout: .seconds(20)) {
                let rule = try? await client.get("/api/rules/per_endpoint", headers: auth).json()["rule"] as? [String: Any]
                return rule?["health"] as? String == "failing"
            })
            let rule = try await client.get("/api/rules/per_endpoint", headers: auth).json()["rule"] as? [String: Any] ?? [:]
            let lastError = rule["last_error"] as? [String: Any]
            #expect(lastError?["code"] as? String == "too_many_groups", "\(rule)")
            #expect((lastError?["message"] as? String)?.contains("max_groups") == true)
            #expect(rule["group_by"] as? [String] == ["platform", "endpoint"] && rule["max_groups"] as? Int == 2)
            let metrics = try await client.get("/metrics").text
            #expect(metrics.contains("\ntocsin_rules_too_many_groups 1"), "\(metrics.prefix(2000))")
            #expect(metrics.contains("\ntocsin_rules_failing 1"))
            try await db.withPool { pool in
                let alerts: Int = try await pool.query("SELECT count(*) AS n FROM alerts")[0].decode("n")
                #expect(alerts == 0)
            }
            server.signal(SIGTERM)
            #expect(try await server.wait() == 0, "stderr: \(server.stderr.suffix(2000))")
        }
    }
}
