import Foundation
import Logging
import PostgresClient
import TestSupport
import Testing

/// The pool when connections fail at the worst moments, through a proxy
/// that cuts the connection right after forwarding a statement: a write is
/// never run twice, work that certainly did not commit is run again.
@Suite("Pool: lost replies, deadlines, cancellation", .serialized)
struct FailureTests {
    /// The test database's URL with the proxy's port.
    static func proxied(_ db: TestDatabase) throws -> (FaultProxy, String) {
        var components = try #require(URLComponents(string: db.url))
        let proxy = try FaultProxy(upstreamPort: try #require(components.port))
        components.port = proxy.port
        return (proxy, try #require(components.string))
    }

    static func count(_ db: TestDatabase) async throws -> Int {
        try await db.withPool(size: 1) { try await $0.query("SELECT count(*) AS n FROM t")[0].decode("n") }
    }

    @Test("a COMMIT whose reply is lost is not run again, and says its outcome is unknown")
    func commitReplyLost() async throws {
        try await withTestDatabase(migrated: false) { db in
            _ = try await db.withPool(size: 1) { try await $0.query("CREATE TABLE t (v int)") }
            let (proxy, url) = try Self.proxied(db)
            defer { proxy.stop() }
            let pool = PostgresPool(configuration: .init(conninfo: url, size: 2), logger: Logger(label: "test"))
            let runs = Locked(0)
            proxy.cutAfter("COMMIT")
            do {
                try await pool.withTransaction { connection in
                    runs.withLock { $0 += 1 }
                    try connection.query("INSERT INTO t VALUES (1)")
                }
                Issue.record("the transaction reported success although its reply was lost")
            } catch let error as PostgresError {
                #expect(error.outcomeUnknown, "\(error)")
                #expect(error.isConnectionFailure)
            }
            #expect(proxy.cuts == 1)
            #expect(runs.value == 1, "the transaction was run again after its COMMIT was sent")
            // The server did commit it, once.
            #expect(try await Self.count(db) == 1)
            // The pool recovers: the next transaction commits.
            try await pool.withTransaction { try $0.query("INSERT INTO t VALUES (2)") }
            #expect(try await Self.count(db) == 2)
            await pool.close()
        }
    }

    @Test("a transaction whose connection is lost before COMMIT is run again, once, and commits once")
    func lostBeforeCommit() async throws {
        try await withTestDatabase(migrated: false) { db in
            _ = try await db.withPool(size: 1) { try await $0.query("CREATE TABLE t (v int)") }
            let (proxy, url) = try Self.proxied(db)
            defer { proxy.stop() }
            let pool = PostgresPool(configuration: .init(conninfo: url, size: 2), logger: Logger(label: "test"))
            let runs = Locked(0)
            proxy.cutAfter("INSERT INTO t")
            try await pool.withTransaction { connection in
                runs.withLock { $0 += 1 }
                try connection.query("INSERT INTO t VALUES (1)")
            }
            #expect(proxy.cuts == 1)
            #expect(runs.value == 2)
            #expect(try await Self.count(db) == 1)
            await pool.close()
        }
    }

    @Test("an autocommit write whose reply is lost is not run again")
    func autocommitReplyLost() async throws {
        try await withTestDatabase(migrated: false) { db in
            _ = try await db.withPool(size: 1) { try await $0.query("CREATE TABLE t (v int)") }
            let (proxy, url) = try Self.proxied(db)
            defer { proxy.stop() }
            let pool = PostgresPool(configuration: .init(conninfo: url, size: 2), logger: Logger(label: "test"))
            // A first query opens the connection (the cut must hit the insert).
            try await pool.query("SELECT 1")
            proxy.cutAfter("INSERT INTO t")
            await #expect(throws: PostgresError.self) { try await pool.query("INSERT INTO t VALUES (1)") }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await Self.count(db) == 1, "the insert ran twice, or never")
            await pool.close()
        }
    }

    @Test("a deadline cancels the running query on the server; the connection goes back healthy")
    func deadline() async throws {
        try await withTestDatabase(migrated: false) { db in
            try await db.withPool(size: 1) { pool in
                let before: Int = try await pool.query("SELECT pg_backend_pid() AS pid")[0].decode("pid")
                let started = ContinuousClock.now
                do {
                    _ = try await pool.withConnection(deadline: .milliseconds(300)) { try $0.query("SELECT pg_sleep(20)") }
                    Issue.record("the query outlived its deadline")
                } catch let error as PostgresError {
                    #expect(error.kind == .cancelled, "\(error)")
                }
                #expect(ContinuousClock.now - started < .seconds(10))
                let after: Int = try await pool.query("SELECT pg_backend_pid() AS pid")[0].decode("pid")
                #expect(after == before, "the connection was replaced instead of reused")
                // Nothing is left running on the server.
                let running: Int = try await pool.query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'")[0].decode("n")
                #expect(running == 0)
            }
        }
    }

    @Test("a caller that goes away cancels its query")
    func callerGoesAway() async throws {
        try await withTestDatabase(migrated: false) { db in
            try await db.withPool(size: 1) { pool in
                let task = Task {
                    try await pool.withConnection(deadline: .seconds(60)) { try $0.query("SELECT pg_sleep(20)") }
                }
                try await Task.sleep(for: .milliseconds(300))
                let started = ContinuousClock.now
                task.cancel()
                let outcome = await task.result
                #expect(ContinuousClock.now - started < .seconds(10))
                guard case .failure(let error) = outcome, let postgres = error as? PostgresError else {
                    Issue.record("the cancelled query did not fail: \(outcome)")
                    return
                }
                #expect(postgres.kind == .cancelled)
                #expect(try await pool.query("SELECT 41 + 1 AS n")[0].decode("n", as: Int.self) == 42)
            }
        }
    }
}

@Suite("PostgresQuery")
struct PostgresQueryTests {
    @Test("interpolated values are bound in order; fragments are renumbered; quoted dollars stay")
    func interpolation() {
        let name = "it's; DROP TABLE t", limit = 5
        let filter: PostgresQuery = "name = \(name) AND note <> '$1'"
        let query: PostgresQuery = "SELECT \(unescaped: "id") FROM t WHERE v > \(limit) AND \(filter) LIMIT \(limit)"
        #expect(query.sql == "SELECT id FROM t WHERE v > $1 AND name = $2 AND note <> '$1' LIMIT $3")
        #expect(query.bindings.map(\.postgresText) == ["5", "it's; DROP TABLE t", "5"])
        let optional: String? = nil
        let withNull: PostgresQuery = "SELECT \(optional)::text"
        #expect(withNull.sql == "SELECT $1::text")
        #expect(withNull.bindings.map(\.postgresText) == [nil])
        #expect(query.description == query.sql)
    }

    @Test("values with NUL are refused before they are sent (libpq would cut them short)")
    func nul() async throws {
        try await withTestDatabase(migrated: false) { db in
            try await db.withPool(size: 1) { pool in
                await #expect(throws: PostgresError.self) { try await pool.query("SELECT \("a\u{0}b")::text AS v") }
                let text: String = try await pool.query("SELECT \("ab")::text AS v")[0].decode("v")
                #expect(text == "ab")
            }
        }
    }
}

@Suite("The fault proxy of the tests")
struct FaultProxyTests {
    @Test("a second stop, after the listening socket's number is someone else's, touches nothing")
    func secondStopTouchesNothing() async throws {
        // Until the listener's number, once closed, is free for a socket of ours
        // (another thread of the test process may take it first).
        for _ in 0..<20 {
            let proxy = try FaultProxy(upstreamPort: 9)
            let number = proxy.listeningDescriptor
            proxy.stop()
            for _ in 0..<500 where !proxy.isClosed { try await Task.sleep(for: .milliseconds(10)) }
            #expect(proxy.isClosed)
            var pair: [Int32] = [0, 0]
            #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
            defer { close(pair[0]); close(pair[1]) }
            // The lowest free numbers: one of the pair's, when nothing took it first.
            guard let mine = pair.firstIndex(of: number) else { continue }
            proxy.stop()
            var byte: UInt8 = 7
            #expect(send(pair[mine], &byte, 1, Int32(MSG_NOSIGNAL)) == 1, "the second stop shut down descriptor \(number)")
            var back: UInt8 = 0
            #expect(recv(pair[1 - mine], &back, 1, Int32(MSG_DONTWAIT)) == 1 && back == 7)
            return
        }
        Issue.record("the listener's number was never free to reuse")
    }
}
