import Foundation
import PostgresClient
import TestSupport
import Testing

/// Inputs that once crashed or blinded the server, sent to a real `tocsin
/// run`: each must get a 4xx, store nothing, and leave the process alive.
@Suite("Hostile inputs against a running process", .serialized)
struct HostileInputTests {
    struct Case: Sendable, CustomStringConvertible {
        var description: String
        var method = "POST"
        var path: String
        var body: String
        var scope: String
        var expected = 400
    }

    static let cases: [Case] = [
        Case(description: "a latency of 1e306 (an infinite histogram bucket)", path: "/api/metrics",
             body: #"{"name":"webhook.latency","value":1e306}"#, scope: "ingest"),
        Case(description: "a duration of 1.7e308", path: "/api/metrics",
             body: #"[{"name":"worker.duration","value":1.7e308}]"#, scope: "ingest"),
        Case(description: "a finite but absurd value (1e200) that PostgreSQL's avg() would overflow on", path: "/api/metrics",
             body: #"{"name":"upload.failure","value":1e200}"#, scope: "ingest"),
        Case(description: "a NUL in a label value", path: "/api/metrics",
             body: #"{"name":"upload.failure","labels":{"reason":"a\u0000b"}}"#, scope: "ingest"),
        Case(description: "a backtest window whose seconds overflow Int", path: "/api/rules/backtest",
             body: #"{"rule":{"name":"x","kind":"count","metric":"upload.failure","window":"106751991167301d","threshold":1,"severity":"warning"},"since":"2026-11-30T00:00:00Z"}"#,
             scope: "read"),
        Case(description: "a backtest threshold of 1e300", path: "/api/rules/backtest",
             body: #"{"rule":{"name":"x","kind":"count","metric":"upload.failure","threshold":1e300,"severity":"warning"},"since":"2026-11-30T00:00:00Z"}"#,
             scope: "read"),
        Case(description: "a silence with 100,000 label matchers (2 MB: over the 1 MiB of a small JSON body)",
             path: "/api/silences",
             body: "{\"comment\":\"x\",\"ends_at\":\"2099-01-01T00:00:00Z\",\"labels\":{"
                 + (0..<100_000).map { "\"k\($0)\":\"v\"" }.joined(separator: ",") + "}}",
             scope: "admin", expected: 413),
        Case(description: "a silence with 1,000 label matchers", path: "/api/silences",
             body: "{\"comment\":\"x\",\"ends_at\":\"2099-01-01T00:00:00Z\",\"labels\":{"
                 + (0..<1000).map { "\"k\($0)\":\"v\"" }.joined(separator: ",") + "}}",
             scope: "admin"),
        Case(description: "a NUL in a silence comment", path: "/api/silences",
             body: #"{"comment":"a\u0000b","ends_at":"2099-01-01T00:00:00Z","rule":"x"}"#, scope: "admin"),
        // One Character, 3,001 scalars: limits count scalars, as the spec's maxLength does.
        Case(description: "a one-character comment of 3,000 combining marks", path: "/api/silences",
             body: "{\"comment\":\"a" + String(repeating: "\u{0301}", count: 3000) + "\",\"ends_at\":\"2099-01-01T00:00:00Z\",\"rule\":\"x\"}",
             scope: "admin"),
        Case(description: "a recurring silence with 10,000 weekday ranges", path: "/api/silences",
             body: "{\"comment\":\"x\",\"ends_at\":\"2099-01-01T00:00:00Z\",\"rule\":\"x\",\"recurrence\":{\"weekdays\":["
                 + Array(repeating: "\"monday:friday\"", count: 10_000).joined(separator: ",") + "]}}",
             scope: "admin"),
        Case(description: "a recurring silence whose time zone is a path", path: "/api/silences",
             body: #"{"comment":"x","ends_at":"2099-01-01T00:00:00Z","rule":"x","recurrence":{"time_zone":"../../etc/passwd","weekdays":["monday"]}}"#,
             scope: "admin"),
        Case(description: "a recurring silence nested 200 deep", path: "/api/silences",
             body: "{\"comment\":\"x\",\"ends_at\":\"2099-01-01T00:00:00Z\",\"rule\":\"x\",\"recurrence\":{\"weekdays\":"
                 + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "}}",
             scope: "admin"),
        Case(description: "a recurring silence with a day of month of 2^70", path: "/api/silences",
             body: #"{"comment":"x","ends_at":"2099-01-01T00:00:00Z","rule":"x","recurrence":{"days_of_month":[1180591620717411303424]}}"#,
             scope: "admin"),
    ]

    @Test("each input gets a 400, nothing is stored, the process lives")
    func crashInputs() async throws {
        try await withTestDatabase { db in
            let keys = [
                "ingest": try await db.createKey(scopes: [.ingest]),
                "read": try await db.createKey(scopes: [.read]),
                "admin": try await db.createKey(scopes: [.admin]),
            ]
            let port = try freePort()
            let server = try TestProcess.launch(["run", "--port", "\(port)"], environment: [
                "DATABASE_URL": db.url, "LOG_LEVEL": "warning",
            ])
            let client = TestHTTPClient(port: port)
            #expect(try await eventually { (try? await client.get("/readyz"))?.status == 200 }, "stderr: \(server.stderr)")
            for hostile in Self.cases {
                let response = try await client.request(
                    hostile.method, hostile.path,
                    headers: ["Authorization": "Bearer \(keys[hostile.scope]!)", "Content-Type": "application/json"],
                    body: Data(hostile.body.utf8))
                #expect(response.status == hostile.expected, "\(hostile): \(response.status) \(response.text.prefix(300))")
                #expect(server.exitStatus == nil, "\(hostile) ended the process: \(server.stderr.suffix(2000))")
                #expect((try? await client.get("/healthz"))?.status == 200, "\(hostile): the server stopped answering")
            }
            let stored = try await db.withPool(size: 1) { pool in
                try await pool.query(
                    "SELECT (SELECT count(*) FROM metric_events) + (SELECT count(*) FROM silences) AS n")[0].decode("n", as: Int.self)
            }
            #expect(stored == 0)
            server.signal(SIGTERM)
            #expect(try await server.wait() == 0, "stderr: \(server.stderr.suffix(2000))")
        }
    }
}
