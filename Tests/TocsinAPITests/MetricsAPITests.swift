import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore

func eventCount(_ db: TestDatabase) async throws -> Int {
    try await db.withPool(size: 1) { pool in
        try await pool.query("SELECT count(*) AS n FROM metric_events")[0].decode("n", as: Int.self)
    }
}

@Suite("POST /api/metrics")
struct IngestAPITests {
    @Test("every rejection stores nothing")
    func rejections() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db, configure: { $0.maxBodyBytes = 64 * 1024 }) { app in
                let key = try await db.createKey(scopes: [.ingest])
                let auth = ["Authorization": "Bearer \(key)"]
                let future = RFC3339.format(Date().addingTimeInterval(3600))
                let ancient = RFC3339.format(Date().addingTimeInterval(-40 * 86_400))
                let bad: [(String, Int, String)] = [
                    ("{not json", 400, "malformed_json"),
                    (#"{"name":"upload.success","value":"1"}"#, 400, "invalid_events"),
                    (#"{"name":"upload.success","extra":1}"#, 400, "invalid_events"),
                    (#"{"name":""}"#, 400, "invalid_events"),
                    (#"{"name":"upload.success","value":NaN}"#, 400, "malformed_json"),
                    (#"{"name":"upload.success","value":1e999}"#, 400, "invalid_events"),
                    (#"{"name":"webhook.latency","value":-2}"#, 400, "invalid_events"),
                    (#"{"name":"upload.success","occurred_at":"\#(future)"}"#, 400, "invalid_events"),
                    (#"{"name":"upload.success","occurred_at":"\#(ancient)"}"#, 400, "invalid_events"),
                    ("[" + Array(repeating: #"{"name":"a"}"#, count: 10_001).joined(separator: ",") + "]", 413, "payload_too_large"),
                    ("[]", 400, "invalid_events"),
                ]
                for (body, status, code) in bad {
                    let response = try await app.client.post("/api/metrics", json: body, headers: auth)
                    #expect(response.status == status, "\(body.prefix(60)) → \(response.status) \(response.text.prefix(200))")
                    #expect(response.errorCode == code, "\(body.prefix(60)) → \(response.text.prefix(200))")
                }
                #expect(try await eventCount(db) == 0)
            }
        }
    }

    @Test("more than 10,000 events is a 400; a body over the limit is a 413")
    func tooMany() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.ingest])
                let many = "[" + Array(repeating: #"{"name":"a"}"#, count: 10_001).joined(separator: ",") + "]"
                let response = try await app.client.post("/api/metrics", json: many, headers: ["Authorization": "Bearer \(key)"])
                #expect(response.status == 400)
                #expect(response.errorCode == "too_many_events")
                let huge = #"{"name":"a","labels":{"k":""# + String(repeating: "x", count: 11 * 1024 * 1024) + #""}}"#
                let big = try await app.client.post("/api/metrics", json: huge, headers: ["Authorization": "Bearer \(key)"])
                #expect(big.status == 413)
                #expect(try await eventCount(db) == 0)
            }
        }
    }

    @Test("a batch with one bad event among 1,000 stores none and names it")
    func oneBadInBatch() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.ingest])
                var events = Array(repeating: #"{"name":"upload.success","platform":"tiktok"}"#, count: 1000)
                events[637] = #"{"name":"upload.success","platform":"TikTok!"}"#
                let response = try await app.client.post("/api/metrics", json: "[" + events.joined(separator: ",") + "]",
                                                         headers: ["Authorization": "Bearer \(key)"])
                #expect(response.status == 400)
                let details = try #require((try response.json()["error"] as? [String: Any])?["details"] as? [[String: Any]])
                #expect(details.count == 1)
                #expect(details.first?["index"] as? Int == 637)
                #expect(details.first?["field"] as? String == "platform")
                #expect(try await eventCount(db) == 0)
            }
        }
    }

    @Test("scopes: read cannot ingest (403), ingest cannot read (403), admin can both")
    func scopes() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let reader = try await db.createKey(scopes: [.read])
                let ingester = try await db.createKey(scopes: [.ingest])
                let admin = try await db.createKey(scopes: [.admin])
                let event = #"{"name":"upload.success"}"#
                let denied = try await app.client.post("/api/metrics", json: event, headers: ["Authorization": "Bearer \(reader)"])
                #expect(denied.status == 403)
                #expect(denied.errorCode == "forbidden")
                #expect(try await app.client.get("/api/monitoring/metrics", headers: ["Authorization": "Bearer \(ingester)"]).status == 403)
                #expect(try await app.client.post("/api/metrics", json: event, headers: ["Authorization": "Bearer \(admin)"]).status == 202)
                #expect(try await app.client.get("/api/monitoring/metrics", headers: ["Authorization": "Bearer \(admin)"]).status == 200)
                #expect(try await eventCount(db) == 1)
            }
        }
    }

    @Test("a retried request with the same Idempotency-Key is stored once")
    func idempotency() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.ingest])
                let body = "[" + Array(repeating: #"{"name":"upload.success","platform":"tiktok"}"#, count: 5).joined(separator: ",") + "]"
                let headers = ["Authorization": "Bearer \(key)", "Idempotency-Key": "batch-42"]
                let first = try await app.client.post("/api/metrics", json: body, headers: headers)
                #expect(first.status == 202)
                #expect(try first.json()["accepted"] as? Int == 5)
                // Concurrent and sequential retries all get the first answer.
                let retries = try await withThrowingTaskGroup(of: TestHTTPResponse.self) { group in
                    for _ in 0..<4 { group.addTask { try await app.client.post("/api/metrics", json: body, headers: headers) } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                for retry in retries {
                    #expect(retry.status == 202)
                    #expect(try retry.json()["accepted"] as? Int == 5)
                    #expect(retry.header("idempotent-replayed") == "true")
                }
                #expect(try await eventCount(db) == 5)
                let other = try await app.client.post("/api/metrics", json: #"{"name":"upload.failure"}"#, headers: headers)
                #expect(other.status == 422)
                #expect(other.errorCode == "idempotency_key_reused")
                #expect(try await eventCount(db) == 5)
                // Another key stores again.
                var fresh = headers
                fresh["Idempotency-Key"] = "batch-43"
                #expect(try await app.client.post("/api/metrics", json: body, headers: fresh).status == 202)
                #expect(try await eventCount(db) == 10)
            }
        }
    }
}

