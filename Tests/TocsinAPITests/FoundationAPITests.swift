import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore
import TocsinCrypto

@Suite("HTTP skeleton: health, errors, request ids, body limit")
struct SkeletonTests {
    @Test("healthz, JSON 404 and request ids")
    func basics() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let health = try await app.client.get("/healthz")
                #expect(health.status == 200)
                #expect(health.header("x-request-id")?.isEmpty == false)

                let missing = try await app.client.get("/no/such/route", headers: ["X-Request-Id": "req-abc.123"])
                #expect(missing.status == 404)
                #expect(missing.errorCode == "not_found")
                #expect(missing.header("content-type")?.hasPrefix("application/json") == true)
                #expect(missing.header("x-request-id") == "req-abc.123")

                // A known path with another method is a 405 that says which methods work.
                let wrongMethod = try await app.client.request("DELETE", "/api/rules/some_rule")
                #expect(wrongMethod.status == 405)
                #expect(wrongMethod.errorCode == "method_not_allowed")
                #expect(wrongMethod.header("allow") == "GET")
                #expect(try await app.client.request("PUT", "/api/metrics").header("allow") == "POST")

                // An unusable request id is replaced, not echoed.
                let odd = try await app.client.get("/healthz", headers: ["X-Request-Id": "bad id with spaces"])
                #expect(odd.header("x-request-id") != "bad id with spaces")
                #expect(odd.header("x-request-id")?.isEmpty == false)
            }
        }
    }

    @Test("bodies over the limit get 413 with the JSON error body")
    func bodyLimit() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db, configure: { $0.maxBodyBytes = 2048 }) { app in
                let key = try await db.createKey(scopes: [.admin])
                let big = String(repeating: "a", count: 4096)
                let response = try await app.client.post("/api/whoami", json: big, headers: ["Authorization": "Bearer \(key)"])
                #expect(response.status == 413)
                #expect(response.errorCode == "payload_too_large")
            }
        }
    }

    @Test("readyz is 503 on a database whose migrations are behind")
    func readyBehind() async throws {
        try await withTestDatabase(migrated: false) { db in
            try await withRunningApp(db) { app in
                let response = try await app.client.get("/readyz")
                #expect(response.status == 503)
                #expect(response.errorCode == "not_ready")
                // The reason goes to the log, not to whoever asks: no schema details here.
                #expect(response.text.contains("the server log says why"))
                #expect(!response.text.contains("migration") && !response.text.contains("0001"))
            }
        }
    }

    @Test("readyz is 503 while the database is down and 200 when it is back")
    func readyDatabaseDown() async throws {
        let server = try await PrivatePostgres.start()
        do {
            let store = try Store(configuration: .init(databaseURL: server.url, poolSize: 1, readPoolSize: 1),
                                  migrator: try Migrator.load(directory: URL(fileURLWithPath: TestEnvironment.migrationsDirectory)),
                                  logger: .init(label: "test"))
            try await store.migrate()
            await store.close()
            let app = try await RunningApp.start(databaseURL: server.url)
            #expect(try await app.client.get("/readyz").status == 200)
            try await server.stop()
            let down = try await app.client.get("/readyz")
            #expect(down.status == 503)
            #expect(down.errorCode == "not_ready")
            // Liveness does not depend on the database.
            #expect(try await app.client.get("/healthz").status == 200)
            try await server.startAgain()
            #expect(try await app.client.get("/readyz").status == 200)
            await app.stop()
        } catch {
            await server.destroy()
            throw error
        }
        await server.destroy()
    }
}

@Suite("API keys and authentication")
struct AuthTests {
    @Test("401 without a key, with an unknown key and with a revoked key; 200 with a valid one")
    func authentication() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let none = try await app.client.get("/api/whoami")
                #expect(none.status == 401)
                #expect(none.errorCode == "unauthorized")

                let unknown = try await app.client.get("/api/whoami", headers: ["Authorization": "Bearer tsn_not-a-real-key"])
                #expect(unknown.status == 401)

                let malformed = try await app.client.get("/api/whoami", headers: ["Authorization": "Basic abc"])
                #expect(malformed.status == 401)

                let key = try await db.createKey(name: "reader", scopes: [.read])
                let ok = try await app.client.get("/api/whoami", headers: ["Authorization": "Bearer \(key)"])
                #expect(ok.status == 200)
                let body = try ok.json()
                #expect(body["name"] as? String == "reader")
                #expect(body["scopes"] as? [String] == ["read"])

                try await db.withStore { store in try await store.apiKeys.revoke(name: "reader") }
                let revoked = try await app.client.get("/api/whoami", headers: ["Authorization": "Bearer \(key)"])
                #expect(revoked.status == 401)
                #expect(revoked.text.contains("revoked"))
            }
        }
    }

    @Test("keys are stored only as SHA-256 hashes")
    func hashedAtRest() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, keys in
                let store = keys.apiKeys
                let (key, record) = try await store.create(name: "ingester", scopes: [.ingest, .read])
                #expect(key.hasPrefix("tsn_"))
                #expect(record.scopes == [.ingest, .read])
                let rows = try await pool.query("SELECT row_to_json(k)::text AS everything FROM api_keys k")
                let stored: String = try rows[0].decode("everything")
                #expect(!stored.contains(key))
                #expect(!stored.contains(String(key.dropFirst(4))))
                #expect(stored.contains(Crypto.sha256Hex(key)))
                // A second active key with the same name is refused; nothing is stored.
                await #expect(throws: ApiKeyError.self) { try await store.create(name: "ingester", scopes: [.read]) }
                #expect(try await store.list().count == 1)
                await #expect(throws: ApiKeyError.self) { try await store.create(name: "bad name!", scopes: [.read]) }
                #expect(try await store.list().count == 1)
                // Revoked keys fail authentication; the name can be reused.
                try await store.revoke(name: "ingester")
                #expect(try await store.authenticate(key: key) == .revoked)
                _ = try await store.create(name: "ingester", scopes: [.read])
                await #expect(throws: ApiKeyError.self) { try await store.revoke(name: "nobody") }
            }
        }
    }
}
