import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore
import TocsinCrypto

func sessionCookie(_ response: TestHTTPResponse) -> String? {
    guard let header = response.header("set-cookie"), let first = header.split(separator: ";").first else { return nil }
    return String(first)
}

@Suite("The dashboard: assets, sessions, CSRF, live stream")
struct DashboardTests {
    @Test("the page and its assets: content types, cache headers, CSP, ETags")
    func assets() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let page = try await app.client.get("/monitoring")
                #expect(page.status == 200)
                #expect(page.header("content-type") == "text/html; charset=utf-8")
                #expect(page.header("cache-control") == "no-cache")
                #expect(page.header("content-security-policy")?.hasPrefix("default-src 'self'") == true)
                #expect(page.header("x-content-type-options") == "nosniff")
                #expect(page.text.contains("/monitoring/assets/main.js"))
                // Nothing is loaded from another origin.
                #expect(!page.text.contains("http://") && !page.text.contains("https://"))
                let etag = try #require(page.header("etag"))
                #expect(try await app.client.get("/monitoring", headers: ["If-None-Match": etag]).status == 304)

                // The modules are revalidated on every load, so a deploy never mixes
                // old and new ones in one page; the rest may be cached a while.
                for (file, type, cache) in [("main.js", "text/javascript; charset=utf-8", "no-cache"),
                                            ("format.js", "text/javascript; charset=utf-8", "no-cache"),
                                            ("app.css", "text/css; charset=utf-8", "public, max-age=300"),
                                            ("icon.svg", "image/svg+xml", "public, max-age=300")] {
                    let asset = try await app.client.get("/monitoring/assets/\(file)")
                    #expect(asset.status == 200, "\(file)")
                    #expect(asset.header("content-type") == type, "\(file)")
                    #expect(asset.header("cache-control") == cache, "\(file)")
                    #expect(asset.header("etag") != nil)
                    #expect(!asset.body.isEmpty)
                }
                let missing = try await app.client.get("/monitoring/assets/nope.js")
                #expect(missing.status == 404)
                #expect(missing.errorCode == "not_found")
                #expect(try await app.client.get("/monitoring/assets/..%2F..%2FPackage.swift").status == 404)
            }
        }
    }

    @Test("sign in with a key, cookie flags, session use, sign out; ids stored hashed")
    func sessions() async throws {
        try await withTestDatabase { db in
            let admin = try await db.createKey(name: "ops", scopes: [.admin])
            let ingest = try await db.createKey(scopes: [.ingest])
            try await withRunningApp(db) { app in
                #expect(try await app.client.post("/monitoring/session", json: #"{"key":"tsn_wrong"}"#).status == 401)
                #expect(try await app.client.post("/monitoring/session", json: #"{"key":"\#(ingest)"}"#).status == 403)
                #expect(try await app.client.post("/monitoring/session", json: #"{"token":"x"}"#).status == 400)
                #expect(try await app.client.get("/monitoring/session").status == 401)

                let login = try await app.client.post("/monitoring/session", json: #"{"key":"\#(admin)"}"#)
                #expect(login.status == 200)
                let setCookie = try #require(login.header("set-cookie"))
                #expect(setCookie.contains("HttpOnly"))
                #expect(setCookie.contains("SameSite=Strict"))
                #expect(!setCookie.contains("Secure"))
                #expect(setCookie.contains("Max-Age=43200"))
                let cookie = try #require(sessionCookie(login))
                let csrf = try #require(try login.json()["csrf_token"] as? String)
                #expect(try login.json()["name"] as? String == "ops")

                let me = try await app.client.get("/monitoring/session", headers: ["Cookie": cookie])
                #expect(me.status == 200)
                #expect(try me.json()["csrf_token"] as? String == csrf)
                #expect(try await app.client.get("/api/monitoring/alerts", headers: ["Cookie": cookie]).status == 200)

                let stored: String = try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT row_to_json(s)::text AS s FROM dashboard_sessions s")[0].decode("s")
                }
                let value = String(cookie.split(separator: "=", maxSplits: 1)[1])
                #expect(!stored.contains(value))
                #expect(stored.contains(Crypto.sha256Hex(value)))

                #expect(try await app.client.request("DELETE", "/monitoring/session", headers: ["Cookie": cookie]).status == 403)
                let logout = try await app.client.request("DELETE", "/monitoring/session", headers: ["Cookie": cookie, "X-CSRF-Token": csrf])
                #expect(logout.status == 200)
                #expect(logout.header("set-cookie")?.contains("Max-Age=0") == true)
                #expect(try await app.client.get("/monitoring/session", headers: ["Cookie": cookie]).status == 401)
                #expect(try await app.client.get("/api/monitoring/alerts", headers: ["Cookie": cookie]).status == 401)
            }
            try await withRunningApp(db, configure: { $0.publicURL = "https://tocsin.example.com" }) { app in
                let login = try await app.client.post("/monitoring/session", json: #"{"key":"\#(admin)"}"#)
                #expect(login.header("set-cookie")?.contains("Secure") == true)
            }
        }
    }

    @Test("POSTs from a session need the CSRF token; read sessions cannot act")
    func csrf() async throws {
        try await withTestDatabase { db in
            try await seedAlerts(db)
            let admin = try await db.createKey(name: "ops", scopes: [.admin])
            let reader = try await db.createKey(name: "viewer", scopes: [.read])
            let alertID: Int = try await db.withPool(size: 1) { pool in
                try await pool.query("SELECT min(id) AS id FROM alerts")[0].decode("id")
            }
            try await withRunningApp(db) { app in
                let login = try await app.client.post("/monitoring/session", json: #"{"key":"\#(admin)"}"#)
                let cookie = try #require(sessionCookie(login))
                let csrf = try #require(try login.json()["csrf_token"] as? String)
                let action = #"{"id":\#(alertID),"action":"acknowledge"}"#
                let missing = try await app.client.post("/api/monitoring/alerts", json: action, headers: ["Cookie": cookie])
                #expect(missing.status == 403)
                #expect(missing.errorCode == "csrf_failed")
                let wrong = try await app.client.post("/api/monitoring/alerts", json: action, headers: ["Cookie": cookie, "X-CSRF-Token": "nope"])
                #expect(wrong.status == 403)
                let acked = try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT count(*) AS n FROM alerts WHERE status = 'acknowledged'")[0].decode("n", as: Int.self)
                }
                #expect(acked == 0)
                let ok = try await app.client.post("/api/monitoring/alerts", json: action, headers: ["Cookie": cookie, "X-CSRF-Token": csrf])
                #expect(ok.status == 200)
                #expect((try ok.json()["alert"] as? [String: Any])?["acknowledged_by"] as? String == "ops")

                let readLogin = try await app.client.post("/monitoring/session", json: #"{"key":"\#(reader)"}"#)
                let readCookie = try #require(sessionCookie(readLogin))
                let readCSRF = try #require(try readLogin.json()["csrf_token"] as? String)
                let denied = try await app.client.post("/api/monitoring/alerts", json: #"{"id":\#(alertID),"action":"resolve"}"#,
                                                       headers: ["Cookie": readCookie, "X-CSRF-Token": readCSRF])
                #expect(denied.status == 403)
                #expect(denied.errorCode == "forbidden")
                #expect(try await app.client.request("POST", "/api/workers/alert-checker",
                                                     headers: ["Cookie": readCookie, "X-CSRF-Token": readCSRF]).status == 403)
            }
        }
    }

    @Test("the live stream delivers an alert as it fires")
    func stream() async throws {
        try await withTestDatabase { db in
            let reader = try await db.createKey(scopes: [.read])
            try await withRunningApp(db) { app in
                let text = try await app.client.stream(
                    "/api/monitoring/stream", headers: ["Authorization": "Bearer \(reader)"],
                    started: {
                        // Give the server a moment to subscribe, then make an alert fire.
                        try await Task.sleep(for: .milliseconds(300))
                        try await seedAlerts(db)
                    },
                    until: { $0.contains("token_refresh_failures") })
                #expect(text.contains("HTTP/1.1 200"))
                #expect(text.lowercased().contains("content-type: text/event-stream"))
                #expect(text.contains("event: hello"))
                #expect(text.contains("event: alert"))
                #expect(text.contains(#""type":"alert.fired""#))
                #expect(text.contains("token_refresh_failures"))
                let unauthenticated = try await app.client.get("/api/monitoring/stream")
                #expect(unauthenticated.status == 401)
            }
        }
    }
}
