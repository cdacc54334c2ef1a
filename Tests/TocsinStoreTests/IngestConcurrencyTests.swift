import Foundation
import Logging
import PostgresClient
import TestSupport
import Testing
import TocsinCore
@testable import TocsinStore

/// Concurrent ingestion: rollup shards leased per transaction, past hours'
/// shards merged, and the announcement of new events sent after commit.
@Suite("Concurrent ingestion")
struct IngestConcurrencyTests {
    static let snapshot: PostgresQuery = """
        SELECT hour, name, platform, sum(count) AS n, round(sum(sum)::numeric, 6) AS s, min(min) AS lo, max(max) AS hi,
               tocsin_histogram_sum(histogram)::text AS h
        FROM metric_rollups GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """

    static func rows(_ pool: PostgresPool, _ query: PostgresQuery) async throws -> [[String?]] {
        try await pool.query(query).map { row in try (0..<row.columns.count).map { try row.decode($0, as: String?.self) } }
    }

    /// Events over the last three whole hours and the current one.
    static func batch(_ seed: Int) -> [MetricEvent] {
        let hour = (Date().timeIntervalSince1970 / 3600).rounded(.down) * 3600
        return (0..<40).map { i in
            let at = hour - 3 * 3600 + Double((seed * 40 + i) * 397 % (3 * 3600)) + (i % 4 == 3 ? 3 * 3600 : 0)
            let occurred = Date(timeIntervalSince1970: min(at, Date().timeIntervalSince1970 - 1))
            return i % 3 == 0
                ? MetricEvent(name: "webhook.latency", platform: "tiktok", value: Double(i % 9) / 4 + 0.01, occurredAt: occurred)
                : MetricEvent(name: i % 5 == 0 ? "upload.failure" : "upload.success", platform: i % 2 == 0 ? "tiktok" : "instagram",
                              occurredAt: occurred)
        }
    }

