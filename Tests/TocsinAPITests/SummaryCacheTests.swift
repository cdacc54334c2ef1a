import Foundation
import Synchronization
import TestSupport
import Testing
@testable import TocsinAPI
import TocsinCore
import TocsinStore

/// A summary whose one aggregate counts how many times it was computed.
private func summary(_ n: Int) -> MetricsSummary {
    MetricsSummary(range: TimeRange(since: Date(timeIntervalSince1970: 0), until: Date(timeIntervalSince1970: 60)),
                   aggregates: [.init(platform: nil, isTotal: true, name: "upload.success", count: n, average: nil, p95: nil)])
}

private final class Computations: Sendable {
    let count = Mutex(0)
    func next() -> Int { count.withLock { $0 += 1; return $0 } }
    var value: Int { count.withLock { $0 } }
}

@Suite("The summary cache")
struct SummaryCacheTests {
    @Test("concurrent requests for one summary share one computation; later ones reuse it while fresh")
    func singleFlight() async throws {
        let cache = SummaryCache(ttl: .seconds(3600))
        let computed = Computations()
        let (gate, open) = AsyncStream<Void>.makeStream()
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await cache.summary(key: "window=24h", bypass: false) {
                        for await _ in gate { break }  // held until every request is waiting
                        return summary(computed.next())
                    }.totals.upload.success
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            open.yield()
            open.finish()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(computed.value == 1)
        #expect(results == Array(repeating: 1, count: 20))
        let again = try await cache.summary(key: "window=24h", bypass: false) { summary(computed.next()) }
        #expect(again.totals.upload.success == 1)
        #expect(computed.value == 1)
        // Another query is another summary.
        let other = try await cache.summary(key: "window=1h", bypass: false) { summary(computed.next()) }
        #expect(other.totals.upload.success == 2)
    }

    @Test("no-cache, a zero TTL and a failure each compute afresh; a failure is not kept")
    func bypasses() async throws {
        let computed = Computations()
        let cache = SummaryCache(ttl: .seconds(3600))
        _ = try await cache.summary(key: "k", bypass: false) { summary(computed.next()) }
        let fresh = try await cache.summary(key: "k", bypass: true) { summary(computed.next()) }
        #expect(fresh.totals.upload.success == 2)
        // The bypass left the cached one alone.
        #expect(try await cache.summary(key: "k", bypass: false) { summary(computed.next()) }.totals.upload.success == 1)

        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await cache.summary(key: "failing", bypass: false) { throw Refused() }
        }
        #expect(try await cache.summary(key: "failing", bypass: false) { summary(computed.next()) }.totals.upload.success == 3)

        let off = SummaryCache(ttl: .zero)
        _ = try await off.summary(key: "k", bypass: false) { summary(computed.next()) }
        #expect(try await off.summary(key: "k", bypass: false) { summary(computed.next()) }.totals.upload.success == 5)
        #expect(off.count == 0)
    }

    @Test("it holds at most maxEntries summaries; beyond, queries are answered without being kept")
    func bounded() async throws {
        let computed = Computations()
        let cache = SummaryCache(ttl: .seconds(3600))
        for i in 0..<(SummaryCache.maxEntries + 10) {
            _ = try await cache.summary(key: "window=\(i)m", bypass: false) { summary(computed.next()) }
        }
        #expect(cache.count == SummaryCache.maxEntries)
        #expect(computed.value == SummaryCache.maxEntries + 10)
        let beyond = try await cache.summary(key: "window=\(SummaryCache.maxEntries + 5)m", bypass: false) {
            summary(computed.next())
        }
        #expect(beyond.totals.upload.success == SummaryCache.maxEntries + 11)
    }

    @Test("through the server: Cache-Control no-cache and SUMMARY_CACHE_MS=0 read events posted a moment ago")
    func server() async throws {
        try await withTestDatabase { db in
            let key = try await db.createKey(scopes: [.ingest, .read])
            let auth = ["Authorization": "Bearer \(key)"]
            func successes(_ app: RunningApp, _ headers: [String: String]) async throws -> Int? {
                let body = try await app.client.get("/api/monitoring/metrics?window=1h", headers: headers).json()
                return ((body["totals"] as? [String: Any])?["upload"] as? [String: Any])?["success"] as? Int
            }
            try await withRunningApp(db) { app in
                try await post(app, key: key, [event("upload.success", platform: "tiktok")])
                #expect(try await successes(app, auth) == 1)
                try await post(app, key: key, [event("upload.success", platform: "tiktok")])
                #expect(try await successes(app, auth.merging(["Cache-Control": "no-cache"]) { $1 }) == 2)
            }
            try await withRunningApp(db, configure: { $0.summaryCacheMilliseconds = 0 }) { app in
                #expect(try await successes(app, auth) == 2)
                try await post(app, key: key, [event("upload.success", platform: "tiktok")])
                #expect(try await successes(app, auth) == 3)
            }
        }
    }
}
