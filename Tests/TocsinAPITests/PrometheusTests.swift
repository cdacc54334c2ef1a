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
                #expect(text.contains(#"hb_requests{http_route="/api/metrics",http_request_method="POST",http_response_status_code="202"}"#)
                        || text.contains(#"http_route="/api/metrics""#))
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
}
