import Foundation
import Logging
import PostgresClient
import TestSupport
import Testing

/// The pool against a real primary and a real streaming standby, started
/// by the test: the failures of a failover, one at a time.
@Suite("Pool: primary and standby", .serialized)
struct ReplicationTests {
    /// A primary with one streaming standby, torn down afterwards.
    static func withPair(synchronous: Bool = false,
                         _ body: (PrivatePostgres, PrivatePostgres) async throws -> Void) async throws {
        let primary = try await PrivatePostgres.start(replication: true, synchronousStandby: synchronous)
        var standby: PrivatePostgres?
        do {
            standby = try await primary.startStandby()
            try await body(primary, standby!)
        } catch {
            await standby?.destroy()
            await primary.destroy()
            throw error
        }
        await standby?.destroy()
        await primary.destroy()
    }

    /// Both servers in one libpq URI, the primary first, writes only on a
    /// read-write one: what Tocsin's DATABASE_URL is in a cluster.
    static func clusterURL(_ servers: [PrivatePostgres], attrs: String = "read-write") -> String {
        "postgresql://postgres@" + servers.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
            + "/postgres?target_session_attrs=\(attrs)&connect_timeout=2"
    }

    static func count(_ url: String, where condition: String = "true") throws -> Int {
        let connection = try PostgresConnection.connect(url)
        defer { connection.close() }
        return try connection.query(PostgresQuery(unsafeSQL: "SELECT count(*) AS n FROM t WHERE \(condition)"))[0].decode("n")
    }

    static func waitForReplay(_ standby: PrivatePostgres, rows: Int) async throws {
        #expect(try await eventually { (try? Self.count(standby.url)) == rows }, "the standby never caught up")
    }

    @Test("after the primary dies and the standby is promoted, the pool's next write lands on the new primary")
    func movesToPromoted() async throws {
        try await Self.withPair { primary, standby in
            let pool = PostgresPool(configuration: .init(conninfo: Self.clusterURL([primary, standby]), size: 2),
                                    logger: Logger(label: "test"))
            try await pool.query("CREATE TABLE t (v int)")
            try await pool.query("INSERT INTO t VALUES (1)")
            try await Self.waitForReplay(standby, rows: 1)

            try await primary.crash()
            try await standby.promote()
            // The pooled connection to the dead primary is replaced; the
            // multi-host URL finds the one that accepts writes.
            try await pool.withTransaction { try $0.query("INSERT INTO t VALUES (2)") }
            let node: Int = try await pool.query("SELECT current_setting('port')::int AS p")[0].decode("p")
            #expect(node == standby.port)
            #expect(try Self.count(standby.url) == 2)
            await pool.close()
        }
    }

    @Test("a write refused as read-only (the node was fenced) drops the pool's connections and lands on the writable node")
    func readOnlyReconnects() async throws {
        try await Self.withPair { primary, standby in
            let pool = PostgresPool(configuration: .init(conninfo: Self.clusterURL([primary, standby]), size: 2),
                                    logger: Logger(label: "test"))
            try await pool.query("CREATE TABLE t (v int)")
            try await pool.query("INSERT INTO t VALUES (1)")
            try await Self.waitForReplay(standby, rows: 1)
            // A switchover: the standby becomes the primary, the old primary stops
            // taking writes while its sessions are still open.
            try await standby.promote()
            let fence = try PostgresConnection.connect(primary.url)
            try fence.query("ALTER SYSTEM SET default_transaction_read_only = on")
            try fence.query("SELECT pg_reload_conf()")
            fence.close()
            try await Task.sleep(for: .milliseconds(300))

            let runs = Locked(0)
            try await pool.withTransaction { connection in
                runs.withLock { $0 += 1 }
                try connection.query("INSERT INTO t VALUES (2)")
            }
            #expect(runs.value == 2, "refused once as read-only, then run on the writable node")
            #expect(try Self.count(standby.url, where: "v = 2") == 1)
            #expect(try Self.count(primary.url, where: "v = 2") == 0)
            await pool.close()
        }
    }

    @Test("a COMMIT whose reply is lost as the primary dies is not repeated on the promoted standby")
    func lostCommitAcrossFailover() async throws {
        try await Self.withPair(synchronous: true) { primary, standby in
            let proxy = try FaultProxy(upstreamPort: primary.port)
            defer { proxy.stop() }
            let pool = PostgresPool(
                configuration: .init(
                    conninfo: "postgresql://postgres@127.0.0.1:\(proxy.port),127.0.0.1:\(standby.port)/postgres"
                        + "?target_session_attrs=read-write&connect_timeout=2",
                    size: 2),
                logger: Logger(label: "test"))
            try await pool.query("CREATE TABLE t (v int)")
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
            }
            // The primary commits (and, synchronous, the standby has it before
            // the reply is sent, which the client never sees); then it dies.
            #expect(try await eventually { (try? Self.count(primary.url)) == 1 })
            try await primary.crash()
            proxy.stop()  // its address refuses connections now, as a dead host's does
            try await standby.promote()
            #expect(runs.value == 1, "the transaction was run again after its COMMIT was sent")
            #expect(try Self.count(standby.url) == 1)
            // And the pool carries on against the new primary.
            try await pool.withTransaction { try $0.query("INSERT INTO t VALUES (2)") }
            #expect(try Self.count(standby.url) == 2)
            await pool.close()
        }
    }
}