/// Posts events through the API.
func post(_ app: RunningApp, key: String, _ events: [String]) async throws {
    for chunk in stride(from: 0, to: events.count, by: 5000) {
        let body = "[" + events[chunk..<min(chunk + 5000, events.count)].joined(separator: ",") + "]"
        let response = try await app.client.post("/api/metrics", json: body, headers: ["Authorization": "Bearer \(key)"])
        #expect(response.status == 202, "\(response.text.prefix(300))")
    }
}

func event(_ name: String, platform: String? = nil, value: Double = 1, at seconds: Double? = nil, labels: String? = nil) -> String {
    var parts = [#""name":"\#(name)""#, #""value":\#(value)"#]
    if let platform { parts.append(#""platform":"\#(platform)""#) }
    if let seconds { parts.append(#""occurred_at":"\#(RFC3339.format(Date(timeIntervalSince1970: seconds)))""#) }
    if let labels { parts.append(#""labels":\#(labels)"#) }
    return "{" + parts.joined(separator: ",") + "}"
}

@Suite("Metric reads")
struct MetricReadTests {
    @Test("the summary is exact on hand-built data")
    func summary() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.admin])
                var events: [String] = []
                events += Array(repeating: event("upload.success", platform: "tiktok"), count: 95)
                events += Array(repeating: event("upload.failure", platform: "tiktok"), count: 5)
                events += (1...100).map { event("webhook.latency", platform: "instagram", value: Double($0)) }
                events += Array(repeating: event("oauth.failure", platform: "instagram"), count: 3)
                events += [event("worker.run"), event("worker.duration", value: 2), event("worker.duration", value: 4)]
                // Outside the 1h window: not counted.
                events += [event("upload.failure", platform: "tiktok", at: Date().timeIntervalSince1970 - 7200)]
                try await post(app, key: key, events)

                let response = try await app.client.get("/api/monitoring/metrics?window=1h", headers: ["Authorization": "Bearer \(key)"])
                #expect(response.status == 200)
                let body = try response.json()
                let platforms = try #require(body["platforms"] as? [[String: Any]])
                #expect(platforms.map { $0["platform"] as? String } == ["instagram", "tiktok"])
                let tiktok = platforms[1]
                let upload = try #require(tiktok["upload"] as? [String: Any])
                #expect(upload["success"] as? Int == 95)
                #expect(upload["failure"] as? Int == 5)
                #expect(upload["success_rate"] as? Double == 0.95)
                let tiktokOAuth = try #require(tiktok["oauth"] as? [String: Any])
                #expect(tiktokOAuth["success_rate"] is NSNull)
                let webhook = try #require(platforms[0]["webhook"] as? [String: Any])
                #expect(webhook["avg_latency_s"] as? Double == 50.5)
                // percentile_cont(0.95) of 1…100: 95 + 0.05 × (96 − 95).
                #expect(abs((webhook["p95_latency_s"] as? Double ?? 0) - 95.05) < 1e-9)
                #expect((tiktok["webhook"] as? [String: Any])?["avg_latency_s"] is NSNull)
                let totals = try #require(body["totals"] as? [String: Any])
                #expect((totals["worker"] as? [String: Any])?["runs"] as? Int == 1)
                #expect((totals["worker"] as? [String: Any])?["avg_duration_s"] as? Double == 3)
                #expect((totals["oauth"] as? [String: Any])?["failure"] as? Int == 3)
                #expect((totals["oauth"] as? [String: Any])?["success_rate"] as? Double == 0)

                let filtered = try await app.client.get("/api/monitoring/metrics?window=24h&platform=tiktok",
                                                        headers: ["Authorization": "Bearer \(key)"])
                let filteredBody = try filtered.json()
                #expect((filteredBody["platforms"] as? [[String: Any]])?.count == 1)
                #expect(((filteredBody["totals"] as? [String: Any])?["upload"] as? [String: Any])?["failure"] as? Int == 6)

                let bad = try await app.client.get("/api/monitoring/metrics?window=2h", headers: ["Authorization": "Bearer \(key)"])
                #expect(bad.status == 400)
            }
        }
    }

    @Test("series buckets on a known set, with a ratio")
    func series() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.admin])
                let hour = (Date().timeIntervalSince1970 / 3600).rounded(.down) * 3600 - 2 * 3600  // two hours ago, on the hour
                var events: [String] = []
                // Bucket 1 (hour): 8 successes, 2 failures. Bucket 2: 1 failure only.
                events += (0..<8).map { event("upload.success", platform: "tiktok", at: hour + Double($0 * 60)) }
                events += (0..<2).map { event("upload.failure", platform: "tiktok", at: hour + 600 + Double($0)) }
                events += [event("upload.failure", platform: "tiktok", at: hour + 3600 + 5)]
                events += [event("webhook.latency", platform: "tiktok", value: 2, at: hour + 10),
                           event("webhook.latency", platform: "tiktok", value: 4, at: hour + 20)]
                try await post(app, key: key, events)
                let since = RFC3339.format(Date(timeIntervalSince1970: hour)), until = RFC3339.format(Date(timeIntervalSince1970: hour + 3 * 3600))
                let auth = ["Authorization": "Bearer \(key)"]

                let ratio = try await app.client.get(
                    "/api/monitoring/metrics/series?agg=ratio&numerator=upload.failure&denominator=upload.success,upload.failure&bucket=1h&since=\(since)&until=\(until)",
                    headers: auth)
                #expect(ratio.status == 200, "\(ratio.text)")
                let lines = try #require(try ratio.json()["series"] as? [[String: Any]])
                #expect(lines.count == 1)
                let points = try #require(lines[0]["points"] as? [[String: Any]])
                #expect(points.count == 3)
                #expect(points[0]["value"] as? Double == 0.2)
                #expect(points[0]["samples"] as? Int == 10)
                #expect(points[1]["value"] as? Double == 1)
                #expect(points[2]["value"] is NSNull)
                #expect(points[0]["t"] as? String == RFC3339.format(hour))

                let avg = try await app.client.get(
                    "/api/monitoring/metrics/series?name=webhook.latency&agg=avg&bucket=1h&platform=tiktok&since=\(since)&until=\(until)",
                    headers: auth)
                let avgPoints = try #require(((try avg.json()["series"] as? [[String: Any]])?.first)?["points"] as? [[String: Any]])
                #expect(avgPoints[0]["value"] as? Double == 3)

                let count = try await app.client.get(
                    "/api/monitoring/metrics/series?name=upload.success&agg=count&bucket=5m&since=\(since)&until=\(until)&format=csv",
                    headers: auth)
                #expect(count.header("content-type")?.hasPrefix("text/csv") == true)
                let rows = CSV.parse(count.text)
                #expect(rows.first == ["platform", "bucket_start", "value", "samples"])
                #expect(rows.count == 1 + 36)
                #expect(rows[1] == ["tiktok", RFC3339.format(hour), "5.0", "5"])
                #expect(rows[2] == ["tiktok", RFC3339.format(hour + 300), "3.0", "3"])
                #expect(rows[3][2] == "0.0")
            }
        }
    }

    @Test("events page newest first with cursors, filter by prefix, export CSV that parses back")
    func events() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.admin])
                let base = Date().timeIntervalSince1970 - 600
                var events = (0..<25).map { event("upload.success", platform: "tiktok", at: base + Double($0)) }
                events += [event("upload.failure", platform: "instagram", at: base + 100,
                                 labels: #"{"note":"a, \"quoted\"\nvalue","k":"v"}"#)]
                events += [event("oauth.failure", at: base + 200)]
                try await post(app, key: key, events)
                let auth = ["Authorization": "Bearer \(key)"]

                var seen: [Int] = []
                var cursor: String?
                repeat {
                    let path = "/api/monitoring/events?name=upload.*&limit=10&window=1h" + (cursor.map { "&cursor=\($0)" } ?? "")
                    let page = try await app.client.get(path, headers: auth)
                    #expect(page.status == 200, "\(page.text)")
                    let body = try page.json()
                    let items = try #require(body["events"] as? [[String: Any]])
                    seen += items.compactMap { $0["id"] as? Int }
                    cursor = body["next_cursor"] as? String
                } while cursor != nil
                #expect(seen.count == 26)
                #expect(Set(seen).count == 26)

                let first = try await app.client.get("/api/monitoring/events?limit=1&window=1h", headers: auth)
                #expect(((try first.json()["events"] as? [[String: Any]])?.first)?["name"] as? String == "oauth.failure")

                let csv = try await app.client.get("/api/monitoring/events?name=upload.failure&window=1h",
                                                   headers: auth.merging(["Accept": "text/csv"]) { $1 })
                #expect(csv.header("content-type")?.hasPrefix("text/csv") == true)
                let rows = CSV.parse(csv.text)
                #expect(rows.count == 2)
                #expect(rows[0] == ["id", "occurred_at", "received_at", "name", "platform", "value", "labels"])
                let labels = try JSONSerialization.jsonObject(with: Data(rows[1][6].utf8)) as? [String: String]
                #expect(labels == ["note": "a, \"quoted\"\nvalue", "k": "v"])

                let bad = try await app.client.get("/api/monitoring/events?limit=5000&cursor=zzz", headers: auth)
                #expect(bad.status == 400)
                #expect((((try bad.json()["error"] as? [String: Any])?["details"]) as? [[String: Any]])?.count == 2)
            }
        }
    }
}

