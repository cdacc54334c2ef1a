import Foundation
import PostgresClient
import TestSupport
import Testing

/// Reads cannot starve writes: in a real `tocsin run` whose read pool is
/// saturated by slow reads, events are still ingested and an alert still
/// fires, while the reads wait their turn.
@Suite("Reads against ingestion and evaluation", .serialized)
struct StarvationTests {
    @Test("40 slow reads on a read pool of 2: events are ingested and an alert fires before the reads are through")
    func saturatedReads() async throws {
        try await withTestDatabase { db in
            // The read pool's server answers slowly: every chunk it sends waits 0.5 s.
            let upstream = try #require(URLComponents(string: db.url)?.port)
            let slow = try FaultProxy(upstreamPort: upstream)
            defer { slow.stop() }
            slow.setLatency(0.5)
            var readURL = try #require(URLComponents(string: db.url))
            readURL.port = slow.port
            let read = try await db.createKey(scopes: [.read])
            let ingest = try await db.createKey(scopes: [.ingest])
            let port = try freePort()
            let server = try TestProcess.launch(["run", "--port", "\(port)"], environment: [
                "DATABASE_URL": db.url, "DATABASE_READ_URL": try #require(readURL.string), "DB_READ_POOL_SIZE": "2",
                "DB_POOL_SIZE": "4", "READ_TIMEOUT": "5m", "ALERT_CHECK_INTERVAL": "1", "RATE_LIMITS": "read=0,ingest=0",
                "LOG_LEVEL": "error",
            ])
            let client = TestHTTPClient(port: port)
            #expect(try await eventually { (try? await client.get("/readyz"))?.status == 200 }, "stderr: \(server.stderr)")

            // no-cache: each read is its own query (identical summaries
            // would otherwise share one computation).
            let completed = Locked(0)
            let reads = Task {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<40 {
                        group.addTask {
                            let response = try await client.request(
                                "GET", "/api/monitoring/metrics", headers: ["Authorization": "Bearer \(read)", "Cache-Control": "no-cache"],
                                timeout: 300)
                            completed.withLock { $0 += 1 }
                            return response.status
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
            }
            try await Task.sleep(for: .seconds(1))  // the reads are queued on the read pool

            let events = (0..<6).map { _ in #"{"name": "oauth.failure", "platform": "tiktok"}"# }.joined(separator: ",")
            let accepted = try await client.post("/api/metrics", json: "[\(events)]", headers: ["Authorization": "Bearer \(ingest)"])
            #expect(accepted.status == 202, "\(accepted.text)")
            let fired = try await eventually(timeout: .seconds(30)) {
                try await db.withPool(size: 1) { pool in
                    try await pool.query(
                        "SELECT count(*) AS n FROM alerts WHERE rule_name = 'oauth_failures' AND status = 'firing'"
                    )[0].decode("n", as: Int.self)
                } == 1
            }
            let readsDone = completed.withLock { $0 }
            #expect(fired, "stderr: \(server.stderr.suffix(2000))")
            // Ingested and fired while most reads were still waiting for the read pool.
            #expect(readsDone < 30, "\(readsDone) of 40 reads had finished")

            let statuses = try await reads.value
            #expect(statuses.count == 40 && statuses.allSatisfy { $0 == 200 }, "\(statuses)")
            #expect(server.exitStatus == nil)
            server.signal(SIGTERM)
            #expect(try await server.wait() == 0, "stderr: \(server.stderr.suffix(2000))")
        }
    }
}
