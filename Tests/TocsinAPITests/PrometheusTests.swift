import Foundation
import TestSupport
import Testing
import TocsinCore
import TocsinStore

@Suite("GET /metrics")
struct PrometheusTests {
    @Test("Prometheus text without a key: requests by route and status, ingestion, alerts, outbox, pool")
    func scrape() async throws {
        try await withTestDatabase { db in
            try await seedAlerts(db)
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.ingest])
                #expect(try await app.client.post("/api/metrics", json: #"[{"name":"upload.success"},{"name":"upload.success"}]"#,
                                                  headers: ["Authorization": "Bearer \(key)"]).status == 202)
                #expect(try await app.client.post("/api/metrics", json: "{nope", headers: ["Authorization": "Bearer \(key)"]).status == 400)
                let response = try await app.client.get("/metrics")
                #expect(response.status == 200)
                #expect(response.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
                let text = response.text
                #expect(text.contains("# TYPE tocsin_events_ingested_total counter"))
                #expect(text.contains(#"tocsin_ingest_rejected_total{reason="malformed"}"#))
                #expect(text.contains(#"tocsin_http_requests_total{method="POST",route="/api/metrics",status="202"}"#), "\(text)")
                #expect(text.contains(#"tocsin_http_requests_total{method="POST",route="/api/metrics",status="400"}"#))
                #expect(text.contains(#"tocsin_alerts{status="firing"} 2"#))
                #expect(text.contains("tocsin_outbox_pending 0"))
                #expect(text.contains(#"tocsin_db_pool_connections{pool="primary",state="open"}"#))
                #expect(text.contains(#"tocsin_db_pool_connections{pool="read",state="open"}"#))
                #expect(text.contains("tocsin_database_up 1"))
                #expect(text.contains("tocsin_rule_evaluations_total"))
            }
            let disabled = try await withRunningApp(db, configure: { $0.metricsEnabled = false }) { app in
                try await app.client.get("/metrics").status
            }
            #expect(disabled == 404)
        }
    }

    @Test("promtool check metrics finds nothing to say about a scrape after traffic of every kind")
    func promtoolLint() async throws {
        let promtool = "/usr/bin/promtool"
        try #require(FileManager.default.isExecutableFile(atPath: promtool), "promtool (Debian's prometheus package) is needed")
        try await withTestDatabase { db in
            try await seedAlerts(db)
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.admin])
                let auth = ["Authorization": "Bearer \(key)"]
                _ = try await app.client.post("/api/metrics", json: #"[{"name":"webhook.latency","value":0.2}]"#, headers: auth)
                _ = try await app.client.post("/api/metrics", json: "{nope", headers: auth)
                _ = try await app.client.get("/api/monitoring/alerts", headers: auth)
                _ = try await app.client.get("/nowhere")
                _ = try await app.client.request("POST", "/api/workers/alert-checker", headers: auth)
                let scrape = try await app.client.get("/metrics").text
                let file = TestEnvironment.temporaryDirectory + "/scrape-" + randomSuffix() + ".txt"
                try scrape.write(toFile: file, atomically: true, encoding: .utf8)
                let checked = try TestProcess.launch(["-c", "\(promtool) check metrics < \(file)"], executable: "/bin/sh")
                let status = try await checked.wait()
                #expect(status == 0 && checked.stdout.isEmpty && checked.stderr.isEmpty,
                        "promtool: \(checked.stdout)\(checked.stderr)")
                // Every family on the page is one the catalog documents, with its help.
                let families = Set(scrape.split(separator: "\n").compactMap { line -> String? in
                    guard line.hasPrefix("# TYPE ") else { return nil }
                    return line.split(separator: " ").dropFirst(2).first.map(String.init)
                })
                #expect(!families.isEmpty)
                for name in families {
                    let family = MetricsCatalog.family(named: name)
                    #expect(family != nil, "\(name) is exported but not in MetricsCatalog")
                    if let family { #expect(scrape.contains("# HELP \(name) \(family.help)"), "\(name) has no HELP line") }
                }
            }
        }
    }

    @Test("the guide documents every metric of the catalog")
    func documented() throws {
        let guide = try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("docs/MONITORING_GUIDE.md"),
                               encoding: .utf8)
        for family in MetricsCatalog.all {
            #expect(guide.contains("`\(family.name)`"), "docs/MONITORING_GUIDE.md does not mention \(family.name)")
        }
    }
}
