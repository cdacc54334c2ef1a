import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinNotify
import TocsinStore

func webhookConfig(_ receiver: HTTPReceiver, rate: Double? = nil, burst: Int? = nil, kind: NotifyConfig.Channel.Kind = .webhook) -> NotifyConfig {
    let channel = NotifyConfig.Channel(name: "hook", kind: kind, url: receiver.url + "/hook", ratePerSecond: rate, burst: burst)
    return NotifyConfig(channels: [channel], routes: [.init(channels: ["hook"])])
}

@Suite("Retries, rate limits, silences and leases")
struct RetryTests {
    @Test("500 then 200: delivered once")
    func retryThenSuccess() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await receiver.control(#"{"script": [500]}"#)
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let notify = webhookConfig(receiver)
                try await fire(pool, notify: notify)
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { try await notificationStatuses(pool) == ["sent"] })
                }
                let requests = try await receiver.requests()
                #expect(requests.map(\.status) == [500, 200])
                let attempts: Int = try await pool.query("SELECT attempts FROM notifications")[0].decode("attempts")
                #expect(attempts == 2)
            }
        }
    }

    @Test("429 with Retry-After: 2: no request before 2 seconds")
    func retryAfter() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await receiver.control(#"{"script": [429], "retry_after": "2"}"#)
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let notify = webhookConfig(receiver)
                try await fire(pool, notify: notify)
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { try await notificationStatuses(pool) == ["sent"] })
                }
                let requests = try await receiver.requests()
                #expect(requests.map(\.status) == [429, 200])
                #expect(requests[1].at - requests[0].at >= 2.0, "retried after \(requests[1].at - requests[0].at) s")
            }
        }
    }

    @Test("always 500: dead after the last attempt, and the API's retry queues it again")
    func deadLetter() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await receiver.control(#"{"mode": "fail", "status": 503}"#)
        try await withTestDatabase { db in
            let notify = webhookConfig(receiver)
            try await db.withPool { pool in
                try await fire(pool, notify: notify)
                try await withDispatcher(pool, notify: notify, settings: fastSettings(maxAttempts: 3, base: 0.2)) { () async throws in
                    #expect(try await eventually { try await notificationStatuses(pool) == ["dead"] })
                }
                #expect(try await receiver.requests().count == 3)
            }
            try await withRunningApp(db) { app in
                let reader = ["Authorization": "Bearer \(try await db.createKey(scopes: [.read]))"]
                let admin = ["Authorization": "Bearer \(try await db.createKey(scopes: [.admin]))"]
                let dead = try await app.client.get("/api/notifications?status=dead", headers: reader)
                let rows = try #require(try dead.json()["notifications"] as? [[String: Any]])
                #expect(rows.count == 1)
                #expect(rows[0]["attempts"] as? Int == 3)
                #expect((rows[0]["last_error"] as? String)?.contains("503") == true)
                let id = try #require(rows[0]["id"] as? Int)
                #expect(try await app.client.request("POST", "/api/notifications/\(id)/retry", headers: reader).status == 403)
                #expect(try await app.client.request("POST", "/api/notifications/999999/retry", headers: admin).status == 404)
                let retried = try await app.client.request("POST", "/api/notifications/\(id)/retry", headers: admin)
                #expect(retried.status == 200)
                #expect((try retried.json()["notification"] as? [String: Any])?["status"] as? String == "pending")
                #expect(try await app.client.request("POST", "/api/notifications/\(id)/retry", headers: admin).status == 409)
                #expect(try await app.client.get("/api/notifications?status=bogus", headers: reader).status == 400)
            }
            try await receiver.control(#"{"mode": "ok"}"#)
            try await db.withPool { pool in
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { try await notificationStatuses(pool) == ["sent"] })
                }
            }
            #expect(try await receiver.requests().map(\.status) == [503, 503, 503, 200])
        }
    }

    @Test("a receiver that hangs times out and the delivery is retried")
    func hang() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await receiver.control(#"{"mode": "hang"}"#)
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let notify = webhookConfig(receiver)
                try await fire(pool, notify: notify)
                try await withDispatcher(pool, notify: notify, timeoutMs: 1_000) { () async throws in
                    #expect(try await eventually { try await receiver.requests().count >= 1 })
                    #expect(try await eventually {
                        let error: String? = try await pool.query("SELECT last_error FROM notifications")[0].decode("last_error")
                        return error?.lowercased().contains("timeout") == true || error?.lowercased().contains("timed out") == true
                    })
                    try await receiver.control(#"{"mode": "ok"}"#)
                    #expect(try await eventually { try await notificationStatuses(pool) == ["sent"] })
                }
            }
        }
    }

    @Test("a receiver that hangs holds one delivery slot, not the rows claimed after it")
    func hangHoldsOneSlot() async throws {
        let slow = try await HTTPReceiver.start()
        defer { slow.stop() }
        let fast = try await HTTPReceiver.start()
        defer { fast.stop() }
        try await slow.control(#"{"mode": "hang"}"#)
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let notify = NotifyConfig(
                    channels: [.init(name: "slow", kind: .webhook, url: slow.url + "/hook"),
                               .init(name: "fast", kind: .webhook, url: fast.url + "/hook")],
                    routes: [.init(channels: ["slow", "fast"])])
                var settings = fastSettings()
                settings.concurrency = 2
                try await fire(pool, notify: notify, platforms: ["p1"])
                // The slow receiver hangs for the whole 15 s timeout.
                try await withDispatcher(pool, notify: notify, settings: settings, timeoutMs: 15_000) { () async throws in
                    #expect(try await eventually {
                        let (f, w) = (try await fast.requests().count, try await slow.requests().count)
                        return f == 1 && w == 1
                    })
                    // A second alert while the first slow delivery hangs: its fast message goes out now.
                    try await fire(pool, notify: notify, platforms: ["p2"])
                    #expect(try await eventually(timeout: .seconds(10)) { try await fast.requests().count == 2 },
                            "the fast channel waited for the hanging one")
                    let first = try await pool.query(
                        """
                        SELECT n.status, n.attempts, n.last_error FROM notifications n JOIN alerts a ON a.id = n.alert_id
                        WHERE n.channel = 'slow' AND a.platform = 'p1'
                        """)[0]
                    #expect(try first.decode("status", as: String.self) == "pending")
                    #expect(try first.decode("last_error", as: String?.self) == nil, "still in its first, hanging attempt")
                    try await slow.control(#"{"mode": "ok"}"#)
                }
            }
        }
    }

    @Test("a 400 is not retried")
    func permanent() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await receiver.control(#"{"mode": "fail", "status": 400}"#)
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let notify = webhookConfig(receiver)
                try await fire(pool, notify: notify)
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { try await notificationStatuses(pool) == ["dead"] })
                }
                #expect(try await receiver.requests().count == 1)
            }
        }
    }

    @Test("a storm to Slack is queued at 1 message a second after a burst of 5, none dropped")
    func rateLimit() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let notify = webhookConfig(receiver, kind: .slack)
                try await fire(pool, notify: notify, platforms: (0..<8).map { "p\($0)" })
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually(timeout: .seconds(30)) {
                        try await notificationStatuses(pool) == Array(repeating: "sent", count: 8)
                    })
                }
                let times = try await receiver.requests().map(\.at).sorted()
                #expect(times.count == 8)
                // 5 at once, then one a second: the 8th waits for 3 more tokens, about 3 s (1 s of slack for the first request's set-up).
                #expect(times[7] - times[0] >= 2.0, "spread \(times[7] - times[0]) s")
                // The burst went out unheld: only rows beyond it waited for a token (fewer
                // if a slow machine let a token refill first), as the ledger records.
                let held: Int = try await pool.query(
                    "SELECT count(DISTINCT notification_id) AS n FROM delivery_ledger WHERE event = 'rate_limited'")[0].decode("n")
                #expect(held <= 3, "\(held) rows waited for a token")
            }
        }
    }

    @Test("a silence holds notifications (recorded as silenced) and releases them when it ends, if the alert is still open")
    func silence() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let notify = webhookConfig(receiver)
                let store = makeStore(pool)
                let silence = try await store.silences.create(rule: "test_rule", platform: "tiktok", severity: nil, labels: [:],
                                                              startsAt: nil, endsAt: Date().addingTimeInterval(3600),
                                                              comment: "maintenance", createdBy: "ops")
                try await fire(pool, notify: notify, platforms: ["tiktok", "instagram"])
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { try await receiver.requests().count == 1 })
                    try await Task.sleep(for: .seconds(1))
                    #expect(try await receiver.requests().count == 1)
                    let held: String = try await pool.query(
                        "SELECT n.status FROM notifications n JOIN alerts a ON a.id = n.alert_id WHERE a.platform = 'tiktok'")[0].decode("status")
                    #expect(held == "silenced")
                    // The alert itself is recorded and open.
                    let open: Int = try await pool.query("SELECT count(*) AS n FROM alerts WHERE status = 'firing'")[0].decode("n")
                    #expect(open == 2)
                    #expect(try await store.silences.delete(id: silence.id))
                    #expect(try await eventually { try await receiver.requests().count == 2 })
                }
                let bodies = try await receiver.requests().map { try $0.json() }
                #expect(((bodies[1]["alert"] as? [String: Any])?["platform"] as? String) == "tiktok")
            }
        }
    }

    @Test("a claimed row whose dispatcher vanished is sent by another after the lease")
    func leaseExpiry() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let notify = webhookConfig(receiver)
                let store = makeStore(pool)
                #expect(try await store.outbox.secondsUntilNextDue(channels: ["hook"]) == nil, "nothing pending: no poll")
                try await fire(pool, notify: notify)
                #expect(try await store.outbox.secondsUntilNextDue(channels: ["hook"]) == 0, "due now")
                // A dispatcher claims with a 2 s lease and is never heard from again.
                let claimed = try await store.outbox.claim(owner: "ghost", channels: ["hook"], limit: 10, leaseSeconds: 2)
                #expect(claimed.count == 1)
                // While the lease runs, an idle dispatcher has nothing to do
                // (a full second's wait, not a poll); nor for rows of channels
                // it cannot deliver to.
                #expect(try await store.outbox.secondsUntilNextDue(channels: ["hook"]) ?? 0 >= 0.9)
                #expect(try await store.outbox.secondsUntilNextDue(channels: ["other"]) == nil)
                let start = Date()
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { try await notificationStatuses(pool) == ["sent"] })
                }
                #expect(Date().timeIntervalSince(start) >= 1.5)
                #expect(try await receiver.requests().count == 1)
            }
        }
    }
}

@Suite("Repeats for alerts still firing")
struct RepeatTests {
    @Test("repeat k is queued once per channel when fired_at + k × repeat_interval has passed")
    func repeats() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let notify = webhookConfig(receiver)
                try await fire(pool, notify: notify)
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { try await notificationStatuses(pool) == ["sent"] })
                }
                let store = makeStore(pool).outbox
                // Fired 4 h 10 min ago: the default repeat interval (4 h) has passed once.
                try await pool.query("UPDATE alerts SET fired_at = now() - interval '4 hours 10 minutes'")
                #expect(try await store.queueRepeats() == 1)
                #expect(try await store.queueRepeats() == 0)
                let repeats = try await pool.query(
                    "SELECT transition, sequence, status FROM notifications WHERE transition = 'repeat'")
                #expect(repeats.count == 1)
                #expect(try repeats[0].decode("sequence", as: Int.self) == 1)
                // An acknowledged alert is not repeated.
                try await pool.query("UPDATE alerts SET status = 'acknowledged', fired_at = now() - interval '9 hours'")
                #expect(try await store.queueRepeats() == 0)
            }
        }
    }
}
