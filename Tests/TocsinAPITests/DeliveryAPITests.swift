import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore

@Suite("Delivery ledger and recurring silences API")
struct DeliveryAPITests {
    @Test("an alert's deliveries: routed and held entries with why; 404 for no alert, 400 for a bad limit")
    func deliveries() async throws {
        try await withTestDatabase { db in
            try await db.applyNotify(NotifyConfig(
                channels: [.init(name: "hook", kind: .webhook, url: "http://127.0.0.1:9/hook")],
                routes: [.init(channels: ["hook"])]))
            // A silence first, so the firing is held and the ledger says by which.
            let silence = try await db.withStore(poolSize: 1) { store in
                try await store.silences.create(rule: "token_refresh_failures", platform: nil, severity: nil, labels: [:],
                                                startsAt: nil, endsAt: Date().addingTimeInterval(3600), comment: "test",
                                                createdBy: "test")
            }
            try await seedAlerts(db)
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.read]))"]
                let alerts = try #require(try await app.client.get("/api/monitoring/alerts?rule=token_refresh_failures",
                                                                   headers: auth).json()["alerts"] as? [[String: Any]])
                let id = try #require(alerts.first?["id"] as? Int)
                #expect(alerts.first?.keys.contains("inhibited_by") == true)
                let response = try await app.client.get("/api/monitoring/alerts/\(id)/deliveries", headers: auth)
                #expect(response.status == 200, "\(response.text)")
                let entries = try #require(try response.json()["deliveries"] as? [[String: Any]])
                #expect(entries.compactMap { $0["event"] as? String } == ["routed", "silenced"])
                #expect(entries.last?["silence_id"] as? Int == silence.id)
                #expect(entries.allSatisfy { $0["channel"] as? String == "hook" && $0["route"] as? String == "route #1" })
                #expect(try await app.client.get("/api/monitoring/alerts/999999/deliveries", headers: auth).status == 404)
                #expect(try await app.client.get("/api/monitoring/alerts/\(id)/deliveries?limit=0", headers: auth).status == 400)
                #expect(try await app.client.get("/api/monitoring/alerts/\(id)/deliveries").status == 401)
            }
        }
    }

    @Test("a recurring silence: created with its window, shown with it, holding only inside it; bad windows are 400s by field")
    func recurringSilence() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.admin]))"]
                let ends = RFC3339.format(Date().addingTimeInterval(30 * 86_400))
                let created = try await app.client.post("/api/silences", json: """
                    {"rule": "high_error_rate", "ends_at": "\(ends)", "comment": "weekly maintenance",
                     "recurrence": {"time_zone": "UTC", "weekdays": ["monday:sunday"], "years": ["1970:1971"]}}
                    """, headers: auth)
                #expect(created.status == 201, "\(created.text)")
                let silence = try #require(try created.json()["silence"] as? [String: Any])
                #expect(silence["active"] as? Bool == false, "outside its window (years 1970 to 1971)")
                let recurrence = try #require(silence["recurrence"] as? [String: Any])
                #expect(recurrence["weekdays"] as? [String] == ["monday:sunday"])
                #expect(recurrence["years"] as? [String] == ["1970:1971"])
                let bad = try await app.client.post("/api/silences", json: """
                    {"rule": "x", "ends_at": "\(ends)", "comment": "c", "recurrence": {"times": [{"start": "18:00", "end": "09:00"}]}}
                    """, headers: auth)
                #expect(bad.status == 400)
                #expect(bad.text.contains("recurrence.times"))
                let listed = try await app.client.get("/api/silences", headers: auth)
                let silences = try #require(try listed.json()["silences"] as? [[String: Any]])
                #expect(silences.count == 1)
                #expect(silences[0]["recurrence"] is [String: Any])
                let id = try #require(silences[0]["id"] as? Int)
                #expect(try await app.client.request("DELETE", "/api/silences/\(id)", headers: auth).status == 200)
                #expect(try await app.client.request("DELETE", "/api/silences/\(id)", headers: auth).status == 404)
            }
        }
    }
}
