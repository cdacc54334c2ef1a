import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore
import TocsinEngine

func defaultRuleFile() throws -> [Rule] {
    let path = TestEnvironment.repositoryRoot.appendingPathComponent("rules/default.yaml").path
    return RuleFile.parse(yaml: try String(contentsOfFile: path, encoding: .utf8)).rules
}

/// A database with the default rules and two firing alerts (token refresh,
/// and upload errors on tiktok).
func seedAlerts(_ db: TestDatabase) async throws {
    try await db.withPoolAndStore { pool, store in
        try await store.rules.apply(try defaultRuleFile(), appliedBy: "test", source: "test")
        try await pool.query(
            """
            INSERT INTO metric_events (occurred_at, name, platform, value)
            SELECT now() - interval '20 seconds', n, p, 1
            FROM (VALUES ('upload.failure', 'tiktok', 20), ('token.refresh.failure', NULL, 4)) AS v(n, p, c),
                 generate_series(1, c)
            """)
        let evaluator = RuleEvaluator(store: store, workerID: "seed")
        for rule in try await store.rules.list() {
            _ = try await evaluator.evaluate(ruleID: rule.id, trigger: .manual, force: true)
        }
    }
}

@Suite("Alerts, rules and workers API")
struct AlertAPITests {
    @Test("listing, filters, detail with transitions, CSV")
    func listing() async throws {
        try await withTestDatabase { db in
            try await seedAlerts(db)
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.read]))"]
                let all = try await app.client.get("/api/monitoring/alerts", headers: auth)
                #expect(all.status == 200)
                let alerts = try #require(try all.json()["alerts"] as? [[String: Any]])
                #expect(alerts.count == 2)
                #expect(Set(alerts.compactMap { $0["rule"] as? String }) == ["high_error_rate", "token_refresh_failures"])
                let critical = try await app.client.get("/api/monitoring/alerts?severity=critical&status=firing", headers: auth)
                let only = try #require(try critical.json()["alerts"] as? [[String: Any]])
                #expect(only.count == 1)
                #expect(only[0]["rule"] as? String == "token_refresh_failures")
                #expect(only[0]["value"] as? Double == 4)
                #expect(only[0]["threshold"] as? Double == 3)
                let tiktok = try await app.client.get("/api/monitoring/alerts?platform=tiktok", headers: auth)
                #expect((try tiktok.json()["alerts"] as? [[String: Any]])?.first?["group_key"] as? String == "tiktok")
                #expect(try await app.client.get("/api/monitoring/alerts?status=broken", headers: auth).status == 400)
                #expect(try await app.client.get("/api/monitoring/alerts?limit=0", headers: auth).status == 400)

                let id = try #require(only[0]["id"] as? Int)
                let detail = try await app.client.get("/api/monitoring/alerts/\(id)", headers: auth)
                let transitions = try #require(try detail.json()["transitions"] as? [[String: Any]])
                #expect(transitions.count == 1)
                #expect(transitions[0]["transition"] as? String == "fired")
                #expect(transitions[0]["value"] as? Double == 4)
                #expect(try await app.client.get("/api/monitoring/alerts/999999", headers: auth).status == 404)
                #expect(try await app.client.get("/api/monitoring/alerts/abc", headers: auth).status == 400)

                let csv = try await app.client.get("/api/monitoring/alerts?format=csv", headers: auth)
                let rows = CSV.parse(csv.text)
                #expect(rows.count == 3)
                #expect(rows[0].first == "id")
            }
        }
    }

    @Test("acknowledge and resolve: 403 for read keys, 400 bad bodies, 404 unknown ids, 409 twice")
    func actions() async throws {
        try await withTestDatabase { db in
            try await seedAlerts(db)
            try await withRunningApp(db) { app in
                let reader = ["Authorization": "Bearer \(try await db.createKey(name: "reader", scopes: [.read]))"]
                let admin = ["Authorization": "Bearer \(try await db.createKey(name: "oncall", scopes: [.admin]))"]
                let id: Int = try await db.withPool { pool in
                    try await pool.query("SELECT id FROM alerts WHERE rule_name = 'token_refresh_failures'")[0].decode("id")
                }
                let denied = try await app.client.post("/api/monitoring/alerts", json: #"{"id":\#(id),"action":"resolve"}"#, headers: reader)
                #expect(denied.status == 403)
                for bad in [#"{"action":"resolve"}"#, #"{"id":\#(id),"action":"delete"}"#, #"{"id":"\#(id)","action":"resolve"}"#,
                            #"{"id":\#(id),"action":"resolve","extra":1}"#, #"{"id":\#(id),"action":"resolve","note":5}"#,
                            #"{"id":1.5,"action":"resolve"}"#, "[1]", "{nope"] {
                    let response = try await app.client.post("/api/monitoring/alerts", json: bad, headers: admin)
                    #expect(response.status == 400, "\(bad) → \(response.status)")
                }
                #expect(try await app.client.post("/api/monitoring/alerts", json: #"{"id":987654,"action":"resolve"}"#,
                                                  headers: admin).status == 404)

                let ack = try await app.client.post("/api/monitoring/alerts", json: #"{"id":\#(id),"action":"acknowledge","note":"looking"}"#,
                                                    headers: admin)
                #expect(ack.status == 200)
                let acked = try #require(try ack.json()["alert"] as? [String: Any])
                #expect(acked["status"] as? String == "acknowledged")
                #expect(acked["acknowledged_by"] as? String == "oncall")
                #expect(acked["acknowledge_note"] as? String == "looking")
                #expect(try await app.client.post("/api/monitoring/alerts", json: #"{"id":\#(id),"action":"acknowledge"}"#,
                                                  headers: admin).status == 409)
                let resolved = try await app.client.post("/api/monitoring/alerts", json: #"{"id":\#(id),"action":"resolve","note":"rotated the secret"}"#,
                                                         headers: admin)
                #expect(resolved.status == 200)
                let body = try #require(try resolved.json()["alert"] as? [String: Any])
                #expect(body["resolution"] as? String == "manual")
                #expect(body["resolved_by"] as? String == "oncall")
                let again = try await app.client.post("/api/monitoring/alerts", json: #"{"id":\#(id),"action":"resolve"}"#, headers: admin)
                #expect(again.status == 409)
                #expect(again.errorCode == "conflict")
                let transitions = try await app.client.get("/api/monitoring/alerts/\(id)", headers: reader)
                let kinds = (try transitions.json()["transitions"] as? [[String: Any]])?.compactMap { $0["transition"] as? String }
                #expect(kinds == ["fired", "acknowledged", "resolved"])
            }
        }
    }

    @Test("rules with their state, workers with staleness")
    func rulesAndWorkers() async throws {
        try await withTestDatabase { db in
            try await seedAlerts(db)
            try await db.withPoolAndStore { pool, store in
                let workers = store.workers
                try await workers.register(id: "fresh", roles: ["worker"])
                try await workers.register(id: "silent", roles: ["worker"])
                try await pool.query("UPDATE workers SET last_heartbeat = now() - interval '10 minutes' WHERE id = 'silent'")
            }
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.read]))"]
                let rules = try #require(try await app.client.get("/api/rules", headers: auth).json()["rules"] as? [[String: Any]])
                #expect(rules.count == 4)
                let errorRate = try #require(rules.first { $0["name"] as? String == "high_error_rate" })
                #expect((errorRate["groups"] as? [[String: Any]])?.first?["group_key"] as? String == "tiktok")
                #expect((errorRate["last_evaluation"] as? [String: Any])?["worker_id"] as? String == "seed")
                #expect(try await app.client.get("/api/rules/high_webhook_latency", headers: auth).status == 200)
                #expect(try await app.client.get("/api/rules/nope", headers: auth).status == 404)

                let workers = try #require(try await app.client.get("/api/workers/alert-checker", headers: auth).json()["workers"] as? [[String: Any]])
                #expect(workers.first { $0["id"] as? String == "fresh" }?["stale"] as? Bool == false)
                #expect(workers.first { $0["id"] as? String == "silent" }?["stale"] as? Bool == true)
            }
        }
    }

    @Test("applied versions: rules and notifications, with who, when and the diff; no secret in them")
    func versions() async throws {
        try await withTestDatabase { db in
            try await seedAlerts(db)
            var rules = try defaultRuleFile()
            rules[0].threshold = 0.2
            try await db.applyRules(Array(rules.dropLast()))
            try await db.applyNotify(NotifyConfig(
                channels: [.init(name: "hook", kind: .webhook, url: "http://127.0.0.1:9/hooks/SECRET-PATH", secret: "SECRET-KEY")],
                routes: [.init(channels: ["hook"])]))
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.read]))"]
                let response = try await app.client.get("/api/rules/versions?limit=10", headers: auth)
                #expect(response.status == 200, "\(response.text)")
                let versions = try #require(try response.json()["versions"] as? [[String: Any]])
                #expect(versions.map { $0["version"] as? Int } == [2, 1])
                let diff = try #require(versions[0]["diff"] as? [String])
                #expect(diff.contains("- rule \(rules.last!.name)"))
                #expect(diff.contains { $0.hasPrefix("~ rule \(rules[0].name): ") })
                #expect(versions[0]["applied_by"] as? String == "test")
                let notify = try await app.client.get("/api/notifications/versions", headers: auth)
                #expect(notify.status == 200)
                #expect((try notify.json()["versions"] as? [[String: Any]])?.first?["diff"] as? [String] == ["+ channel hook", "+ route #1"])
                #expect(!notify.text.contains("SECRET"))
                let channels = try await app.client.get("/api/notifications/channels", headers: auth)
                #expect(channels.text.contains("http://127.0.0.1:9/hooks/***"))
                #expect(!channels.text.contains("SECRET"))
                #expect(try await app.client.get("/api/rules/versions?limit=0", headers: auth).status == 400)
            }
            // Nothing secret is in the database either.
            let stored: String = try await db.withPool(size: 1) { pool in
                try await pool.query("SELECT string_agg(document::text, ' ') AS d FROM config_versions")[0].decode("d")
            }
            #expect(!stored.contains("SECRET"))
        }
    }

    @Test("run checks now works with only the API up, and needs admin")
    func checkWithoutWorkers() async throws {
        try await withTestDatabase { db in
            try await seedAlerts(db)
            try await withRunningApp(db) { app in
                let reader = ["Authorization": "Bearer \(try await db.createKey(scopes: [.read]))"]
                let admin = ["Authorization": "Bearer \(try await db.createKey(scopes: [.admin]))"]
                #expect(try await app.client.request("POST", "/api/workers/alert-checker", headers: reader).status == 403)
                #expect(try await app.client.request("POST", "/api/workers/alert-checker?rule=nope", headers: admin).status == 404)
                let response = try await app.client.request("POST", "/api/workers/alert-checker?wait=true&rule=token_refresh_failures",
                                                            headers: admin)
                #expect(response.status == 200, "\(response.text)")
                let body = try response.json()
                #expect((body["evaluated_by"] as? String)?.hasPrefix("api-") == true)
                let results = try #require(body["results"] as? [[String: Any]])
                #expect(results.count == 1)
                #expect(results[0]["outcome"] as? String == "firing")
                #expect(results[0]["value"] as? Double == 4)
            }
        }
    }

    @Test("backtest by name and by definition")
    func backtest() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                try await store.rules.apply(try defaultRuleFile(), appliedBy: "test", source: "test")
                // 6 OAuth failures on tiktok at 02:00:30 two days ago at midnight + 2h.
                try await pool.query(
                    """
                    INSERT INTO metric_events (occurred_at, name, platform, value)
                    SELECT date_trunc('day', now()) - interval '2 days' + interval '2 hours 30 seconds', 'oauth.failure', 'tiktok', 1
                    FROM generate_series(1, 6)
                    """)
            }
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.read]))"]
                let day = (Date().timeIntervalSince1970 / 86_400).rounded(.down) * 86_400 - 2 * 86_400
                let since = RFC3339.format(day + 7200), until = RFC3339.format(day + 3 * 3600)
                let byName = try await app.client.post("/api/rules/backtest",
                                                       json: #"{"rule":"oauth_failures","since":"\#(since)","until":"\#(until)"}"#,
                                                       headers: auth)
                #expect(byName.status == 200, "\(byName.text)")
                let steps = try #require(try byName.json()["steps"] as? [[String: Any]])
                #expect(steps.map { $0["transition"] as? String } == ["fired", "resolved"])
                #expect(steps[0]["at"] as? String == RFC3339.format(day + 7200 + 60))
                #expect(steps[1]["at"] as? String == RFC3339.format(day + 7200 + 16 * 60))
                #expect(steps[0]["group_key"] as? String == "tiktok")

                let definition = #"{"rule":{"name":"strict","kind":"count","metric":"oauth.failure","threshold":6,"severity":"error","window":"5m","interval":"30s"},"since":"\#(since)","until":"\#(until)"}"#
                let custom = try await app.client.post("/api/rules/backtest", json: definition, headers: auth)
                #expect(custom.status == 200, "\(custom.text)")
                #expect((try custom.json()["steps"] as? [[String: Any]])?.isEmpty == true)  // 6 is not > 6

                let bad = try await app.client.post("/api/rules/backtest",
                                                    json: #"{"rule":{"name":"x","kind":"count"},"since":"yesterday"}"#, headers: auth)
                #expect(bad.status == 400)
                let fields = (((try bad.json()["error"] as? [String: Any])?["details"]) as? [[String: Any]])?.compactMap { $0["field"] as? String } ?? []
                #expect(fields.contains("rule.metric"))
                #expect(fields.contains("since"))
                #expect(try await app.client.post("/api/rules/backtest", json: #"{"rule":"nope","since":"\#(since)"}"#,
                                                  headers: auth).status == 404)
            }
        }
    }
}