@Suite("Partitions")
struct PartitionTests {
    func partitions(_ pool: PostgresPool) async throws -> [String] {
        try await pool.query(
            """
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'metric_events'::regclass ORDER BY 1
            """).map { try $0.decode("relname") }
    }

    @Test("partitions are created ahead, rows fold in from the default partition, old ones drop across a day boundary")
    func lifecycle() async throws {
        try await withTestDatabase { db in
            try await db.withPool { pool in
                // An event 2 days ago before any partition exists lands in the default partition.
                try await pool.query(
                    "INSERT INTO metric_events (occurred_at, name, value) VALUES (now() - interval '2 days', 'upload.success', 1)")
                #expect(try await partitions(pool) == ["metric_events_default"])
                let report = try await db.withStore(poolSize: 1) { try await $0.maintenance.run(.init(metricDays: 3, evaluationDays: 3)) }
                #expect(report.partitionsCreated == 14)  // today-3 … today+3, for events and evaluations
                let where_ = try await pool.query("SELECT tableoid::regclass::text AS part FROM metric_events")
                #expect(try where_[0].decode("part", as: String.self).hasPrefix("metric_events_p"))
                // Running again creates nothing.
                #expect(try await db.withStore(poolSize: 1) { try await $0.maintenance.run(.init(metricDays: 3, evaluationDays: 3)) }.partitionsCreated == 0)

                // The next day: simulate the clock moving on by calling the functions with a later "today".
                let rows = try await pool.query(
                    """
                    WITH today AS (SELECT (now() AT TIME ZONE 'UTC')::date + 1 AS d)
                    SELECT tocsin_drop_one_partition('metric_events', (SELECT d FROM today) - 3) AS dropped,
                           tocsin_drop_one_partition('metric_events', (SELECT d FROM today) - 3) AS none_left,
                           tocsin_ensure_partitions('metric_events', 'occurred_at', (SELECT d FROM today) - 3,
                                                    (SELECT d FROM today) + 3) AS created
                    """)
                #expect(try rows[0].decode("dropped", as: String?.self)?.hasPrefix("metric_events_p") == true)
                #expect(try rows[0].decode("none_left", as: String?.self) == nil)
                #expect(try rows[0].decode("created", as: Int.self) == 1)
                let names = try await partitions(pool)
                #expect(names.count == 8)
                #expect(names.contains("metric_events_default"))
                #expect(try await eventCount(db) == 1)
            }
        }
    }

