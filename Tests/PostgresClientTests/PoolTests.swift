import Foundation
import Logging
import PostgresClient
import Synchronization
import TestSupport
import Testing

@Suite("Pool, transactions, COPY, locks and errors")
struct PoolTests {
    @Test("a transaction whose body throws leaves no rows")
    func rollback() async throws {
        struct Boom: Error {}
        try await withTestDatabase(migrated: false) { db in
            try await db.withPool { pool in
                try await pool.query("CREATE TABLE t (v int)")
                await #expect(throws: Boom.self) {
                    try await pool.withTransaction { connection in
                        try connection.query("INSERT INTO t VALUES (1)")
                        try connection.query("INSERT INTO t VALUES (2)")
                        throw Boom()
                    }
                }
                let rows = try await pool.query("SELECT count(*) AS n FROM t")
                #expect(try rows[0].decode("n", as: Int.self) == 0)
                // The connection went back clean: the next transaction commits.
                _ = try await pool.withTransaction { try $0.query("INSERT INTO t VALUES (3)") }
                let after = try await pool.query("SELECT count(*) AS n FROM t")
                #expect(try after[0].decode("n", as: Int.self) == 1)
            }
        }
    }

    @Test("pool of 4 serves 200 concurrent queries, one task per connection")
    func concurrency() async throws {
        try await withTestDatabase(migrated: false) { db in
            // The 200 queue at once: on a loaded machine the last one may wait
            // longer than the default 30 s checkout timeout, which is not what
            // this test is about.
            let pool = PostgresPool(configuration: .init(conninfo: db.url, size: 4, checkoutTimeout: .seconds(600)),
                                    logger: Logger(label: "test"))
            do {
                let inUse = Locked(Set<ObjectIdentifier>())
                let overlaps = Locked(0)
                let pids = Locked(Set<Int>())
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<200 {
                        group.addTask {
                            try await pool.withConnection { connection in
                                let id = ObjectIdentifier(connection)
                                let fresh = inUse.withLock { $0.insert(id).inserted }
                                if !fresh { overlaps.withLock { $0 += 1 } }
                                defer { _ = inUse.withLock { $0.remove(id) } }
                                let rows = try connection.query("SELECT pg_backend_pid() AS pid, pg_sleep(0.005)")
                                let pid: Int = try rows[0].decode("pid")
                                pids.withLock { _ = $0.insert(pid) }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(overlaps.value == 0)
                #expect(pids.value.count <= 4)
                #expect(pool.statistics.open <= 4)
                #expect(pool.statistics.inUse == 0)
            }
            await pool.close()
        }
    }

    @Test("after the server restarts, the next query succeeds")
    func restart() async throws {
        let server = try await PrivatePostgres.start()
        do {
            let pool = PostgresPool(configuration: .init(conninfo: server.url, size: 2), logger: Logger(label: "test"))
            let before = try await pool.query("SELECT pg_backend_pid() AS pid")
            let pidBefore: Int = try before[0].decode("pid")
            try await server.restart()
            let after = try await pool.query("SELECT pg_backend_pid() AS pid")
            let pidAfter: Int = try after[0].decode("pid")
            #expect(pidBefore != pidAfter)

            // While it is down, errors are connection failures, then it recovers.
            try await server.stop()
            await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
            do {
                _ = try await pool.query("SELECT 1")
            } catch let error as PostgresError {
                #expect(error.isConnectionFailure)
            }
            try await server.startAgain()
            let rows = try await pool.query("SELECT 41 + 1 AS n")
            #expect(try rows[0].decode("n", as: Int.self) == 42)
            await pool.close()
        } catch {
            await server.destroy()
            throw error
        }
        await server.destroy()
    }

    @Test("binary COPY FROM STDIN loads timestamps, text, NULLs, doubles and jsonb exactly")
    func copy() async throws {
        try await withTestDatabase(migrated: false) { db in
            try await db.withPool { pool in
                try await pool.query("CREATE TABLE t (id int, at timestamptz, v text, d double precision, j jsonb)")
                // Before and after 2000-01-01 (PostgreSQL's epoch), with microseconds, and the years 1 and 9999.
                let instants: [(Int, Int, String)] = [
                    (0, 0, "1970-01-01 00:00:00+00"), (946_684_800, 1, "2000-01-01 00:00:00.000001+00"),
                    (946_684_799, 999_999, "1999-12-31 23:59:59.999999+00"), (1_796_000_000, 42, "2026-11-30 00:53:20.000042+00"),
                    (-62_135_596_800, 0, "0001-01-01 00:00:00+00"), (253_402_300_799, 500_000, "9999-12-31 23:59:59.5+00"),
                ]
                let doubles = [0.0, -0.0, 1.0 / 3, -1e300, 5e-324, 1e12]
                var builder = CopyBinaryBuilder()
                for i in 0..<10_000 {
                    let (seconds, micros, _) = instants[i % instants.count]
                    builder.beginRow(fields: 5)
                    builder.append(Double(i))
                    builder.appendTimestamp(unixSeconds: seconds, micros: micros)
                    builder.append(i % 7 == 0 ? nil : "row\t\(i)\n\\ \"q\" 🚨")
                    builder.append(doubles[i % doubles.count])
                    builder.appendJSONB(#"{"k": "v\u00e9 \#(i)", "n": [1, 2]}"#)
                }
                let data = builder.bytes
                // The first column is declared int but sent as a double: refused, nothing stored.
                await #expect(throws: PostgresError.self) {
                    try await pool.withTransaction { try $0.copyIn("COPY t (id, at, v, d, j) FROM STDIN (FORMAT binary)", data: data) }
                }
                try await pool.query("ALTER TABLE t ALTER COLUMN id TYPE double precision")
                let copied = try await pool.withTransaction { try $0.copyIn("COPY t (id, at, v, d, j) FROM STDIN (FORMAT binary)", data: data) }
                #expect(copied == 10_000)
                let rows = try await pool.query(
                    """
                    SELECT id::int AS id, at AT TIME ZONE 'UTC' AS at, v, d::text AS d, j::text AS j FROM t
                    WHERE id < 12 ORDER BY id
                    """)
                for (i, row) in rows.enumerated() {
                    let want = instants[i % instants.count].2.replacingOccurrences(of: "+00", with: "")
                    #expect(try row.decode("at", as: String.self) == want, "row \(i)")
                    #expect(try row.decode("v", as: String?.self) == (i % 7 == 0 ? nil : "row\t\(i)\n\\ \"q\" 🚨"))
                    #expect(try row.decode("d", as: String.self) == ["0", "-0", "0.3333333333333333", "-1e+300", "5e-324", "1000000000000"][i % 6])
                    #expect(try row.decode("j", as: String.self) == #"{"k": "vé \#(i)", "n": [1, 2]}"#)
                }
                #expect(rows.count == 12)
            }
        }
    }

    @Test("transaction-scoped advisory locks exclude other transactions until commit")
    func advisoryLocks() async throws {
        try await withTestDatabase(migrated: false) { db in
            let holder = try await blocking { try PostgresConnection.connect(db.url) }
            let other = try await blocking { try PostgresConnection.connect(db.url) }
            let outcomes = try await blocking { () -> [Bool] in
                var outcomes: [Bool] = []
                try holder.execute(script: "BEGIN")
                outcomes.append(try holder.tryAdvisoryTransactionLock(namespace: 7, id: 1))
                try other.transaction { connection in
                    outcomes.append(try connection.tryAdvisoryTransactionLock(namespace: 7, id: 1))
                    // Another id in the same namespace is free.
                    outcomes.append(try connection.tryAdvisoryTransactionLock(namespace: 7, id: 2))
                }
                try holder.execute(script: "COMMIT")
                try other.transaction { connection in
                    outcomes.append(try connection.tryAdvisoryTransactionLock(namespace: 7, id: 1))
                }
                holder.close()
                other.close()
                return outcomes
            }
            #expect(outcomes == [true, false, true, true])
        }
    }

    @Test("errors carry SQLSTATE and the server's message, never bound values")
    func errors() async throws {
        try await withTestDatabase(migrated: false) { db in
            try await db.withPool { pool in
                try await pool.query("CREATE TABLE t (name text CONSTRAINT t_name_key UNIQUE)")
                try await pool.query("INSERT INTO t VALUES (\("secret-value-123"))")
                do {
                    try await pool.query("INSERT INTO t VALUES (\("secret-value-123"))")
                    Issue.record("duplicate insert succeeded")
                } catch let error as PostgresError {
                    #expect(error.sqlState == "23505")
                    #expect(error.constraint == "t_name_key")
                    #expect(error.isUniqueViolation)
                    #expect(!String(describing: error).contains("secret-value-123"))
                }
                do {
                    try await pool.query("SELECT \("secret-abc")::int")
                    Issue.record("bad integer accepted")
                } catch let error as PostgresError {
                    #expect(error.sqlState == "22P02")
                    #expect(!String(describing: error).contains("secret-abc"))
                    #expect(String(describing: error).contains("22P02"))
                }
                do {
                    try await pool.query("SELEC 1")
                    Issue.record("syntax error accepted")
                } catch let error as PostgresError {
                    #expect(error.sqlState == "42601")
                    #expect(error.kind == .server)
                }
            }
        }
    }

    @Test("a bad connection string is refused before connecting")
    func badConninfo() throws {
        #expect(throws: PostgresError.self) { try PostgresConnection.validate(conninfo: "postgresql://[bad") }
        #expect(throws: PostgresError.self) { try PostgresConnection.validate(conninfo: "nonsense_key=1") }
        try PostgresConnection.validate(conninfo: "host=127.0.0.1 port=5432 dbname=x sslmode=disable")
        try PostgresConnection.validate(conninfo: "postgresql://u@127.0.0.1:5432/x?sslmode=require")
    }
}

@Suite("LISTEN/NOTIFY")
struct ListenerTests {
    @Test("notifications arrive as an AsyncSequence, also after a server restart")
    func notifications() async throws {
        let server = try await PrivatePostgres.start()
        let listener = PostgresListener(conninfo: server.url, channels: ["tocsin_test"], logger: Logger(label: "test"))
        let pool = PostgresPool(configuration: .init(conninfo: server.url, size: 1), logger: Logger(label: "test"))
        let events = listener.events()
        listener.start()
        var iterator = events.makeAsyncIterator()
        #expect(await iterator.next() == .listening)
        try await pool.withTransaction { try $0.notify(channel: "tocsin_test", payload: "hello 🚨") }
        let first = await iterator.next()
        guard case .notification(let n) = first else {
            Issue.record("expected a notification, got \(String(describing: first))")
            return
        }
        #expect(n.channel == "tocsin_test")
        #expect(n.payload == "hello 🚨")

        try await server.restart()
        #expect(await iterator.next() == .listening)
        try await pool.withTransaction { try $0.notify(channel: "tocsin_test", payload: "again") }
        let second = await iterator.next()
        guard case .notification(let again) = second else {
            Issue.record("expected a notification after the restart, got \(String(describing: second))")
            return
        }
        #expect(again.payload == "again")
        await listener.stop()
        #expect(await iterator.next() == nil)
        await pool.close()
        await server.destroy()
    }
}
