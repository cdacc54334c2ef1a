import Foundation
import TestSupport
import Testing

/// The live stream's bounds: a stream ends within seconds of its key being
/// revoked or its session signed out, and streams are capped per key and
/// per process.
@Suite("Live stream limits")
struct StreamLimitTests {
    @Test("a stream ends with an end event within seconds of its key being revoked")
    func revokedKey() async throws {
        try await withTestDatabase { db in
            let key = try await db.createKey(name: "wallboard", scopes: [.read])
            try await withRunningApp(db) { app in
                let text = try await app.client.stream(
                    "/api/monitoring/stream", headers: ["Authorization": "Bearer \(key)"], timeout: 20,
                    started: {
                        try await db.withPool(size: 1) { pool in
                            _ = try await pool.query("UPDATE api_keys SET revoked_at = now() WHERE name = 'wallboard'")
                        }
                    },
                    until: { $0.contains("event: end") })
                #expect(text.contains("event: hello"))
                #expect(text.contains("event: end"), "\(text.suffix(500))")
                #expect(text.contains(#""reason":"signed_out""#))
                // And the key opens no new one.
                let again = try await app.client.get("/api/monitoring/stream", headers: ["Authorization": "Bearer \(key)"])
                #expect(again.status == 401)
            }
        }
    }

    @Test("a dashboard's stream ends when its session is signed out")
    func signedOut() async throws {
        try await withTestDatabase { db in
            let key = try await db.createKey(scopes: [.read])
            try await withRunningApp(db) { app in
                let login = try await app.client.post("/monitoring/session", json: #"{"key":"\#(key)"}"#)
                let cookie = try #require(sessionCookie(login))
                let csrf = try #require(try login.json()["csrf_token"] as? String)
                let text = try await app.client.stream(
                    "/api/monitoring/stream", headers: ["Cookie": cookie], timeout: 20,
                    started: {
                        let out = try await app.client.request("DELETE", "/monitoring/session",
                                                               headers: ["Cookie": cookie, "X-CSRF-Token": csrf])
                        #expect(out.status == 200)
                    },
                    until: { $0.contains("event: end") })
                #expect(text.contains("event: end"), "\(text.suffix(500))")
            }
        }
    }

    @Test("beyond STREAM_MAX_PER_KEY a key gets 429; beyond STREAM_MAX the process answers 503")
    func caps() async throws {
        try await withTestDatabase { db in
            let first = try await db.createKey(scopes: [.read])
            let second = try await db.createKey(scopes: [.read])
            try await withRunningApp(db, configure: { $0.maxStreamsPerKey = 2; $0.maxStreams = 3 }) { app in
                // Two streams of the first key and one of the second stay open meanwhile.
                let holders = (0..<3).map { index in
                    Task {
                        try await app.client.stream(
                            "/api/monitoring/stream", headers: ["Authorization": "Bearer \(index < 2 ? first : second)"],
                            timeout: 6, started: {}, until: { _ in false })
                    }
                }
                defer { holders.forEach { $0.cancel() } }
                #expect(try await eventually {
                    // Until the holders are in, this one is admitted and ends at its timeout (an error).
                    let busy = try? await app.client.request("GET", "/api/monitoring/stream",
                                                             headers: ["Authorization": "Bearer \(first)"], timeout: 1)
                    return busy?.status == 429
                })
                let perKey = try await app.client.get("/api/monitoring/stream", headers: ["Authorization": "Bearer \(first)"])
                #expect(perKey.status == 429)
                #expect(perKey.errorCode == "too_many_streams")
                #expect(perKey.header("retry-after") != nil)
                let full = try await app.client.get("/api/monitoring/stream", headers: ["Authorization": "Bearer \(second)"])
                #expect(full.status == 503, "\(full.text)")
                #expect(full.header("retry-after") == "5")
                for holder in holders { _ = try? await holder.value }
            }
        }
    }
}
