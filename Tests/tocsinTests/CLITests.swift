import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore

@Suite("tocsin command line")
struct CLITests {
    @Test("five concurrent `tocsin migrate` processes apply each migration once")
    func concurrentMigrate() async throws {
        try await withTestDatabase(migrated: false) { db in
            let processes = try (0..<5).map { _ in
                try TestProcess.launch(["migrate"], environment: ["DATABASE_URL": db.url])
            }
            var applied: [String] = []
            for process in processes {
                #expect(try await process.wait() == 0, "stderr: \(process.stderr)")
                applied.append(process.stdout)
            }
            let files = try FileManager.default.contentsOfDirectory(atPath: TestEnvironment.migrationsDirectory)
                .filter { $0.hasSuffix(".sql") }
            try await db.withPool { pool in
                let rows = try await pool.query("SELECT version, count(*) AS n FROM schema_migrations GROUP BY version")
                #expect(rows.count == files.count)
                for row in rows { #expect(try row.decode("n", as: Int.self) == 1) }
            }
            // Exactly one process applied each file; the others found it done.
            let mentions = applied.filter { $0.contains("0001_init.sql") }.count
            #expect(mentions == 1)
        }
    }

    @Test("an applied migration whose file changed is refused with one clear line")
    func tamperedMigration() async throws {
        try await withTestDatabase(migrated: false) { db in
            let copy = TestEnvironment.temporaryDirectory + "/migrations-" + randomSuffix()
            try FileManager.default.copyItem(atPath: TestEnvironment.migrationsDirectory, toPath: copy)
            defer { try? FileManager.default.removeItem(atPath: copy) }
            let env = ["DATABASE_URL": db.url, "MIGRATIONS_DIR": copy]
            #expect(try await TestProcess.run(["migrate"], environment: env).status == 0)

            let file = copy + "/0001_init.sql"
            let original = try String(contentsOfFile: file, encoding: .utf8)
            try (original + "\n-- edited\n").write(toFile: file, atomically: true, encoding: .utf8)
            let result = try await TestProcess.run(["migrate"], environment: env)
            #expect(result.status != 0)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "stderr: \(result.stderr)")
            #expect(result.stderr.contains("0001_init.sql"))
            #expect(result.stderr.contains("changed"))
            // serve refuses too.
            let serve = try await TestProcess.run(["serve", "--port", "0"], environment: env)
            #expect(serve.status != 0)
            #expect(serve.stderr.contains("changed"))
        }
    }

    @Test("a wrong or unreachable DATABASE_URL ends with one line on stderr", arguments: [
        "postgresql://[not-a-url", "host=127.0.0.1 port=1 dbname=x connect_timeout=2", "definitely_not_a_key=1",
    ])
    func badDatabase(url: String) async throws {
        let result = try await TestProcess.run(["migrate"], environment: ["DATABASE_URL": url])
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.hasPrefix("tocsin: error:"))
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test("missing DATABASE_URL says how to set it")
    func missingDatabase() async throws {
        let result = try await TestProcess.run(["keys", "list"], environment: ["DATABASE_URL": ""])
        #expect(result.status != 0)
        #expect(result.stderr.contains("DATABASE_URL"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test("serve refuses a database that is behind, and starts with --migrate")
    func serveBehind() async throws {
        try await withTestDatabase(migrated: false) { db in
            let refused = try await TestProcess.run(["serve", "--port", "0"], environment: ["DATABASE_URL": db.url])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("tocsin migrate"))
            #expect(refused.stderr.split(separator: "\n").count == 1)

            let port = try freePort()
            let server = try TestProcess.launch(["serve", "--migrate", "--port", "\(port)"], environment: ["DATABASE_URL": db.url])
            let client = TestHTTPClient(port: port)
            let up = try await eventually { (try? await client.get("/readyz"))?.status == 200 }
            #expect(up, "stderr: \(server.stderr)")
            server.signal(SIGTERM)
            #expect(try await server.wait() == 0, "stderr: \(server.stderr)")
        }
    }

    @Test("keys create prints the key once, list never shows it, revoke stops it")
    func keys() async throws {
        try await withTestDatabase { db in
            let env = ["DATABASE_URL": db.url]
            let created = try await TestProcess.run(["keys", "create", "--scope", "ingest,read", "--name", "uploader"], environment: env)
            #expect(created.status == 0, "stderr: \(created.stderr)")
            let key = try #require(created.stdout.split(separator: "\n").last.map(String.init))
            #expect(key.hasPrefix("tsn_"))
            #expect(key.count > 40)

            let listed = try await TestProcess.run(["keys", "list"], environment: env)
            #expect(listed.status == 0)
            #expect(listed.stdout.contains("uploader"))
            #expect(listed.stdout.contains("ingest,read"))
            #expect(!listed.stdout.contains(key))
            #expect(!listed.stdout.contains(String(key.dropFirst(4).prefix(12))))

            // A trailing line break is not part of a valid name (regex $ would let it through).
            let newline = try await TestProcess.run(["keys", "create", "--scope", "read", "--name", "ops\n"], environment: env)
            #expect(newline.status != 0, "\(newline.stdout)")
            let badScope = try await TestProcess.run(["keys", "create", "--scope", "write", "--name", "x"], environment: env)
            #expect(badScope.status != 0)
            #expect(badScope.stderr.contains("unknown scope"))

            #expect(try await TestProcess.run(["keys", "revoke", "uploader"], environment: env).status == 0)
            let again = try await TestProcess.run(["keys", "revoke", "uploader"], environment: env)
            #expect(again.status != 0)
            #expect(again.stderr.contains("no active key"))
            let authentication = try await db.withStore { store in
                try await store.apiKeys.authenticate(key: key)
            }
            #expect(authentication == .revoked)
        }
    }

    @Test("--help explains the configuration variables")
    func help() async throws {
        let result = try await TestProcess.run(["serve", "--help"])
        #expect(result.status == 0)
        for name in ["DATABASE_URL", "PORT", "HOST", "LOG_LEVEL", "LOG_FORMAT", "DB_POOL_SIZE"] {
            #expect(result.stdout.contains(name), "\(name) missing from help")
        }
    }
}

@Suite("tocsin demo")
struct DemoTests {
    @Test("pushes events for both platforms through the public API, and fails clearly with a bad key")
    func demo() async throws {
        try await withTestDatabase { db in
            let key = try await db.createKey(scopes: [.ingest])
            try await withRunningApp(db) { app in
                let url = "http://127.0.0.1:\(app.client.port)"
                let result = try await TestProcess.run(
                    ["demo", "--url", url, "--key", key, "--duration", "3", "--incident-every", "10", "--incident-length", "5"])
                #expect(result.status == 0, "\(result.stderr)")
                #expect(result.stdout.contains("sent"))
                let platforms = try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT DISTINCT platform FROM metric_events WHERE platform IS NOT NULL ORDER BY 1")
                        .map { try $0.decode("platform", as: String.self) }
                }
                #expect(platforms == ["instagram", "tiktok"])
                let bad = try await TestProcess.run(["demo", "--url", url, "--key", "tsn_nope", "--duration", "3"])
                #expect(bad.status != 0)
                #expect(bad.stderr.contains("refused"))
            }
        }
    }
}

