import Foundation
import PostgresClient
import TestSupport
import Testing

@Suite("Values round-trip through a real server")
struct ValueRoundTripTests {
    @Test("hostile and unusual strings come back unchanged")
    func strings() async throws {
        try await withTestDatabase(migrated: false) { db in
            try await db.withPool { pool in
                try await pool.query("CREATE TABLE t (id int PRIMARY KEY, v text)")
                let values: [String?] = [
                    "it's \"quoted\"",
                    #"back\slash \\ and \n literal"#,
                    "'; DROP TABLE t; --",
                    "emoji 🚨🔔 and ünïcödé 日本語 עברית",
                    String(repeating: "x", count: 1_000_000),
                    "tab\tnew\nline\rcr",
                    "",
                    nil,
                ]
                for (i, value) in values.enumerated() {
                    try await pool.query("INSERT INTO t (id, v) VALUES (\(i), \(value))")
                }
                let rows = try await pool.query("SELECT id, v FROM t ORDER BY id")
                #expect(rows.count == values.count)
                for row in rows {
                    let id: Int = try row.decode("id")
                    let text: String? = try row.decode("v")
                    #expect(text == values[id], "value \(id) changed")
                }
                // The table survived the injection attempt.
                let count = try await pool.query("SELECT count(*) AS n FROM t")
                #expect(try count[0].decode("n", as: Int.self) == values.count)
            }
        }
    }

    @Test("typed values decode")
    func typed() async throws {
        try await withTestDatabase(migrated: false) { db in
            try await db.withPool { pool in
                let date = Date(timeIntervalSince1970: 1_790_000_000.123456)
                let uuid = UUID()
                struct Payload: Codable, Sendable, Equatable { var a: Int; var b: [String] }
                let rows = try await pool.query(
                    """
                    SELECT \(Int.max)::int8 AS i, \(-0.1)::float8 AS d, \(true)::bool AS b, \(date)::timestamptz AS ts, \(uuid)::uuid AS u,
                           \(PostgresJSON(Payload(a: 1, b: ["x", "y,z"])))::jsonb AS j, \(["a", "b c", "d\"e", "f\\g", ""])::text[] AS arr, \([1, 2, 3])::int[] AS ints, \(Int?.none)::int AS n,
                           'NaN'::float8 AS nan, '2026-01-02 03:04:05+05:30'::timestamptz AS offset_ts
                    """)
                let row = rows[0]
                #expect(try row.decode("i", as: Int.self) == Int.max)
                #expect(try row.decode("d", as: Double.self) == -0.1)
                #expect(try row.decode("b", as: Bool.self) == true)
                let decodedDate: Date = try row.decode("ts")
                #expect(abs(decodedDate.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_001)
                #expect(try row.decode("u", as: UUID.self) == uuid)
                #expect(try row.decode("j", as: PostgresJSON<Payload>.self).value == Payload(a: 1, b: ["x", "y,z"]))
                #expect(try row.decode("arr", as: [String].self) == ["a", "b c", "d\"e", "f\\g", ""])
                #expect(try row.decode("ints", as: [Int].self) == [1, 2, 3])
                #expect(try row.decode("n", as: Int?.self) == nil)
                #expect(try row.decode("nan", as: Double.self).isNaN)
                let offset: Date = try row.decode("offset_ts")
                #expect(PostgresTimestamp.format(offset) == "2026-01-01T21:34:05.000000Z")
                // NULL into a non-optional is an error, not a default.
                #expect(throws: PostgresError.self) { try row.decode("n", as: Int.self) }
            }
        }
    }
}

@Suite("Timestamp text format")
struct TimestampTests {
    @Test("format and parse are inverse", arguments: [0.0, 1.5, 1_790_000_000.123456, -86_400.25, 4_102_444_800.999999])
    func roundTrip(seconds: Double) throws {
        let date = Date(timeIntervalSince1970: seconds)
        let text = PostgresTimestamp.format(date)
        let parsed = try #require(PostgresTimestamp.parse(text))
        #expect(abs(parsed.timeIntervalSince1970 - seconds) < 0.000_001)
    }

    @Test("server formats parse")
    func serverFormats() throws {
        #expect(PostgresTimestamp.parse("2026-11-29 06:55:23+00")?.timeIntervalSince1970 == 1_795_935_323)
        #expect(PostgresTimestamp.parse("2026-11-29 07:55:23+01")?.timeIntervalSince1970 == 1_795_935_323)
        #expect(PostgresTimestamp.parse("2026-11-29T06:55:23Z")?.timeIntervalSince1970 == 1_795_935_323)
        #expect(PostgresTimestamp.parse("2026-11-29") != nil)
        #expect(PostgresTimestamp.parse("2026-13-01 00:00:00+00") == nil)
        #expect(PostgresTimestamp.parse("yesterday") == nil)
    }
}
