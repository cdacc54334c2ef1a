import Foundation
import Logging
import PostgresClient
import TestSupport
import Testing

/// Statements prepared once per connection: planned once, and recovered
/// when the server loses them or a migration changes their tables.
@Suite("Pool: prepared statements")
struct PreparedStatementTests {
    static func pool(_ db: TestDatabase, prepare: Bool = true) -> PostgresPool {
        PostgresPool(configuration: .init(conninfo: db.url, size: 1, prepareStatements: prepare), logger: Logger(label: "test"))
    }

    static let probe: PostgresQuery = "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1::int + 1%'"

    @Test("a statement run twice on a connection is prepared once and executed by name; off means never")
    func preparedOnce() async throws {
        try await withTestDatabase(migrated: false) { db in
            for prepare in [true, false] {
                let pool = Self.pool(db, prepare: prepare)
                let counts = try await pool.withConnection { connection -> [Int] in
                    var sums: [Int] = []
                    for value in [1, 2, 3] {
                        sums.append(try connection.query("SELECT \(value)::int + 1 AS n")[0].decode("n"))
                    }
                    return sums + [try connection.query(Self.probe)[0].decode("n")]
                }
                #expect(counts == [2, 3, 4, prepare ? 1 : 0])
                await pool.close()
            }
        }
    }

    @Test("a migration that changes a table's columns: the stale statement is prepared again and the read runs once")
    func afterMigration() async throws {
        try await withTestDatabase(migrated: false) { db in
            try await db.withPool(size: 1) { pool in
                try await pool.query("CREATE TABLE t (a int)")
                try await pool.query("INSERT INTO t VALUES (1)")
            }
            let pool = Self.pool(db)
            #expect(try await pool.query("SELECT * FROM t").columns == ["a"])
            _ = try await db.withPool(size: 1) { try await $0.query("ALTER TABLE t ADD COLUMN b int DEFAULT 2") }
            let rows = try await pool.query("SELECT * FROM t")
            #expect(rows.columns == ["a", "b"])
            #expect(try rows[0].decode("b", as: Int.self) == 2)
            await pool.close()
        }
    }

    @Test("statements the server dropped (a pooler handing over another session) are prepared again")
    func serverForgot() async throws {
        try await withTestDatabase(migrated: false) { db in
            let pool = Self.pool(db)
            try await pool.withConnection { connection in
                _ = try connection.query("SELECT \(1)::int + 1 AS n")
                try connection.execute(script: "DEALLOCATE ALL")
            }
            let runs = Locked(0)
            let n: Int = try await pool.withConnection { connection in
                runs.withLock { $0 += 1 }
                return try connection.query("SELECT \(5)::int + 1 AS n")[0].decode("n")
            }
            #expect(n == 6)
            #expect(runs.value == 2, "the first statement of the work was stale and nothing else had run: run again")
            // Inside a transaction, the stale statement aborts it; the work is run again whole.
            try await pool.withConnection { try $0.execute(script: "DEALLOCATE ALL") }
            _ = try await db.withPool(size: 1) { try await $0.query("CREATE TABLE t (v int)") }
            try await pool.withTransaction { connection in
                try connection.query("INSERT INTO t VALUES (\(1))")
                _ = try connection.query("SELECT \(7)::int + 1 AS n")
            }
            let stored: Int = try await pool.query("SELECT count(*) AS n FROM t")[0].decode("n")
            #expect(stored == 1)
            await pool.close()
        }
    }
}
