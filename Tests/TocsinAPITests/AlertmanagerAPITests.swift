import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore

/// Counts of what the Alertmanager API stored.
func amCounts(_ db: TestDatabase) async throws -> (alerts: Int, events: Int, notifications: Int, silences: Int) {
    try await db.withPool(size: 1) { pool in
        let row = try await pool.query(
            """
            SELECT (SELECT count(*) FROM alerts) AS alerts, (SELECT count(*) FROM alert_events) AS events,
                   (SELECT count(*) FROM notifications) AS notifications, (SELECT count(*) FROM silences) AS silences
            """)[0]
        return (try row.decode("alerts"), try row.decode("events"), try row.decode("notifications"), try row.decode("silences"))
    }
}

func jsonArray(_ response: TestHTTPResponse) throws -> [[String: Any]] {
    guard let list = try JSONSerialization.jsonObject(with: response.body) as? [[String: Any]] else {
        throw AMTestError(description: "not a JSON array: \(response.text)")
    }
    return list
}

/// The JSON string body of an Alertmanager error.
func amError(_ response: TestHTTPResponse) -> String? {
    try? JSONSerialization.jsonObject(with: response.body, options: [.fragmentsAllowed]) as? String
}

@Suite("The Alertmanager v2 API", .serialized)
struct AlertmanagerAPITests {
    static let diskFull = #"{"labels":{"alertname":"DiskFull","severity":"critical","instance":"db1"},"annotations":{"summary":"disk full"},"generatorURL":"http://prometheus/graph"}"#