    @Test("each open transaction leases its own rollup shard; with every shard leased the next one waits")
    func leases() async throws {
        try await withTestDatabase { db in
            let url = db.url
            try await blocking {
                let holders = try (0..<Int(MetricEventRepository.rollupShards)).map { _ in try PostgresConnection.connect(url) }
                let waiter = try PostgresConnection.connect(url)
                defer { (holders + [waiter]).forEach { $0.close() } }
                var shards: [Int] = []
                for connection in holders {
                    try connection.execute(script: "BEGIN")
                    shards.append(try connection.query("SELECT \(MetricEventRepository.leaseShard()) AS s")[0].decode("s"))
                }
                #expect(Set(shards) == Set(0..<Int(MetricEventRepository.rollupShards)), "\(shards)")
                // All sixteen taken: the seventeenth waits (here: until its lock timeout).
                try waiter.execute(script: "BEGIN; SET LOCAL lock_timeout = '300ms'")
                let waited = #expect(throws: PostgresError.self) {
                    try waiter.query("SELECT \(MetricEventRepository.leaseShard()) AS s")
                }
                #expect(waited?.sqlState == "55P03", "\(String(describing: waited))")
                try waiter.execute(script: "ROLLBACK")
                // One holder commits: its shard is free again, and the only one.
                try holders[5].execute(script: "COMMIT")
                try waiter.execute(script: "BEGIN")
                #expect(try waiter.query("SELECT \(MetricEventRepository.leaseShard()) AS s")[0].decode("s", as: Int.self) == shards[5])
                try waiter.execute(script: "ROLLBACK")
            }
        }
    }

    @Test("batches ingested at once each add their rollups once, on shards of their own")
    func concurrentBatches() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore(size: 8) { pool, store in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for seed in 0..<32 {
                        group.addTask { _ = try await store.events.ingest(Self.batch(seed), now: Date()) }
                    }
                    try await group.waitForAll()
                }
                let kept = try await Self.rows(pool, Self.snapshot)
                let shards: Int = try await pool.query("SELECT count(DISTINCT shard) AS n FROM metric_rollups")[0].decode("n")
                #expect(shards > 1)
                try await pool.query("SELECT tocsin_rebuild_rollups('-infinity', 'infinity')")
                #expect(kept == (try await Self.rows(pool, Self.snapshot)))
                #expect(kept.count > 0)
            }
        }
    }

    @Test("compaction merges each past hour into one row per name and platform, totals unchanged; the current hour stays")
    func compaction() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore(size: 4) { pool, store in
                for seed in 0..<8 { _ = try await store.events.ingest(Self.batch(seed), now: Date()) }
                let kept = try await Self.rows(pool, Self.snapshot)
                let currentHour: PostgresQuery = "date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
                let current: PostgresQuery = "SELECT shard, name, platform, count FROM metric_rollups WHERE hour >= \(currentHour) ORDER BY 1, 2, 3"
                let currentRows = try await Self.rows(pool, current)
                let spread: Int = try await pool.query(
                    "SELECT count(*) AS n FROM metric_rollups WHERE shard > 0 AND hour < \(currentHour)")[0].decode("n")
                #expect(spread > 0)
                // Two hours at a time: the three past hours take two rounds.
                var rounds = 0, merged = 0
                while true {
                    let n = try await pool.withTransaction { try MetricEventRepository.compactRollups(hours: 2, connection: $0) }
                    if n == 0 { break }
                    rounds += 1
                    merged += n
                }
                #expect(rounds == 2)
                #expect(merged == spread)
                #expect(kept == (try await Self.rows(pool, Self.snapshot)))
                #expect(currentRows == (try await Self.rows(pool, current)))
                let duplicates: Int = try await pool.query(
                    """
                    SELECT count(*) AS n FROM (SELECT 1 FROM metric_rollups WHERE hour < \(currentHour)
                                               GROUP BY hour, name, platform HAVING count(*) > 1 OR min(shard) > 0) d
                    """)[0].decode("n")
                #expect(duplicates == 0)
                // A late event for a merged hour starts a new shard row; maintenance merges it.
                let late = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 3600).rounded(.down) * 3600 - 2 * 3600 + 60)
                var lateRows = 0
                for _ in 0..<4 {
                    _ = try await store.events.ingest([MetricEvent(name: "upload.success", platform: "tiktok", occurredAt: late)], now: Date())
                }
                lateRows = try await pool.query(
                    "SELECT count(*) AS n FROM metric_rollups WHERE shard > 0 AND hour < \(currentHour)")[0].decode("n")
                let report = try await store.maintenance.run(.init())
                #expect(report.rollupRowsMerged == lateRows)
                #expect(try await pool.query(
                    "SELECT count(*) AS n FROM metric_rollups WHERE shard > 0 AND hour < \(currentHour)")[0].decode("n", as: Int.self) == 0)
                let rebuilt = try await Self.rows(pool, Self.snapshot)
                try await pool.query("SELECT tocsin_rebuild_rollups('-infinity', 'infinity')")
                #expect(rebuilt == (try await Self.rows(pool, Self.snapshot)))
            }
        }
    }

    @Test("names split into payloads under NOTIFY's limit, none dropped, in order")
    func payloads() {
        let names = (0..<200).map { "metric_\($0)." + String(repeating: "x", count: 100) }
        let payloads = EventAnnouncer.payloads(names)
        #expect(payloads.count > 1)
        #expect(payloads.allSatisfy { $0.utf8.count <= EventAnnouncer.payloadLimit })
        #expect(payloads.flatMap { $0.split(separator: ",").map(String.init) } == names)
        #expect(EventAnnouncer.payloads([]) == [])
        #expect(EventAnnouncer.payloads(["a"]) == ["a"])
    }

    @Test("announcements coalesce: one in flight at a time, the names committed meanwhile go once in the next")
    func coalescing() async throws {
        let sent = Locked<[[String]]>([])
        let inFlight = Locked(0), most = Locked(0)
        let release = AsyncStream<Void>.makeStream()
        let announcer = EventAnnouncer(logger: Logger(label: "test"), spacing: .zero) { payloads in
            let now = inFlight.withLock { $0 += 1; return $0 }
            most.withLock { $0 = max($0, now) }
            let count = sent.withLock { $0.append(payloads); return $0.count }
            // The first send waits until the test releases it.
            if count == 1 {
                var iterator = release.stream.makeAsyncIterator()
                _ = await iterator.next()
            }
            inFlight.withLock { $0 -= 1 }
        }
        announcer.announce(["a", "b", "a"])
        #expect(try await eventually { sent.value.count == 1 })
        announcer.announce(["c"])
        announcer.announce(["b", "c", "d"])
        try await Task.sleep(for: .milliseconds(100))
        #expect(sent.value.count == 1)
        release.continuation.yield()
        #expect(try await eventually { sent.value.count == 2 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(sent.value == [["a,b"], ["c,b,d"]])
        #expect(most.value == 1)
        // Idle again: the next announcement goes at once.
        announcer.announce(["e"])
        #expect(try await eventually { sent.value.count == 3 })
        #expect(sent.value.last == ["e"])
    }

    @Test("announcements are spaced: names announced within the spacing go together in the next")
    func spacing() async throws {
        let sent = Locked<[[String]]>([])
        let announcer = EventAnnouncer(logger: Logger(label: "test"), spacing: .seconds(1)) { payloads in
            sent.withLock { $0.append(payloads) }
        }
        announcer.announce(["a"])
        #expect(try await eventually { sent.value.count == 1 })
        announcer.announce(["b"])
        announcer.announce(["c", "b"])
        #expect(try await eventually { sent.value.count == 2 })
        #expect(sent.value == [["a"], ["b,c"]])
    }

    @Test("an ingested batch is announced on tocsin_events after it committed, every name, beyond one payload's limit")
    func announcedAfterCommit() async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore(size: 2) { pool, store in
                let listener = PostgresListener(conninfo: db.url, channels: ["tocsin_events"], logger: Logger(label: "test"))
                let stream = listener.events()
                listener.start()
                var iterator = stream.makeAsyncIterator()
                #expect(await iterator.next() == .listening)
                let names = (0..<100).map { "m\($0)." + String(repeating: "n", count: 120) }
                _ = try await store.events.ingest(names.map { MetricEvent(name: $0) }, now: Date())
                var received: [String] = []
                while received.count < names.count, let event = await iterator.next() {
                    guard case .notification(let n) = event else { continue }
                    // Delivered after the commit: the events are there.
                    let stored: Int = try await pool.query("SELECT count(*) AS n FROM metric_events")[0].decode("n")
                    #expect(stored == names.count)
                    received += n.payload.split(separator: ",").map(String.init)
                }
                // Each name once (their order is not part of the contract).
                #expect(received.count == names.count)
                #expect(Set(received) == Set(names))
                await listener.stop()
            }
        }
    }
}