@Suite("Worker metrics")
struct WorkerMetricsTests {
    @Test("a worker serves its own metrics on METRICS_PORT")
    func workerMetrics() async throws {
        try await withTestDatabase { db in
            try await db.applyDefaultRules()
            let port = try freePort()
            let worker = try TestProcess.launch(["worker"], environment: ["DATABASE_URL": db.url, "METRICS_PORT": "\(port)"])
            let client = TestHTTPClient(port: port)
            let scraped = try await eventually {
                guard let response = try? await client.get("/metrics") else { return false }
                return response.text.contains(#"tocsin_rule_evaluations_total{outcome="evaluated"}"#)
            }
            #expect(scraped, "\(worker.stderr)")
            worker.signal(SIGTERM)
            #expect(try await worker.wait() == 0)
        }
    }
}

@Suite("Graceful shutdown and notify commands")
struct ShutdownTests {
    @Test("SIGTERM lets an in-flight request finish before the process exits")
    func inFlight() async throws {
        try await withTestDatabase { db in
            let key = try await db.createKey(scopes: [.admin])
            let port = try freePort()
            let server = try TestProcess.launch(["serve", "--port", "\(port)"], environment: ["DATABASE_URL": db.url])
            let client = TestHTTPClient(port: port)
            #expect(try await eventually { (try? await client.get("/readyz"))?.status == 200 })
            // With no worker running, a waited check takes about 5 s: the API runs it itself.
            async let slow = client.request("POST", "/api/workers/alert-checker?wait=true", headers: ["Authorization": "Bearer \(key)"])
            try await Task.sleep(for: .seconds(1))
            server.signal(SIGTERM)
            let response = try await slow
            #expect(response.status == 200, "\(response.text)")
            #expect(try await server.wait() == 0, "\(server.stderr)")
            // New connections are refused once it has stopped.
            await #expect(throws: (any Error).self) { try await client.get("/healthz") }
        }
    }

