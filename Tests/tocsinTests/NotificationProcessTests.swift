import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinStore

func writeFile(_ text: String, name: String) throws -> String {
    let path = TestEnvironment.temporaryDirectory + "/" + randomSuffix() + "-" + name
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite("Notifications with worker processes", .serialized)
struct NotificationProcessTests {
    @Test("3 workers dispatching 200 transitions: the receiver gets exactly 200 messages, none twice")
    func twoHundred() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            _ = try await db.withPool { pool in
                try await pool.query(
                    """
                    INSERT INTO metric_events (occurred_at, name, platform, value)
                    SELECT now() - interval '10 seconds', 'oauth.failure', 'p' || lpad(p::text, 3, '0'), 1
                    FROM generate_series(1, 200) p, generate_series(1, 6)
                    """)
            }
            let config = try writeFile("""
                channels:
                  - name: hook
                    kind: webhook
                    url_env: TEST_HOOK_URL
                    rate_per_second: 1000
                    burst: 1000
                routes:
                  - channels: [hook]
                """, name: "notify.yaml")
            // 200 platforms are 200 groups of oauth_failures: more than the default max_groups (100).
            try await db.applyDefaultRules(maxGroups: 200)
            let applied = try await TestProcess.run(["notify", "apply", config], environment: ["DATABASE_URL": db.url])
            #expect(applied.status == 0, "\(applied.stderr)")
            #expect(applied.stdout.contains("applied as version 1"))
            let env = ["DATABASE_URL": db.url, "TEST_HOOK_URL": receiver.url + "/hook", "LOG_LEVEL": "warning",
                       "WORKER_CONCURRENCY": "2"]
            let workers = try (0..<3).map { _ in try TestProcess.launch(["worker"], environment: env) }
            let delivered = try await eventually(timeout: .seconds(60)) {
                try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT count(*) AS n FROM notifications WHERE status = 'sent'")[0].decode("n", as: Int.self)
                } == 200
            }
            #expect(delivered, "stderr: \(workers[0].stderr)")
            try await Task.sleep(for: .seconds(2))
            for worker in workers { worker.signal(SIGTERM) }
            for worker in workers { #expect(try await worker.wait() == 0) }
            let requests = try await receiver.requests()
            #expect(requests.count == 200)
            #expect(Set(requests.compactMap { $0.headers["idempotency-key"] }).count == 200)
            let platforms = Set(try requests.compactMap { ((try $0.json())["alert"] as? [String: Any])?["platform"] as? String })
            #expect(platforms.count == 200)
            let senders: Int = try await db.withPool(size: 1) { pool in
                try await pool.query("SELECT count(*) AS n FROM notifications WHERE status <> 'sent'")[0].decode("n")
            }
            #expect(senders == 0)
        }
    }

    @Test("a dispatcher SIGKILLed after claiming, before sending: another sends the row after the lease, once")
    func killedAfterClaim() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            _ = try await db.withPool { pool in
                try await pool.query(
                    "INSERT INTO metric_events (occurred_at, name, value) SELECT now() - interval '5 seconds', 'token.refresh.failure', 1 FROM generate_series(1, 4)")
            }
            try await db.applyDefaultRules()
            try await db.applyNotify(.slackFromEnvironment())
            let env = ["DATABASE_URL": db.url, "SLACK_WEBHOOK_URL": receiver.url + "/services/x", "LOG_LEVEL": "warning",
                       "NOTIFY_TIMEOUT_SECONDS": "1", "NOTIFY_LEASE_SECONDS": "11"]
            var pausing = env
            pausing["TOCSIN_TEST_DISPATCH_PAUSE_MS"] = "30000"
            let first = try TestProcess.launch(["worker"], environment: pausing)
            try await db.withPool { pool in
                let claimed = try await eventually {
                    try await pool.query("SELECT count(*) AS n FROM notifications WHERE lease_owner IS NOT NULL")[0].decode("n", as: Int.self) == 1
                }
                #expect(claimed, "stderr: \(first.stderr)")
                let claimedAt = Date().timeIntervalSince1970
                first.signal(SIGKILL)
                _ = try await first.wait()
                let second = try TestProcess.launch(["worker"], environment: env)
                // The lease runs 11 s from the claim; then the second sends.
                let sent = try await eventually(timeout: .seconds(40)) {
                    try await pool.query("SELECT count(*) AS n FROM notifications WHERE status = 'sent'")[0].decode("n", as: Int.self) == 1
                }
                let state = try await pool.query(
                    """
                    SELECT status, attempts::text, lease_owner, (lease_expires_at - now())::text AS lease_left,
                           (next_attempt_at - now())::text AS due_in, last_error
                    FROM notifications
                    """).map { row in
                        ["status", "attempts", "lease_owner", "lease_left", "due_in", "last_error"]
                            .map { "\($0)=\((try? row.decode($0, as: String?.self)).flatMap { $0 } ?? "null")" }.joined(separator: " ")
                    }
                #expect(sent, "rows: \(state); stderr: \(second.stderr)")
                try await Task.sleep(for: .seconds(1))
                let requests = try await receiver.requests()
                #expect(requests.count == 1)
                #expect((requests.first?.at ?? 0) - claimedAt >= 2.0)
                second.signal(SIGTERM)
                #expect(try await second.wait() == 0)
            }
        }
    }

    @Test("a dispatcher that stalls past its lease does not send: the row goes once, by the dispatcher that holds it now")
    func leaseExpiredWhileStalled() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            _ = try await db.withPool { pool in
                try await pool.query(
                    "INSERT INTO metric_events (occurred_at, name, value) SELECT now() - interval '5 seconds', 'token.refresh.failure', 1 FROM generate_series(1, 4)")
            }
            try await db.applyDefaultRules()
            try await db.applyNotify(.slackFromEnvironment())
            let env = ["DATABASE_URL": db.url, "SLACK_WEBHOOK_URL": receiver.url + "/services/x", "LOG_LEVEL": "warning",
                       "NOTIFY_TIMEOUT_SECONDS": "1", "NOTIFY_LEASE_SECONDS": "11"]
            var stalling = env
            stalling["TOCSIN_TEST_DISPATCH_PAUSE_MS"] = "16000"  // longer than the lease, alive all along
            let stalled = try TestProcess.launch(["worker"], environment: stalling)
            try await db.withPool { pool in
                let claimed = try await eventually {
                    try await pool.query("SELECT count(*) AS n FROM notifications WHERE lease_owner IS NOT NULL")[0].decode("n", as: Int.self) == 1
                }
                #expect(claimed, "stderr: \(stalled.stderr)")
                let second = try TestProcess.launch(["worker"], environment: env)
                let sent = try await eventually(timeout: .seconds(30)) {
                    try await pool.query("SELECT count(*) AS n FROM notifications WHERE status = 'sent'")[0].decode("n", as: Int.self) == 1
                }
                #expect(sent, "stderr: \(second.stderr)")
                // The stalled one wakes up (16 s after its claim), finds the lease gone and leaves the row.
                #expect(try await eventually(timeout: .seconds(20)) { stalled.stderr.contains("lease lost before sending") },
                        "stderr: \(stalled.stderr)")
                try await Task.sleep(for: .seconds(1))
                #expect(try await receiver.requests().count == 1)
                // Attempts count claims: the stalled dispatcher's and the sender's.
                let row = try await pool.query("SELECT attempts, status FROM notifications")[0]
                #expect(try row.decode("attempts", as: Int.self) == 2)
                #expect(try row.decode("status", as: String.self) == "sent")
                for worker in [stalled, second] { worker.signal(SIGTERM) }
                for worker in [stalled, second] { #expect(try await worker.wait() == 0) }
            }
        }
    }

    @Test("secrets never appear in API bodies or log lines")
    func secrets() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        let sink = try await SMTPSink.start(user: "tocsin", password: "SMTP-SECRET-4", tls: true)
        defer { sink.stop() }
        let secrets = ["whsec-TOPSECRET-1", "SLACKSECRET2", "PDKEY-SECRET-3", "SMTP-SECRET-4"]
        try await withTestDatabase { db in
            let config = try writeFile("""
                channels:
                  - name: slack
                    kind: slack
                    url: \(receiver.url)/services/T0/B0/SLACKSECRET2
                  - name: hook
                    kind: webhook
                    url: \(receiver.url)/hook
                    secret_env: TEST_WEBHOOK_SECRET
                  - name: pd
                    kind: pagerduty
                    url: \(receiver.url)/v2/enqueue
                    routing_key: PDKEY-SECRET-3
                  - name: mail
                    kind: email
                    smtp_url: smtp://127.0.0.1:\(sink.port)
                    starttls: required
                    tls_ca_file: \(sink.caFile!)
                    username: tocsin
                    password_env: TEST_SMTP_PASSWORD
                    from: tocsin@example.com
                    to: [oncall@example.com]
                routes:
                  - channels: [slack, hook, pd, mail]
                """, name: "notify.yaml")
            // The receiver fails the first messages, so error paths log too.
            try await receiver.control(#"{"script": [500, 500, 429]}"#)
            let port = try freePort()
            let key = try await db.createKey(name: "admin", scopes: [.admin])
            let process = try TestProcess.launch(["run", "--port", "\(port)"], environment: [
                "DATABASE_URL": db.url, "NOTIFY_CONFIG": config, "LOG_LEVEL": "debug", "NOTIFY_RETRY_BASE_SECONDS": "0.2",
                "TEST_WEBHOOK_SECRET": "whsec-TOPSECRET-1", "TEST_SMTP_PASSWORD": "SMTP-SECRET-4",
            ])
            let client = TestHTTPClient(port: port)
            #expect(try await eventually { (try? await client.get("/readyz"))?.status == 200 }, "\(process.stderr)")
            let auth = ["Authorization": "Bearer \(key)"]
            let events = "[" + Array(repeating: #"{"name":"token.refresh.failure"}"#, count: 5).joined(separator: ",") + "]"
            let posted = try await client.post("/api/metrics", json: events, headers: auth)
            #expect(posted.status == 202, "\(posted.text)")
            let delivered = try await eventually(timeout: .seconds(60)) {
                try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT count(*) AS n FROM notifications WHERE status = 'sent'")[0].decode("n", as: Int.self)
                } == 4
            }
            #expect(delivered, "\(process.stderr.suffix(2000))")
            var bodies: [String] = []
            for path in ["/api/notifications", "/api/notifications/channels", "/api/monitoring/alerts", "/api/rules",
                         "/api/workers/alert-checker", "/api/whoami", "/api/silences"] {
                let response = try await client.get(path, headers: auth)
                #expect(response.status == 200, "\(path)")
                bodies.append(response.text)
            }
            let channels = bodies[1]
            #expect(channels.contains("/services/***"))
            process.signal(SIGTERM)
            #expect(try await process.wait() == 0)
            let logs = process.stdout + process.stderr
            #expect(logs.contains("notification sent"))
            // JSON lines: every request logged with its id, route, status and duration;
            // worker lines carry the worker id, rule and alert id.
            let lines = process.stderr.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(lines.count == process.stderr.split(separator: "\n").count, "a log line is not JSON")
            let requests = lines.filter { $0["msg"] as? String == "request" }
            #expect(requests.count >= 8)
            for line in requests {
                #expect(line["request.id"] is String && line["http.route"] is String && line["http.status"] != nil
                        && line["duration_ms"] != nil)
            }
            let sent = lines.filter { $0["msg"] as? String == "notification sent" }
            #expect(!sent.isEmpty)
            for line in sent {
                #expect(line["worker.id"] is String && line["rule"] as? String == "token_refresh_failures" && line["alert.id"] != nil)
            }
            for secret in secrets + [key, String(key.dropFirst(4))] {
                #expect(!logs.contains(secret), "a secret is in the logs")
                for body in bodies { #expect(!body.contains(secret), "a secret is in an API body") }
            }
        }
    }
}
