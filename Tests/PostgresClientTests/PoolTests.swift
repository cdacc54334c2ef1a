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

    @Test("COPY FROM STDIN loads rows with escapes and NULLs")
    func copy() async throws {
        try await withTestDatabase(migrated: false) { db in
            try await db.withPool { pool in
                try await pool.query("CREATE TABLE t (id int, v text, d double precision)")
                var builder = CopyTextBuilder()
                for i in 0..<10_000 {
                    builder.append(i)
                    builder.append(i % 7 == 0 ? nil : "row\t\(i)\n\\ \"q\" 🚨")
                    builder.append(Double(i) / 3)
                    builder.endRow()
                }
                let data = builder.bytes
                let copied = try await pool.withTransaction { try $0.copyIn("COPY t (id, v, d) FROM STDIN", data: data) }
                #expect(copied == 10_000)
                let rows = try await pool.query("SELECT id, v FROM t WHERE id IN (7, 8) ORDER BY id")
                #expect(try rows[0].decode("v", as: String?.self) == nil)
                #expect(try rows[1].decode("v", as: String?.self) == "row\t8\n\\ \"q\" 🚨")
                // A COPY that fails (bad data) leaves the connection usable and nothing stored.
                var bad = CopyTextBuilder()
                bad.append("not a number"); bad.append("x"); bad.append(1.0); bad.endRow()
                let badData = bad.bytes
                await #expect(throws: PostgresError.self) {
                    try await pool.withTransaction { try $0.copyIn("COPY t (id, v, d) FROM STDIN", data: badData) }
                }
                let count = try await pool.query("SELECT count(*) AS n FROM t")
                #expect(try count[0].decode("n", as: Int.self) == 10_000)
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