    @Test("a posted alert fires once; re-posting it sends nothing; endsAt in the past resolves it, with evidence in its history")
    func lifecycle() async throws {
        try await withTestDatabase { db in
            try await db.applyNotify(.slackFromEnvironment())
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.alerts]))"]
                let read = ["Authorization": "Bearer \(try await db.createKey(scopes: [.read]))"]
                #expect(try await app.client.post("/api/v2/alerts", json: "[\(Self.diskFull)]", headers: auth).status == 200)
                for _ in 0..<3 {
                    let again = #"[{"labels":{"alertname":"DiskFull","severity":"critical","instance":"db1"},"annotations":{"summary":"still full"}}]"#
                    #expect(try await app.client.post("/api/v2/alerts", json: again, headers: auth).status == 200)
                }
                var counts = try await amCounts(db)
                #expect(counts.alerts == 1 && counts.events == 1 && counts.notifications == 1)

                let listed = try jsonArray(try await app.client.get("/api/v2/alerts", headers: read))
                #expect(listed.count == 1)
                #expect(listed.first?["fingerprint"] as? String == Fingerprint.of(["alertname": "DiskFull", "severity": "critical", "instance": "db1"]))
                #expect((listed.first?["annotations"] as? [String: String])?["summary"] == "still full")
                #expect((listed.first?["receivers"] as? [[String: String]])?.first?["name"] == "slack")
                #expect((listed.first?["status"] as? [String: Any])?["state"] as? String == "active")

                // The Tocsin API shows it as an alert whose rule is its alertname.
                let page = try await app.client.get("/api/monitoring/alerts", headers: read).json()
                let alert = try #require((page["alerts"] as? [[String: Any]])?.first)
                #expect(alert["rule"] as? String == "DiskFull" && alert["source"] as? String == "external")
                #expect(alert["severity"] as? String == "critical" && alert["status"] as? String == "firing")
                let id = try #require(alert["id"] as? Int)

                let resolve = #"[{"labels":{"alertname":"DiskFull","severity":"critical","instance":"db1"},"startsAt":"2020-01-01T00:00:00Z","endsAt":"2020-01-01T00:05:00Z"}]"#
                #expect(try await app.client.post("/api/v2/alerts", json: resolve, headers: auth).status == 200)
                // Prometheus keeps sending a resolved alert for a while: nothing more happens.
                #expect(try await app.client.post("/api/v2/alerts", json: resolve, headers: auth).status == 200)
                counts = try await amCounts(db)
                #expect(counts.alerts == 1 && counts.events == 2 && counts.notifications == 2)
                #expect(try jsonArray(try await app.client.get("/api/v2/alerts", headers: read)).isEmpty)

                let detail = try await app.client.get("/api/monitoring/alerts/\(id)", headers: read).json()
                #expect((detail["alert"] as? [String: Any])?["resolution"] as? String == "auto")
                let transitions = try #require(detail["transitions"] as? [[String: Any]])
                #expect(transitions.map { $0["transition"] as? String } == ["fired", "resolved"])
                #expect((transitions.first?["labels"] as? [String: String])?["instance"] == "db1")
                #expect((transitions.first?["annotations"] as? [String: String])?["summary"] == "disk full")
                // The resolving post carried no annotations: the evidence says so.
                #expect((transitions.last?["annotations"] as? [String: String]) == [:])

                // The same labels again: a new occurrence fires.
                #expect(try await app.client.post("/api/v2/alerts", json: "[\(Self.diskFull)]", headers: auth).status == 200)
                counts = try await amCounts(db)
                #expect(counts.alerts == 2 && counts.notifications == 3)
            }
        }
    }

    @Test("an external alert is acknowledged like any other and stays so when re-posted; resolved by hand, the next post is a new alert")
    func acknowledgeAndResolve() async throws {
        try await withTestDatabase { db in
            try await db.applyNotify(.slackFromEnvironment())
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(name: "oncall", scopes: [.admin]))"]
                #expect(try await app.client.post("/api/v2/alerts", json: "[\(Self.diskFull)]", headers: auth).status == 200)
                let id: Int = try await db.withPool(size: 1) { pool in try await pool.query("SELECT id FROM alerts")[0].decode("id") }
                let ack = try await app.client.post("/api/monitoring/alerts", json: #"{"id":\#(id),"action":"acknowledge"}"#,
                                                    headers: auth)
                #expect(ack.status == 200, "\(ack.text)")
                #expect(try await app.client.post("/api/v2/alerts", json: "[\(Self.diskFull)]", headers: auth).status == 200)
                let status: String = try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT status FROM alerts WHERE id = \(id)")[0].decode("status")
                }
                #expect(status == "acknowledged")
                let resolve = try await app.client.post("/api/monitoring/alerts", json: #"{"id":\#(id),"action":"resolve"}"#,
                                                        headers: auth)
                #expect(resolve.status == 200, "\(resolve.text)")
                #expect(try await app.client.post("/api/v2/alerts", json: "[\(Self.diskFull)]", headers: auth).status == 200)
                let rows = try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT status, resolution FROM alerts ORDER BY id").map {
                        "\(try $0.decode("status", as: String.self))/\(try $0.decode("resolution", as: String?.self) ?? "-")"
                    }
                }
                #expect(rows == ["resolved/manual", "firing/-"])
            }
        }
    }

    @Test("an HA pair's late firing post of an ended episode opens nothing within the grace, re-opens after it; new episodes fire")
    func endedEpisodes() async throws {
        try await withTestDatabase { db in
            try await db.applyNotify(.slackFromEnvironment())
            try await withRunningApp(db, configure: { $0.externalResolveTimeoutSeconds = 1; $0.externalReopenGraceSeconds = 3 }) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.alerts]))"]
                let now = try await db.withPool(size: 1) { pool in try await pool.query("SELECT now() AS now")[0].decode("now", as: Date.self) }
                func at(_ seconds: Double) -> String { RFC3339.format(now.addingTimeInterval(seconds)) }
                func post(startsAt: String?, endsAt: String?) async throws {
                    var fields = [#""labels":{"alertname":"GaugeHigh","instance":"x"}"#]
                    if let startsAt { fields.append(#""startsAt":"\#(startsAt)""#) }
                    if let endsAt { fields.append(#""endsAt":"\#(endsAt)""#) }
                    let response = try await app.client.post("/api/v2/alerts", json: "[{\(fields.joined(separator: ","))}]", headers: auth)
                    #expect(response.status == 200, "\(response.text)")
                }
                func alerts() async throws -> [String] {
                    try await db.withPool(size: 1) { pool in
                        try await pool.query("SELECT status, coalesce(resolution, '-') AS r FROM alerts ORDER BY id").map {
                            "\(try $0.decode("status", as: String.self))/\(try $0.decode("r", as: String.self))"
                        }
                    }
                }
                // Prometheus A and B fire the episode that started at -60 s; A resolves it at -1 s.
                try await post(startsAt: at(-60), endsAt: at(300))
                try await post(startsAt: at(-59), endsAt: at(300))
                try await post(startsAt: at(-60), endsAt: at(-1))
                #expect(try await alerts() == ["resolved/auto"])
                // B has not seen the recovery yet: its re-sends of the episode open nothing.
                try await post(startsAt: at(-59), endsAt: at(300))
                try await post(startsAt: at(-59), endsAt: nil)
                try await post(startsAt: at(-59), endsAt: at(-0.5))
                #expect(try await alerts() == ["resolved/auto"])
                #expect(try await amCounts(db).notifications == 2, "one message on fire, one on resolve")
                // Past the grace, B still firing is believed: A may have lost its target.
                try await Task.sleep(for: .seconds(3.2))
                try await post(startsAt: at(-59), endsAt: at(300))
                #expect(try await alerts() == ["resolved/auto", "firing/-"])
                try await post(startsAt: at(-59), endsAt: at(-0.2))
                // A new episode (started after the last ended) fires at once, and so does an alert without startsAt.
                try await post(startsAt: at(0), endsAt: nil)
                #expect(try await alerts() == ["resolved/auto", "resolved/auto", "firing/-"])
                try await post(startsAt: nil, endsAt: at(-0.1))
                try await post(startsAt: nil, endsAt: nil)
                #expect(try await alerts() == ["resolved/auto", "resolved/auto", "resolved/auto", "firing/-"])
                // Ended by the timeout (its sender went quiet), not by its sender:
                // a sender that comes back with the old startsAt re-opens it.
                #expect(try await eventually(timeout: .seconds(10), interval: .milliseconds(200)) {
                    try await !app.store.externalAlerts.expire().isEmpty
                })
                try await post(startsAt: at(-60), endsAt: nil)
                #expect(try await alerts() == ["resolved/auto", "resolved/auto", "resolved/auto", "resolved/expired", "firing/-"])
            }
        }
    }

    @Test("twenty concurrent posts of the same alert fire it exactly once")
    func concurrentPosts() async throws {
        try await withTestDatabase { db in
            try await db.applyNotify(.slackFromEnvironment())
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.alerts]))"]
                let batch = "[\(Self.diskFull), {\"labels\":{\"alertname\":\"Other\"}}]"
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<20 { group.addTask { try await app.client.post("/api/v2/alerts", json: batch, headers: auth).status } }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
                let counts = try await amCounts(db)
                #expect(counts.alerts == 2 && counts.events == 2 && counts.notifications == 2)
            }
        }
    }

    @Test("an alert nobody re-posts resolves after the resolve timeout, on the database clock", .timeLimit(.minutes(1)))
    func resolveTimeout() async throws {
        try await withTestDatabase { db in
            try await db.applyNotify(.slackFromEnvironment())
            try await withRunningApp(db, configure: { $0.externalResolveTimeoutSeconds = 1 }) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.alerts]))"]
                #expect(try await app.client.post("/api/v2/alerts", json: "[\(Self.diskFull)]", headers: auth).status == 200)
                let resolved = try await eventually(timeout: .seconds(10), interval: .milliseconds(200)) {
                    try await !app.store.externalAlerts.expire().isEmpty
                }
                #expect(resolved)
                let row = try await db.withPool(size: 1) { pool in
                    try await pool.query(
                        """
                        SELECT status, resolution, resolved_by, extract(epoch FROM resolved_at - last_received_at)::float8 AS waited
                        FROM alerts
                        """)[0]
                }
                #expect(try row.decode("status", as: String.self) == "resolved")
                #expect(try row.decode("resolution", as: String.self) == "expired")
                #expect(try row.decode("resolved_by", as: String.self) == "resolve_timeout")
                // Not before the timeout, on the database clock.
                #expect(try row.decode("waited", as: Double.self) >= 1)
                #expect(try await amCounts(db).notifications == 2)
                #expect(try await app.store.externalAlerts.expire().isEmpty)
            }
        }
    }

    static let badBodies: [(String, String)] = [
        ("/api/v2/alerts", #"[{"labels":{"alertname":"A"},"unknown":1}]"#),
        ("/api/v2/alerts", #"[{"labels":{"severity":"critical"}}]"#),
        ("/api/v2/alerts", #"[{"labels":{"alertname":"A"},"startsAt":"2026-01-02T00:00:00Z","endsAt":"2026-01-01T00:00:00Z"}]"#),
        ("/api/v2/alerts", #"[{"labels":{"alertname":"A"},"startsAt":"yesterday"}]"#),
        ("/api/v2/alerts", #"[{"labels":{"alertname":"A","n":"a\u0000b"}}]"#),
        ("/api/v2/alerts", #"[{"labels":{"alertname":"A","n":1}}]"#),
        ("/api/v2/alerts", #"[{"labels":{"alertname":"ok"}}, {"annotations":{}}]"#),
        ("/api/v2/alerts", #"{"labels":{"alertname":"A"}}"#),
        ("/api/v2/alerts", "[{nope"),
        ("/api/v2/silences", #"{"matchers":[{"name":"a","value":".*","isRegex":true}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"me","comment":"c"}"#),
        ("/api/v2/silences", #"{"matchers":[{"name":"a","value":"(","isRegex":true}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"me","comment":"c"}"#),
        ("/api/v2/silences", #"{"matchers":[{"name":"a","value":"b","isRegex":false,"extra":true}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"me","comment":"c"}"#),
        ("/api/v2/silences", #"{"matchers":[{"name":"a","value":"b","isRegex":"no"}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"me","comment":"c"}"#),
        ("/api/v2/silences", #"{"matchers":[],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"me","comment":"c"}"#),
        ("/api/v2/silences", #"{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2099-01-02T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"me","comment":"c"}"#),
        ("/api/v2/silences", #"{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2020-01-01T00:00:00Z","endsAt":"2020-01-02T00:00:00Z","createdBy":"me","comment":"c"}"#),
        ("/api/v2/silences", #"{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"me","comment":"c","status":"x"}"#),
    ]

    @Test("bad inputs are 400 with Alertmanager's error (a JSON string) and store nothing")
    func badInput() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.admin]))"]
                for (path, body) in Self.badBodies {
                    let response = try await app.client.post(path, json: body, headers: auth)
                    #expect(response.status == 400, "\(body): \(response.text)")
                    #expect(amError(response)?.isEmpty == false, "not a JSON string: \(response.text)")
                }
                let counts = try await amCounts(db)
                #expect(counts.alerts == 0 && counts.silences == 0)
            }
        }
    }

    @Test("bad filters are 400; good ones select by label, = != =~ !~")
    func filters() async throws {
        try await withTestDatabase { db in
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.admin]))"]
                let alerts = #"[{"labels":{"alertname":"A","env":"prod","team":"a b"}},{"labels":{"alertname":"B","env":"dev","team":"a+b"}}]"#
                #expect(try await app.client.post("/api/v2/alerts", json: alerts, headers: auth).status == 200)
                func names(_ query: String) async throws -> [String] {
                    try jsonArray(try await app.client.get("/api/v2/alerts?" + query, headers: auth))
                        .compactMap { ($0["labels"] as? [String: String])?["alertname"] }.sorted()
                }
                #expect(try await names("filter=env%3Dprod") == ["A"])
                #expect(try await names("filter=env%21%3Dprod") == ["B"])
                #expect(try await names("filter=alertname%3D~%22A%7CB%22") == ["A", "B"])
                #expect(try await names("filter=alertname%21~%22A%22&filter=env%3Ddev") == ["B"])
                #expect(try await names("receiver=nothing") == [])
                // As Go's url.Values (amtool, Grafana) encode it: "+" is a space.
                #expect(try await names("filter=team%3D%22a+b%22") == ["A"])
                #expect(try await names("filter=team%3D%22a%2Bb%22") == ["B"])
                #expect(try await names("filter=+team+%3D+%22a+b%22+") == ["A"])
                #expect(try await names("filter=%7Bteam%3D~%22a.b%22%7D") == ["A", "B"])
                // A regular expression over 250 UTF-16 code units is never compiled.
                let long = String(repeating: "a", count: 251)
                for bad in ["filter=env", "filter=env%3D~%22(%22", "active=maybe", "receiver=(", "filter=env%FF%3Dx",
                            "filter=env%3D~" + long, "receiver=" + long, "filter=a%3D%22b%22%7D"] {
                    let response = try await app.client.get("/api/v2/alerts?" + bad, headers: auth)
                    #expect(response.status == 400 && amError(response) != nil, "\(bad): \(response.text)")
                }
                let groups = try jsonArray(try await app.client.get("/api/v2/alerts/groups", headers: auth))
                #expect(groups.count == 1 && (groups.first?["alerts"] as? [Any])?.count == 2)
            }
        }
    }

    @Test("scopes: alerts posts, read reads, admin silences; no key is 401 unless the local address allows it")
    func scopes() async throws {
        try await withTestDatabase { db in
            let one = #"[{"labels":{"alertname":"A"}}]"#
            try await withRunningApp(db) { app in
                let alerts = ["Authorization": "Bearer \(try await db.createKey(scopes: [.alerts]))"]
                let read = ["Authorization": "Bearer \(try await db.createKey(scopes: [.read]))"]
                #expect(try await app.client.post("/api/v2/alerts", json: one, headers: alerts).status == 200)
                #expect(try await app.client.post("/api/v2/alerts", json: one, headers: read).status == 403)
                #expect(try await app.client.get("/api/v2/alerts", headers: alerts).status == 403)
                #expect(try await app.client.get("/api/v2/alerts", headers: read).status == 200)
                #expect(try await app.client.get("/api/v2/status", headers: read).status == 200)
                let silence = #"{"matchers":[{"name":"alertname","value":"A","isRegex":false}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"me","comment":"c"}"#
                #expect(try await app.client.post("/api/v2/silences", json: silence, headers: read).status == 403)
                let anonymous = try await app.client.post("/api/v2/alerts", json: one)
                #expect(anonymous.status == 401 && anonymous.header("www-authenticate") == "Bearer" && amError(anonymous) != nil)
            }
            try await withRunningApp(db, configure: { $0.unauthenticatedAlertAddresses = ["127.0.0.1"] }) { app async throws in
                #expect(try await app.client.post("/api/v2/alerts", json: #"[{"labels":{"alertname":"B"}}]"#).status == 200)
                // Only posting alerts: every other operation still needs a key.
                #expect(try await app.client.get("/api/v2/alerts").status == 401)
                #expect(try await app.client.get("/api/monitoring/alerts").status == 401)
            }
            try await withRunningApp(db, configure: { $0.unauthenticatedAlertAddresses = ["10.9.9.9"] }) { app async throws in
                #expect(try await app.client.post("/api/v2/alerts", json: one).status == 401)
            }
            #expect(try await amCounts(db).alerts == 2)
        }
    }

    @Test("a silence made through /api/v2 is the one /api/silences shows, holds matching alerts, and expires")
    func silences() async throws {
        try await withTestDatabase { db in
            try await db.applyNotify(.slackFromEnvironment())
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(name: "ops-key", scopes: [.admin]))"]
                let body = #"{"matchers":[{"name":"alertname","value":"DiskFull","isRegex":false},{"name":"instance","value":"db[0-9]","isRegex":true},{"name":"env","value":"dev","isRegex":false,"isEqual":false}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"alice","comment":"disk swap"}"#
                let created = try await app.client.post("/api/v2/silences", json: body, headers: auth)
                #expect(created.status == 200, "\(created.text)")
                let id = try #require(try created.json()["silenceID"] as? String)
                #expect(id.hasPrefix("00000000-0000-0000-0000-"))

                let tocsin = try await app.client.get("/api/silences", headers: auth).json()
                let listed = try #require((tocsin["silences"] as? [[String: Any]])?.first)
                #expect((listed["matchers"] as? [Any])?.count == 3 && listed["active"] as? Bool == true)
                #expect(listed["created_by"] as? String == "alice")
                let key: String? = try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT created_by_key FROM silences")[0].decode("created_by_key")
                }
                #expect(key == "ops-key")

                // db1 matches every matcher: held. db1 in dev does not.
                let alerts = #"[{"labels":{"alertname":"DiskFull","instance":"db1"}},{"labels":{"alertname":"DiskFull","instance":"db1","env":"dev"}}]"#
                #expect(try await app.client.post("/api/v2/alerts", json: alerts, headers: auth).status == 200)
                let statuses: [String] = try await db.withPool(size: 1) { pool in
                    try await pool.query("SELECT status FROM notifications ORDER BY status").map { try $0.decode("status") }
                }
                #expect(statuses == ["pending", "silenced"])
                let open = try jsonArray(try await app.client.get("/api/v2/alerts", headers: auth))
                let suppressed = open.filter { ($0["status"] as? [String: Any])?["state"] as? String == "suppressed" }
                #expect(suppressed.count == 1)
                #expect(((suppressed.first?["status"] as? [String: Any])?["silencedBy"] as? [String]) == [id])
                #expect(try jsonArray(try await app.client.get("/api/v2/alerts?silenced=false", headers: auth)).count == 1)

                let one = try await app.client.get("/api/v2/silence/\(id)", headers: auth).json()
                #expect((one["status"] as? [String: String])?["state"] == "active" && one["createdBy"] as? String == "alice")
                #expect(try jsonArray(try await app.client.get("/api/v2/silences?filter=alertname%3DDiskFull", headers: auth)).count == 1)
                #expect(try jsonArray(try await app.client.get("/api/v2/silences?filter=alertname%3DOther", headers: auth)).isEmpty)

                #expect(try await app.client.request("DELETE", "/api/v2/silence/\(id)", headers: auth).status == 200)
                let expired = try await app.client.get("/api/v2/silence/\(id)", headers: auth).json()
                #expect((expired["status"] as? [String: String])?["state"] == "expired")
                #expect(try await app.client.request("DELETE", "/api/v2/silence/00000000-0000-0000-0000-000000000999",
                                                     headers: auth).status == 404)
                // Every id of the documented forms is looked up (none is 0); others are a 400.
                for missing in ["0", "999", "000000000000", "00000000-0000-0000-0000-000000000000"] {
                    #expect(try await app.client.get("/api/v2/silence/\(missing)", headers: auth).status == 404, "\(missing)")
                }
                for bad in ["not-an-id", "-1", "+5", "1234567890123", "00000000-0000-0000-0000-00000000004x"] {
                    #expect(try await app.client.get("/api/v2/silence/\(bad)", headers: auth).status == 400, "\(bad)")
                }
            }
        }
    }

    @Test("status and receivers describe the applied config in Alertmanager's terms")
    func status() async throws {
        try await withTestDatabase { db in
            try await db.applyNotify(.slackFromEnvironment())
            try await withRunningApp(db) { app in
                let auth = ["Authorization": "Bearer \(try await db.createKey(scopes: [.read]))"]
                let status = try await app.client.get("/api/v2/status", headers: auth).json()
                #expect((status["cluster"] as? [String: Any])?["status"] as? String == "ready")
                #expect((status["versionInfo"] as? [String: Any])?["version"] as? String == "0.25.0")
                let original = try #require((status["config"] as? [String: Any])?["original"] as? String)
                #expect(original.contains("receiver: \"slack\"") && original.contains("- name: \"none\""))
                let receivers = try jsonArray(try await app.client.get("/api/v2/receivers", headers: auth))
                #expect(receivers.compactMap { $0["name"] as? String } == ["slack"])
            }
        }
    }
}

struct AMTestError: Error, CustomStringConvertible {
    var description: String
}
