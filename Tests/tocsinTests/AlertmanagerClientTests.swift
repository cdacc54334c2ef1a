import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore

/// Runs a program (not tocsin) to completion.
func runProgram(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(30)) async throws
    -> (status: Int32, stdout: String, stderr: String) {
    let process = try TestProcess.launch(arguments, executable: executable)
    let status = try await process.wait(timeout: timeout)
    return (status, process.stdout, process.stderr)
}

/// Small pools: the suite runs many databases' tests at once.
let smallPools = ["DB_POOL_SIZE": "3", "DB_READ_POOL_SIZE": "2"]

/// `tocsin serve` on a free port of 127.0.0.1, ready.
func launchServe(_ environment: [String: String]) async throws -> (process: TestProcess, port: Int) {
    let port = try freePort()
    let process = try TestProcess.launch(["serve", "--port", "\(port)"], environment: environment.merging(smallPools) { a, _ in a })
    let client = TestHTTPClient(port: port)
    let up = try await eventually { (try? await client.get("/readyz"))?.status == 200 }
    try #require(up, "tocsin serve did not start: \(process.stderr)")
    return (process, port)
}

/// The Slack messages' titles up to the alert's labels: "[FIRING] DiskFull".
func slackTitles(_ receiver: HTTPReceiver) async throws -> [String] {
    try await slackTexts(receiver).map { $0.components(separatedBy: " · ")[0] }
}

func slackTexts(_ receiver: HTTPReceiver) async throws -> [String] {
    try await receiver.requests().compactMap { try $0.json()["text"] as? String }
}

/// Real clients of the Alertmanager API, from Debian: amtool
/// (prometheus-alertmanager 0.25) and Prometheus 2.42, against real
/// `tocsin serve` processes, with a real Slack receiver behind a worker.
@Suite("Alertmanager clients: amtool and Prometheus", .serialized)
struct AlertmanagerClientTests {
    static let amtool = "/usr/bin/amtool"
    static let prometheus = "/usr/bin/prometheus"