    @Test("an event for a far past or future day within the allowed range is stored")
    func farDays() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.ingest])
                let now = Date().timeIntervalSince1970
                try await post(app, key: key, [
                    event("upload.success", at: now - 29 * 86_400), event("upload.success", at: now + 240),
                ])
                #expect(try await eventCount(db) == 2)
                try await db.withPool { pool in
                    _ = try await db.withStore(poolSize: 1) { try await $0.maintenance.run(.init(metricDays: 30)) }
                    let rows = try await pool.query("SELECT tableoid::regclass::text AS part FROM metric_events ORDER BY occurred_at")
                    for row in rows { #expect(try row.decode("part", as: String.self).hasPrefix("metric_events_p")) }
                }
                #expect(try await eventCount(db) == 2)
            }
        }
    }
}

@Suite("Hourly rollups behind the summary")
struct RollupTests {
    /// Three hours of events at known times and values, through the API.
    func seed(_ app: RunningApp, key: String, base: Double) async throws {
        var events: [String] = []
        for i in 0..<360 {  // one every 30 s over 3 hours
            let t = base + Double(i) * 30
            events.append(event(i % 10 == 0 ? "upload.failure" : "upload.success", platform: i % 2 == 0 ? "tiktok" : "instagram", at: t))
            events.append(event("webhook.latency", platform: "tiktok", value: Double(i % 50) / 10 + 0.05, at: t))
        }
        try await post(app, key: key, events)
    }

