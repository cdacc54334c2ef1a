import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore

/// DATABASE_READ_URL against a real streaming standby: reads see replicated
/// data and say how stale it may be; with the standby gone they fall back to
/// the primary, and return to the standby once it answers again.
@Suite("Reads from a standby", .serialized)
struct ReplicaReadTests {
    static func lag(_ response: TestHTTPResponse) -> Double? {
        response.header("x-tocsin-read-lag").flatMap(Double.init)
    }

    static func eventCount(_ response: TestHTTPResponse) throws -> Int {
        (try response.json()["events"] as? [Any])?.count ?? -1
    }

    @Test("replicated data with its lag, a paused standby reported stale, fallback to the primary and back")
    func replicaReads() async throws {
        let primary = try await PrivatePostgres.start(replication: true)
        let standby = Locked<PrivatePostgres?>(nil)
        var app: RunningApp?
        do {
            try await scenario(primary, standby: standby, app: &app)
        } catch {
            Issue.record(error)
        }
        await app?.stop()
        await standby.value?.destroy()
        await primary.destroy()
    }

    func scenario(_ primary: PrivatePostgres, standby: Locked<PrivatePostgres?>, app appOut: inout RunningApp?) async throws {
        let migrated = try await TestProcess.run(["migrate"], environment: ["DATABASE_URL": primary.url])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        let store = try Store(configuration: .init(databaseURL: primary.url, poolSize: 1),
                              migrator: try Migrator.load(directory: URL(fileURLWithPath: TestEnvironment.migrationsDirectory)),
                              logger: .init(label: "test"))
        let read = try await store.apiKeys.create(name: "reader", scopes: [.read]).key
        let ingest = try await store.apiKeys.create(name: "ingest", scopes: [.ingest]).key
        await store.close()
        let replica = try await primary.startStandby()
        standby.withLock { $0 = replica }

        let app = try await RunningApp.start(databaseURL: primary.url) { $0.databaseReadURL = replica.url + "?connect_timeout=2" }
        appOut = app
        let auth = ["Authorization": "Bearer \(read)"]
        @Sendable func post(_ n: Int) async throws {
            let events = (0..<n).map { _ in #"{"name": "upload.success", "platform": "tiktok"}"# }.joined(separator: ",")
            let accepted = try await app.client.post("/api/metrics", json: "[\(events)]", headers: ["Authorization": "Bearer \(ingest)"])
            #expect(accepted.status == 202)
        }
        @Sendable func events() async throws -> TestHTTPResponse {
            try await app.client.get("/api/monitoring/events?limit=100", headers: auth)
        }

        // Written on the primary, read on the standby once replayed, with a small lag.
        try await post(3)
        #expect(try await eventually { try Self.eventCount(try await events()) == 3 })
        let fresh = try await events()
        #expect(fresh.status == 200)
        let freshLag = try #require(Self.lag(fresh), "a read from the standby carries X-Tocsin-Read-Lag")
        #expect(freshLag >= 0 && freshLag < 5)

        // Replay paused: the standby falls behind, and the answers say so.
        let control = try PostgresConnection.connect(replica.url)
        try control.query("SELECT pg_wal_replay_pause()")
        try await post(2)
        #expect(try await eventually(timeout: .seconds(15)) { (Self.lag(try await events()) ?? 0) > 2 })
        let stale = try await events()
        #expect(try Self.eventCount(stale) == 3, "the paused standby does not have the new events yet")
        try control.query("SELECT pg_wal_replay_resume()")
        control.close()
        #expect(try await eventually { try Self.eventCount(try await events()) == 5 })

        // The standby dies: reads fall back to the primary (no lag header), nothing fails.
        try await replica.crash()
        try await post(1)
        let fallback = try await events()
        #expect(fallback.status == 200, "\(fallback.text)")
        #expect(try Self.eventCount(fallback) == 6)
        #expect(Self.lag(fallback) == nil)
        let summary = try await app.client.get("/api/monitoring/metrics", headers: auth)
        #expect(summary.status == 200)

        // Back up: reads return to it within seconds.
        try await replica.startAgain()
        #expect(try await eventually(timeout: .seconds(30)) { Self.lag(try await events()) != nil })
    }
}