    @Test("amtool adds and queries alerts, adds, queries and expires silences, with bearer auth; the alert resolves by timeout")
    func amtool() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.amtool), "amtool (Debian's prometheus-alertmanager) is needed")
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.applyNotify(.slackFromEnvironment())
            let key = try await db.createKey(name: "amtool", scopes: [.admin])
            let httpConfig = try writeFile("authorization:\n  type: Bearer\n  credentials: \(key)\n", name: "amtool-http.yml")
            let (serve, port) = try await launchServe(["DATABASE_URL": db.url, "EXTERNAL_RESOLVE_TIMEOUT": "8s",
                                                       "LOG_LEVEL": "warning"])
            let worker = try TestProcess.launch(["worker"], environment: [
                "DATABASE_URL": db.url, "SLACK_WEBHOOK_URL": receiver.url + "/services/x", "LOG_LEVEL": "warning"]
                .merging(smallPools) { a, _ in a })
            let base = ["--alertmanager.url=http://127.0.0.1:\(port)", "--http.config.file=\(httpConfig)"]
            func amtool(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
                try await runProgram(Self.amtool, base + arguments)
            }

            // Posting (again) refreshes the alert: it resolves 8 s after the last post.
            func post() async throws {
                let added = try await amtool(["alert", "add", "DiskFull", "severity=critical", "instance=db1",
                                              "--annotation=summary=disk full on db1"])
                #expect(added.status == 0, "\(added.stderr)")
            }
            try await post()
            let fired = try await eventually(timeout: .seconds(20)) { try await slackTitles(receiver) == ["[FIRING] DiskFull"] }
            #expect(fired, "worker: \(worker.stderr)")
            // The title names the alert's labels but its alertname.
            let title = try await slackTexts(receiver).first ?? ""
            #expect(title == "[FIRING] DiskFull · instance=db1 · severity=critical", "\(title)")

            try await post()
            let query = try await amtool(["alert", "query"])
            #expect(query.status == 0, "\(query.stderr)")
            let row = query.stdout.split(separator: "\n").first { $0.hasPrefix("DiskFull") }.map(String.init) ?? ""
            #expect(row.contains("disk full on db1") && row.contains("active"), "\(query.stdout)")
            #expect(try await amtool(["alert", "query", "alertname=Nothing"]).stdout.split(separator: "\n").count == 1)

            let silenced = try await amtool(["silence", "add", "alertname=DiskFull", "instance=~db.*", "--author=alice",
                                             "--comment=disk swap", "--duration=1h"])
            #expect(silenced.status == 0, "\(silenced.stderr)")
            let id = silenced.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(id.wholeMatch(of: /00000000-0000-0000-0000-[0-9]{12}/) != nil, "\(silenced.stdout)")

            let silences = try await amtool(["silence", "query"])
            #expect(silences.status == 0, "\(silences.stderr)")
            #expect(silences.stdout.contains(id) && silences.stdout.contains(#"alertname="DiskFull""#)
                    && silences.stdout.contains(#"instance=~"db.*""#) && silences.stdout.contains("alice")
                    && silences.stdout.contains("disk swap"), "\(silences.stdout)")
            try await post()
            let suppressed = try await amtool(["alert", "query", "--silenced"])
            #expect(suppressed.stdout.contains("suppressed"), "\(suppressed.stdout)")
            #expect(!(try await amtool(["alert", "query"])).stdout.contains("DiskFull"))

            let expired = try await amtool(["silence", "expire", id])
            #expect(expired.status == 0, "\(expired.stderr)")
            #expect(!(try await amtool(["silence", "query"])).stdout.contains(id))
            #expect(try await amtool(["silence", "query", "--expired"]).stdout.contains(id))
            // amtool parses the status's config as an Alertmanager configuration.
            let routes = try await amtool(["config", "routes"])
            #expect(routes.status == 0 && routes.stdout.contains("receiver: slack"), "\(routes.stdout)\(routes.stderr)")

            // Without the key: refused, and amtool says so.
            let anonymous = try await runProgram(Self.amtool, ["--alertmanager.url=http://127.0.0.1:\(port)", "alert", "add", "X"])
            #expect(anonymous.status != 0 && anonymous.stderr.contains("401"), "\(anonymous.stderr)")

            // Nobody re-posts it: the worker resolves it after EXTERNAL_RESOLVE_TIMEOUT.
            let resolved = try await eventually(timeout: .seconds(40)) {
                try await slackTitles(receiver) == ["[FIRING] DiskFull", "[RESOLVED] DiskFull"]
            }
            let titles = try await slackTitles(receiver)
            #expect(resolved, "\(titles)")
            let resolution: String? = try await db.withPool(size: 1) { pool in
                try await pool.query("SELECT resolution FROM alerts WHERE rule_name = 'DiskFull'")[0].decode("resolution")
            }
            #expect(resolution == "expired")
            for process in [serve, worker] { process.signal(SIGTERM) }
            for process in [serve, worker] { #expect(try await process.wait() == 0) }
        }
    }

    static func prometheusConfig(targets: [Int], key: String, exporter: String, rules: String) -> String {
        """
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        rule_files: [\(rules)]
        alerting:
          alertmanagers:
            - api_version: v2
              authorization:
                type: Bearer
                credentials: \(key)
              static_configs:
                - targets: [\(targets.map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", "))]
        scrape_configs:
          - job_name: gauge
            static_configs:
              - targets: ["\(exporter)"]
        """
    }

    @Test("Prometheus sending to two tocsin serve instances: one Slack message on fire, one on resolve; its restart changes nothing",
          .timeLimit(.minutes(3)))
    func prometheusHA() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.prometheus), "prometheus (Debian's prometheus) is needed")
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        let exporter = try await GaugeExporter.start()
        defer { exporter.stop() }
        try await withTestDatabase { db in
            try await db.applyNotify(.slackFromEnvironment())
            let key = try await db.createKey(name: "prometheus", scopes: [.alerts])
            let env = ["DATABASE_URL": db.url, "LOG_LEVEL": "info"]
            let first = try await launchServe(env)
            let second = try await launchServe(env)
            var workerEnv = env
            workerEnv["LOG_LEVEL"] = "warning"
            workerEnv["SLACK_WEBHOOK_URL"] = receiver.url + "/services/x"
            let worker = try TestProcess.launch(["worker"], environment: workerEnv.merging(smallPools) { a, _ in a })
            let rules = try writeFile("""
                groups:
                  - name: test
                    rules:
                      - alert: GaugeHigh
                        expr: tocsin_test_gauge > 0
                        for: 1s
                        labels: {severity: critical, team: db}
                        annotations: {summary: "the gauge is up"}
                """, name: "rules.yml")
            let config = try writeFile(Self.prometheusConfig(targets: [first.port, second.port], key: key, exporter: exporter.target,
                                                             rules: rules), name: "prometheus.yml")
            let storage = TestEnvironment.temporaryDirectory + "/prometheus-" + randomSuffix()
            // Firing alerts are re-sent every 5 s, to both instances, with endsAt 20 s ahead: longer than a restart.
            let arguments = ["--config.file=\(config)", "--storage.tsdb.path=\(storage)", "--web.listen-address=127.0.0.1:\(try freePort())",
                             "--rules.alert.resend-delay=5s", "--log.level=warn"]
            var prometheus = try TestProcess.launch(arguments, executable: Self.prometheus)

            try await exporter.set(1)
            let fired = try await eventually(timeout: .seconds(60)) { try await slackTitles(receiver).count >= 1 }
            #expect(fired, "prometheus: \(prometheus.stderr)")
            // Two re-sends to both instances later: still one message.
            try await Task.sleep(for: .seconds(11))
            let titles1 = try await slackTitles(receiver)
            #expect(titles1 == ["[FIRING] GaugeHigh"], "\(titles1)")

            // Restart Prometheus: it evaluates again and re-sends the firing alert.
            prometheus.signal(SIGTERM)
            _ = try await prometheus.wait()
            let before: Date = try await db.withPool(size: 1) { pool in
                try await pool.query("SELECT now() AS now")[0].decode("now")
            }
            prometheus = try TestProcess.launch(arguments, executable: Self.prometheus)
            let resent = try await eventually(timeout: .seconds(30)) {
                try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT max(last_received_at) AS at FROM alerts")[0].decode("at", as: Date?.self)
                } ?? .distantPast > before + 2
            }
            #expect(resent, "prometheus: \(prometheus.stderr)")
            try await Task.sleep(for: .seconds(2))
            let titles2 = try await slackTitles(receiver)
            #expect(titles2 == ["[FIRING] GaugeHigh"], "\(titles2)")

            try await exporter.set(0)
            let resolved = try await eventually(timeout: .seconds(30)) { try await slackTitles(receiver).count >= 2 }
            #expect(resolved)
            // Prometheus keeps sending the resolved alert for a while: nothing more.
            try await Task.sleep(for: .seconds(4))
            let titles3 = try await slackTitles(receiver)
            #expect(titles3 == ["[FIRING] GaugeHigh", "[RESOLVED] GaugeHigh"], "\(titles3)")
            let rows = try await db.withPool(size: 1) { pool in
                try await pool.query(
                    """
                    SELECT count(*) AS alerts, min(resolution) AS resolution, min(source) AS source,
                           (SELECT count(*) FROM notifications) AS notifications,
                           (SELECT count(*) FROM alert_events) AS events
                    FROM alerts
                    """)[0]
            }
            #expect(try rows.decode("alerts", as: Int.self) == 1)
            #expect(try rows.decode("events", as: Int.self) == 2)
            #expect(try rows.decode("notifications", as: Int.self) == 2)
            #expect(try rows.decode("resolution", as: String.self) == "auto")
            #expect(try rows.decode("source", as: String.self) == "external")
            // Both instances were sent every alert (the access log has a line per request).
            for serve in [first.process, second.process] {
                let posts = (serve.stdout + serve.stderr).components(separatedBy: "\"http.route\":\"/api/v2/alerts\"").count - 1
                #expect(posts >= 3, "an instance got \(posts) posts")
            }

            prometheus.signal(SIGTERM)
            _ = try await prometheus.wait()
            for process in [first.process, second.process, worker] { process.signal(SIGTERM) }
            for process in [first.process, second.process, worker] { #expect(try await process.wait() == 0) }
        }
    }
}
