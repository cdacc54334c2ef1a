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
        // Both servers of the pair name the series alike (instance "gauge"),
        // so their alerts have one label set, hence one fingerprint.
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
            relabel_configs:
              - target_label: instance
                replacement: gauge
        """
    }

    @Test("an HA pair of Prometheus servers, each sending to two tocsin serve instances: one Slack message on fire, one on resolve, though one of the pair sees the recovery seconds after the other and one restarts",
          .timeLimit(.minutes(3)))
    func prometheusHA() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.prometheus), "prometheus (Debian's prometheus) is needed")
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        // One exporter per Prometheus, so that the test decides when each sees the recovery.
        let exporters = [try await GaugeExporter.start(), try await GaugeExporter.start()]
        defer { for exporter in exporters { exporter.stop() } }
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
            // Firing alerts are re-sent every 2 s, to both instances, with endsAt 8 s ahead.
            let webPorts = [try freePort(), try freePort()]
            func arguments(_ index: Int) throws -> [String] {
                let config = try writeFile(Self.prometheusConfig(targets: [first.port, second.port], key: key,
                                                                 exporter: exporters[index].target, rules: rules),
                                           name: "prometheus-\(index).yml")
                let storage = TestEnvironment.temporaryDirectory + "/prometheus-" + randomSuffix()
                return ["--config.file=\(config)", "--storage.tsdb.path=\(storage)", "--web.listen-address=127.0.0.1:\(webPorts[index])",
                        "--rules.alert.resend-delay=2s", "--log.level=warn"]
            }
            /// What Prometheus `index` itself says of the alert: firing, pending or nothing.
            @Sendable func state(_ index: Int) async -> String? {
                let body = try? await TestHTTPClient(port: webPorts[index]).get("/api/v1/alerts").json()
                let alerts = (body?["data"] as? [String: Any])?["alerts"] as? [[String: Any]]
                return alerts?.first?["state"] as? String
            }
            var pair = [try TestProcess.launch(try arguments(0), executable: Self.prometheus),
                        try TestProcess.launch(try arguments(1), executable: Self.prometheus)]
            func stderr() -> String { pair.map { $0.stderr.suffix(1000) }.joined(separator: " | ") }
            func diagnose() async -> String {
                var out: [String] = []
                for index in 0..<2 {
                    let client = TestHTTPClient(port: webPorts[index])
                    let alerts = (try? await client.get("/api/v1/alerts").text) ?? "-"
                    let metrics = ((try? await client.get("/metrics").text) ?? "").split(separator: "\n")
                        .filter { $0.hasPrefix("prometheus_notifications") }.joined(separator: "; ")
                    out.append("prometheus \(index): \(alerts) \(metrics)")
                }
                return out.joined(separator: "\n")
            }

            for exporter in exporters { try await exporter.set(1) }
            let firing = try await eventually(timeout: .seconds(60)) {
                let (a, b) = (await state(0), await state(1))
                return a == "firing" && b == "firing"
            }
            #expect(firing, "prometheus: \(stderr())")
            let fired = try await eventually(timeout: .seconds(60)) { try await slackTitles(receiver).count >= 1 }
            #expect(fired, "prometheus: \(stderr())")
            // Both keep re-sending to both instances: still one message.
            try await Task.sleep(for: .seconds(6))
            let titles1 = try await slackTitles(receiver)
            #expect(titles1 == ["[FIRING] GaugeHigh"], "\(titles1)")

            // Restart the first of the pair: it evaluates again and re-sends the firing alert.
            pair[0].signal(SIGTERM)
            _ = try await pair[0].wait()
            let before: Date = try await db.withPool(size: 1) { pool in
                try await pool.query("SELECT now() AS now")[0].decode("now")
            }
            pair[0] = try TestProcess.launch(try arguments(0), executable: Self.prometheus)
            #expect(try await eventually(timeout: .seconds(60)) { await state(0) == "firing" }, "prometheus: \(stderr())")
            let resent = try await eventually(timeout: .seconds(30)) {
                try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT max(last_received_at) AS at FROM alerts")[0].decode("at", as: Date?.self)
                } ?? .distantPast > before + 4
            }
            #expect(resent, "prometheus: \(stderr())")
            let titles2 = try await slackTitles(receiver)
            #expect(titles2 == ["[FIRING] GaugeHigh"], "\(titles2)")

            // The first sees the recovery and resolves the alert; the second
            // still sees the gauge up for 8 s and keeps re-sending it firing.
            try await exporters[0].set(0)
            let resolved = try await eventually(timeout: .seconds(30)) { try await slackTitles(receiver).count >= 2 }
            let diagnosis = resolved ? "" : await diagnose()
            #expect(resolved, "prometheus: \(stderr()) \(diagnosis)")
            try await Task.sleep(for: .seconds(8))
            func stalePosts() -> Int {
                [first.process, second.process].map { serve in
                    (serve.stdout + serve.stderr).components(separatedBy: "\n")
                        .filter { $0.contains("external alerts received") && !$0.contains("\"alerts.stale\":\"0\"") }.count
                }.reduce(0, +)
            }
            #expect(stalePosts() >= 1, "the second of the pair re-sent the ended episode while it still fired")
            try await exporters[1].set(0)
            // Both report it resolved now; Prometheus keeps sending the resolved alert a while: nothing more.
            try await Task.sleep(for: .seconds(6))
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
                #expect(posts >= 6, "an instance got \(posts) posts")
            }

            for prometheus in pair { prometheus.signal(SIGTERM) }
            for prometheus in pair { _ = try await prometheus.wait() }
            for process in [first.process, second.process, worker] { process.signal(SIGTERM) }
            for process in [first.process, second.process, worker] { #expect(try await process.wait() == 0) }
        }
    }
}