    @Test("whole hours from rollups and partial hours from events give the exact counts, averages and p95")
    func exactAcrossHours() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.admin])
                let base = (Date().timeIntervalSince1970 / 3600).rounded(.down) * 3600 - 4 * 3600
                try await seed(app, key: key, base: base)
                // 20 minutes into the first hour to 40 minutes into the third: two partial hours and one whole.
                let since = RFC3339.format(Date(timeIntervalSince1970: base + 1200))
                let until = RFC3339.format(Date(timeIntervalSince1970: base + 2 * 3600 + 2400))
                let summary = try await app.client.get("/api/monitoring/metrics?since=\(since)&until=\(until)",
                                                       headers: ["Authorization": "Bearer \(key)"]).json()
                // The same numbers straight from the events.
                let expected = try await db.withPool(size: 1) { pool in
                    try await pool.query(
                        """
                        SELECT count(*) FILTER (WHERE name = 'upload.success') AS ok, count(*) FILTER (WHERE name = 'upload.failure') AS bad,
                               avg(value) FILTER (WHERE name = 'webhook.latency') AS avg,
                               percentile_cont(0.95) WITHIN GROUP (ORDER BY value) FILTER (WHERE name = 'webhook.latency') AS p95
                        FROM metric_events WHERE occurred_at >= \(Date(timeIntervalSince1970: base + 1200)) AND occurred_at < \(Date(timeIntervalSince1970: base + 2 * 3600 + 2400))
                        """)[0]
                }
                let totals = try #require(summary["totals"] as? [String: Any])
                let upload = try #require(totals["upload"] as? [String: Any])
                #expect(upload["success"] as? Int == (try expected.decode("ok", as: Int.self)))
                #expect(upload["failure"] as? Int == (try expected.decode("bad", as: Int.self)))
                let webhook = try #require(totals["webhook"] as? [String: Any])
                #expect(abs((webhook["avg_latency_s"] as? Double ?? 0) - (try expected.decode("avg", as: Double.self))) < 1e-9)
                #expect(abs((webhook["p95_latency_s"] as? Double ?? 0) - (try expected.decode("p95", as: Double.self))) < 1e-9)
                let rollups: Int = try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT count(DISTINCT hour) AS n FROM metric_rollups")[0].decode("n")
                }
                #expect(rollups == 3)
            }
        }
    }

    @Test("a window ending now: the current hour from its rollup, less events stamped ahead; either side of a start edge")
    func windowEndingNow() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.admin])
                let now = Date().timeIntervalSince1970
                var events: [String] = []
                // One every 20 s over the last 3 hours, and three stamped up to 4 minutes ahead.
                for i in 0..<540 {
                    let t = now - 5 - Double(i) * 20
                    events.append(event(i % 7 == 0 ? "upload.failure" : "upload.success", platform: i % 2 == 0 ? "tiktok" : "instagram", at: t))
                    events.append(event("webhook.latency", platform: "tiktok", value: Double(i % 40) / 8 + 0.1, at: t))
                }
                for ahead in [60.0, 120, 240] {
                    events.append(event("upload.success", platform: "tiktok", at: now + ahead))
                    events.append(event("webhook.latency", platform: "tiktok", value: 99, at: now + ahead))
                }
                try await post(app, key: key, events)
                for window in ["15m", "1h", "24h", "7d"] {
                    let summary = try await app.client.get("/api/monitoring/metrics?window=\(window)",
                                                           headers: ["Authorization": "Bearer \(key)", "Cache-Control": "no-cache"]).json()
                    let since = try #require((summary["since"] as? String).flatMap(RFC3339.parse), "\(summary)")
                    let until = try #require((summary["until"] as? String).flatMap(RFC3339.parse))
                    let expected = try await db.withPool(size: 1) { pool in
                        try await pool.query(
                            """
                            SELECT count(*) FILTER (WHERE name = 'upload.success') AS ok, count(*) FILTER (WHERE name = 'upload.failure') AS bad,
                                   avg(value) FILTER (WHERE name = 'webhook.latency') AS avg
                            FROM metric_events WHERE occurred_at >= \(since) AND occurred_at < \(until)
                            """)[0]
                    }
                    let totals = try #require(summary["totals"] as? [String: Any])
                    let upload = try #require(totals["upload"] as? [String: Any])
                    #expect(upload["success"] as? Int == (try expected.decode("ok", as: Int.self)), "\(window)")
                    #expect(upload["failure"] as? Int == (try expected.decode("bad", as: Int.self)), "\(window)")
                    let webhook = try #require(totals["webhook"] as? [String: Any])
                    #expect(abs((webhook["avg_latency_s"] as? Double ?? 0) - (try expected.decode("avg", as: Double.self))) < 1e-9,
                            "\(window)")
                }
            }
        }
    }

    @Test("over many samples p95 comes from the histograms, within 5 % of the exact value")
    func histogramP95() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.admin])
                let base = (Date().timeIntervalSince1970 / 3600).rounded(.down) * 3600 - 3 * 3600
                var events: [String] = []
                for i in 0..<(MetricEventRepository.exactPercentileLimit + 4000) {
                    // A long-tailed spread from 10 ms to about 20 s.
                    let value = 0.01 * pow(1.0004, Double(i % 19_000))
                    events.append(event("api.latency", platform: i % 3 == 0 ? "instagram" : "tiktok", value: value,
                                        at: base + Double(i % 10_000)))
                }
                try await post(app, key: key, events)
                let summary = try await app.client.get("/api/monitoring/metrics?window=24h", headers: ["Authorization": "Bearer \(key)"]).json()
                let exact: Double = try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p FROM metric_events")[0].decode("p")
                }
                let api = try #require((summary["totals"] as? [String: Any])?["api"] as? [String: Any])
                let estimate = try #require(api["p95_latency_s"] as? Double)
                #expect(abs(estimate - exact) / exact < 0.05, "estimate \(estimate), exact \(exact)")
                // Each platform's too, from its own buckets.
                let groups = try #require(summary["platforms"] as? [[String: Any]], "\(summary)")
                for platform in ["tiktok", "instagram"] {
                    let group = try #require(groups.first { $0["platform"] as? String == platform }, "\(groups)")
                    let exactHere: Double = try await db.withPool(size: 1) { pool in
                        try await pool.query(
                            "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p FROM metric_events WHERE platform = \(platform)"
                        )[0].decode("p")
                    }
                    let here = try #require((group["api"] as? [String: Any])?["p95_latency_s"] as? Double, "\(group)")
                    #expect(abs(here - exactHere) / exactHere < 0.05, "\(platform): estimate \(here), exact \(exactHere)")
                }
            }
        }
    }

    @Test("rebuilding the rollups from the events gives what ingestion kept")
    func rebuild() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let key = try await db.createKey(scopes: [.ingest])
                try await seed(app, key: key, base: (Date().timeIntervalSince1970 / 3600).rounded(.down) * 3600 - 4 * 3600)
                let snapshot: PostgresQuery = """
                    SELECT hour, name, platform, sum(count) AS n, round(sum(sum)::numeric, 6) AS s, min(min) AS lo, max(max) AS hi,
                           tocsin_histogram_sum(histogram)::text AS h
                    FROM metric_rollups GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
                    """
                try await db.withPool(size: 1) { pool in
                    let kept = try await pool.query(snapshot).map { row in try (0..<row.columns.count).map { try row.decode($0, as: String?.self) } }
                    try await pool.query("SELECT tocsin_rebuild_rollups('-infinity', 'infinity')")
                    let rebuilt = try await pool.query(snapshot).map { row in try (0..<row.columns.count).map { try row.decode($0, as: String?.self) } }
                    #expect(kept.count > 0)
                    #expect(kept == rebuilt)
                    // From a session in a zone 5:30 off UTC, and over a range that ends inside an hour:
                    // still UTC hours, each whole.
                    try await pool.withConnection { connection in
                        try connection.execute(script: "SET TIME ZONE 'Asia/Kolkata'")
                        _ = try connection.query("SELECT tocsin_rebuild_rollups(now() - interval '6 hours', now() - interval '90 minutes')")
                        try connection.execute(script: "SET TIME ZONE 'UTC'")
                    }
                    let again = try await pool.query(snapshot).map { row in try (0..<row.columns.count).map { try row.decode($0, as: String?.self) } }
                    #expect(kept == again)
                }
            }
        }
    }
}
