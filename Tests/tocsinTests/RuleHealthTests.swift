import Foundation
import PostgresClient
import TestSupport
import Testing

/// A rule whose evaluation fails, in a real `tocsin run`: it must back off
/// (not be retried in a loop), say why in the API and on /metrics, leave
/// the other rules alone, and recover by itself.
@Suite("A failing rule", .serialized)
struct RuleHealthTests {
    @Test("is retried 1, 2, 4 … s apart, shows its error in GET /api/rules/{name} and /metrics, and recovers")
    func backoff() async throws {
        try await withTestDatabase { db in
            let key = try await db.createKey(scopes: [.read])
            let port = try freePort()
            let server = try TestProcess.launch(["run", "--port", "\(port)"], environment: [
                "DATABASE_URL": db.url, "LOG_LEVEL": "error", "ALERT_CHECK_INTERVAL": "60",
            ])
            let client = TestHTTPClient(port: port)
            let auth = ["Authorization": "Bearer \(key)"]
            #expect(try await eventually { (try? await client.get("/readyz"))?.status == 200 }, "stderr: \(server.stderr)")

            try await db.withPool(size: 2) { pool in
                // The server refuses every successful evaluation of one rule
                // (as a full disk or a broken index would): its transaction
                // rolls back. Recording the failure itself is allowed.
                try await pool.query(
                    """
                    CREATE FUNCTION refuse_oauth_failures() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF NEW.rule_name = 'oauth_failures' AND NEW.outcome <> 'error' THEN
                            RAISE EXCEPTION 'could not extend file: No space left on device';
                        END IF;
                        RETURN NEW;
                    END $$
                    """)
                try await pool.query(
                    """
                    CREATE TRIGGER refuse BEFORE INSERT ON rule_evaluations
                    FOR EACH ROW EXECUTE FUNCTION refuse_oauth_failures()
                    """)
                let started = Date()
                try await pool.query("UPDATE alert_rules SET next_due_at = now()")

                #expect(try await eventually(timeout: .seconds(30)) {
                    let n: Int = try await pool.query(
                        "SELECT consecutive_errors AS n FROM alert_rules WHERE name = 'oauth_failures'")[0].decode("n")
                    return n >= 4
                }, "stderr: \(server.stderr.suffix(2000))")
                let elapsed = Date().timeIntervalSince(started)
                let failures: Int = try await pool.query(
                    "SELECT count(*) AS n FROM rule_evaluations WHERE rule_name = 'oauth_failures' AND outcome = 'error'")[0].decode("n")
                // Backing off 1, 2, 4 … s, n failures take 2^(n-1) - 1 s; a rule
                // retried in a loop would have failed thousands of times.
                #expect(failures >= 4 && Double(failures) <= log2(elapsed + 1) + 2, "\(failures) failures in \(elapsed) s")

                let rule = try await client.get("/api/rules/oauth_failures", headers: auth)
                #expect(rule.status == 200)
                let body = try rule.json()["rule"] as? [String: Any] ?? [:]
                #expect(body["health"] as? String == "failing")
                #expect((body["consecutive_errors"] as? Int ?? 0) >= 4)
                let lastError = body["last_error"] as? [String: Any]
                #expect((lastError?["message"] as? String)?.contains("No space left on device") == true, "\(body)")
                #expect(lastError?["at"] is String)
                let metrics = try await client.get("/metrics")
                #expect(metrics.text.contains("\ntocsin_rules_failing 1"), "\(metrics.text.prefix(3000))")

                // The other rules are evaluated as usual.
                let healthy: Int = try await pool.query(
                    """
                    SELECT count(*) AS n FROM alert_rules
                    WHERE name <> 'oauth_failures' AND last_evaluated_at IS NOT NULL AND consecutive_errors = 0
                    """)[0].decode("n")
                #expect(healthy == 3)

                // The cause goes away: the next attempt succeeds and the rule is healthy again.
                try await pool.query("DROP TRIGGER refuse ON rule_evaluations")
                #expect(try await eventually(timeout: .seconds(40)) {
                    let ok = try? await client.get("/api/rules/oauth_failures", headers: auth).json()["rule"] as? [String: Any]
                    return ok?["health"] as? String == "ok"
                })
                let recovered = try await client.get("/api/rules/oauth_failures", headers: auth).json()["rule"] as? [String: Any] ?? [:]
                #expect(recovered["consecutive_errors"] as? Int == 0)
                #expect(recovered["last_error"] is [String: Any], "the last error is kept for reference")
                #expect(recovered["last_evaluation"] is [String: Any])
                #expect(try await client.get("/metrics").text.contains("\ntocsin_rules_failing 0"))
            }
            #expect(server.exitStatus == nil)
            server.signal(SIGTERM)
            #expect(try await server.wait() == 0, "stderr: \(server.stderr.suffix(2000))")
        }
    }
}