    @Test("notify check reports problems by line; notify test delivers to the channel")
    func notifyCommands() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        let good = try writeFile("""
            channels:
              - name: ops
                kind: webhook
                url: \(receiver.url)/hook
                secret: abc
            routes:
              - channels: [ops]
            """, name: "notify.yaml")
        let checked = try await TestProcess.run(["notify", "check", good])
        #expect(checked.status == 0)
        #expect(checked.stdout.contains("ops (webhook) → http://127.0.0.1:\(receiver.port)/hook"))
        let bad = try writeFile("channels:\n  - name: x\n    kind: fax\nroutes: []\n", name: "bad.yaml")
        let refused = try await TestProcess.run(["notify", "check", bad])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("\(bad):3:"))
        let cleartext = try writeFile("""
            channels:
              - name: mail
                kind: email
                smtp_url: smtp://127.0.0.1:2525
                username: tocsin
                password_env: SMTP_PASSWORD
                starttls: "off"
                from: t@example.com
                to: [a@example.com]
            routes:
              - channels: [mail]
            """, name: "cleartext.yaml")
        let plain = try await TestProcess.run(["notify", "check", cleartext], environment: ["SMTP_PASSWORD": "hunter2"])
        #expect(plain.status != 0)
        #expect(plain.stderr.contains("\(cleartext):7:") && plain.stderr.contains("use starttls: required"), "\(plain.stderr)")
        #expect(!plain.stderr.contains("hunter2"))
        let sent = try await TestProcess.run(["notify", "test", "ops"], environment: ["NOTIFY_CONFIG": good])
        #expect(sent.status == 0, "\(sent.stderr)")
        let requests = try await receiver.requests()
        #expect(requests.count == 1)
        #expect(try requests[0].json()["type"] as? String == "alert.test")
        let unknown = try await TestProcess.run(["notify", "test", "nope"], environment: ["NOTIFY_CONFIG": good])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no channel named nope"))
    }
}

@Suite("Rules on the command line")
struct RulesCommandTests {
    @Test("rules apply and tocsin run refuse an invalid rules file with one clear line; nothing is applied")
    func invalidRules() async throws {
        try await withTestDatabase { db in
            let file = try writeFile("rules:\n  - name: broken\n    kind: count\n    threshold: lots\n    severity: error\n", name: "rules.yaml")
            for arguments in [["rules", "apply", file], ["run", "--port", "0"]] {
                let result = try await TestProcess.run(arguments, environment: ["DATABASE_URL": db.url, "ALERT_RULES_FILE": file])
                #expect(result.status != 0, "\(arguments)")
                #expect(result.stderr.contains("invalid rules file"))
                #expect(result.stderr.contains("line "))
                #expect(result.stderr.split(separator: "\n").filter { !$0.hasPrefix("{") }.count == 1, "\(result.stderr)")
            }
            let versions: Int = try await db.withPool(size: 1) { pool in
                try await pool.query("SELECT count(*) AS n FROM config_versions")[0].decode("n")
            }
            #expect(versions == 0)
            let checked = try await TestProcess.run(["rules", "check", file])
            #expect(checked.status != 0)
            #expect(checked.stderr.contains("\(file):4:"))
            #expect(checked.stderr.contains("rule broken, field threshold"))
        }
    }

    @Test("rules backtest prints the transitions as a table")
    func backtest() async throws {
        try await withTestDatabase { db in
            try await db.withPool(size: 1) { pool in
                try await pool.query(
                    """
                    INSERT INTO metric_events (occurred_at, name, value)
                    SELECT date_trunc('hour', now()) - interval '3 hours' + interval '30 seconds', 'token.refresh.failure', 1
                    FROM generate_series(1, 4)
                    """)
            }
            let hour = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 3600).rounded(.down) * 3600 - 3 * 3600)
            let rules = TestEnvironment.repositoryRoot.appendingPathComponent("rules/default.yaml").path
            let result = try await TestProcess.run(
                ["rules", "backtest", rules, "--rule", "token_refresh_failures", "--since", RFC3339.format(hour),
                 "--until", RFC3339.format(hour + 3600)], environment: ["DATABASE_URL": db.url])
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("rule token_refresh_failures: 60 evaluation(s) every 1m, 1 alert(s)") == true)
            #expect(lines.contains { $0.hasPrefix(RFC3339.format(hour + 60)) && $0.contains("fired") && $0.contains("4") })
            #expect(lines.contains { $0.hasPrefix(RFC3339.format(hour + 960)) && $0.contains("resolved (auto)") })
        }
    }
}
