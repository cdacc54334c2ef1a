import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore

/// Group messages as the store writes them, step by step: which updates a
/// group gets, when, and what each one tells. Intervals are an hour and
/// `advance` moves the groups' clock, so no step depends on how fast the
/// machine is.
@Suite("Notification groups in the store", .serialized)
struct NotificationGroupTests {
    static let rule = RuleFile.parse(yaml: """
        rules:
          - name: stuck
            description: stuck jobs
            severity: error
            kind: count
            metric: job.stuck
            window: 15m
            comparison: ">"
            threshold: 0
            group_by: platform
        """).rules

    struct Harness {
        let db: TestDatabase
        let store: Store
        let pool: PostgresPool
        let ruleID: Int32

        func fire(_ platforms: [String]) async throws {
            try await pool.query(
                """
                INSERT INTO metric_events (occurred_at, name, platform, value)
                SELECT now() - interval '5 seconds', 'job.stuck', p, 1 FROM unnest(\(platforms)::text[]) p
                """)
            try await evaluate()
        }

        func recover(_ platforms: [String]) async throws {
            try await pool.query("DELETE FROM metric_events WHERE platform = ANY(\(platforms)::text[])")
            try await evaluate()
        }

        /// As if `seconds` had passed for the groups: their due and last
        /// message times move back.
        func advance(_ seconds: Double = 3600) async throws {
            try await pool.query(
                """
                UPDATE notification_groups SET next_flush_at = next_flush_at - make_interval(secs => \(seconds)),
                                               last_flush_at = last_flush_at - make_interval(secs => \(seconds))
                """)
        }

        func evaluate() async throws {
            _ = try await store.evaluations.evaluate(ruleID: ruleID, trigger: .manual, force: true, workerID: "test")
        }

        /// The group messages so far: (sequence, kind, firing, resolved).
        func messages() async throws -> [(sequence: Int, kind: String, firing: Int, resolved: Int)] {
            try await pool.query(
                """
                SELECT sequence, content->>'kind' AS kind, (content->'group'->>'firing')::int AS firing,
                       (content->'group'->>'resolved')::int AS resolved
                FROM notifications WHERE transition = 'group' ORDER BY id
                """).map { (try $0.decode("sequence"), try $0.decode("kind"), try $0.decode("firing"), try $0.decode("resolved")) }
        }
    }

    func withGroups(route: NotifyConfig.Route, _ body: (Harness) async throws -> Void) async throws {
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                _ = try await store.rules.apply(Self.rule, appliedBy: "test", source: "test")
                let config = NotifyConfig(channels: [.init(name: "hook", kind: .webhook, url: "http://127.0.0.1:9/hook")],
                                          routes: [route])
                _ = try await store.config.applyNotify(config.detachingSecrets(environment: [:]).config, appliedBy: "test",
                                                       source: "test")
                let ruleID = try #require(try await store.rules.list().first?.id)
                try await body(Harness(db: db, store: store, pool: pool, ruleID: ruleID))
            }
        }
    }

    static func grouped(interval: Int = 3600, repeatSeconds: Int = 4 * 3600, sendResolved: Bool = true) -> NotifyConfig.Route {
        var route = NotifyConfig.Route(channels: ["hook"], sendResolved: sendResolved, repeatIntervalSeconds: repeatSeconds)
        route.groupBy = ["rule"]
        route.groupIntervalSeconds = interval
        return route
    }

    @Test("a group's first message at once, one update per interval with what changed, a last message when all resolved")
    func lifecycle() async throws {
        try await withGroups(route: Self.grouped()) { h in
            try await h.fire(["a", "b", "c"])
            #expect(try await h.store.outbox.flushGroups() == 1)
            #expect(try await h.store.outbox.flushGroups() == 0, "nothing more is due")
            try await h.recover(["a"])
            try await h.fire(["d"])
            #expect(try await h.store.outbox.flushGroups() == 0, "an update waits for group_interval")
            try await h.advance()
            #expect(try await h.store.outbox.flushGroups() == 1)
            try await h.recover(["b", "c", "d"])
            try await h.advance()
            #expect(try await h.store.outbox.flushGroups() == 1)
            let messages = try await h.messages()
            #expect(messages.map(\.sequence) == [1, 2, 3])
            #expect(messages.map(\.kind) == ["fired", "fired", "resolved"])
            #expect(messages.map(\.firing) == [3, 3, 0])
            #expect(messages.map(\.resolved) == [0, 1, 3])
            #expect(try await h.pool.query("SELECT count(*) AS n FROM notification_groups")[0].decode("n", as: Int.self) == 0,
                    "a group whose last resolution was told is gone")
            // The next storm starts a new group (a new PagerDuty incident).
            try await h.fire(["e"])
            #expect(try await h.store.outbox.flushGroups() == 1)
            #expect(try await h.messages().last?.sequence == 1)
        }
    }

    @Test("send_resolved: false: resolutions leave the group untold, and a group that resolved entirely goes quietly")
    func quietResolutions() async throws {
        try await withGroups(route: Self.grouped(sendResolved: false)) { h in
            try await h.fire(["a", "b"])
            #expect(try await h.store.outbox.flushGroups() == 1)
            try await h.recover(["a", "b"])
            try await h.advance()
            #expect(try await h.store.outbox.flushGroups() == 0)
            #expect(try await h.messages().count == 1)
            #expect(try await h.pool.query("SELECT count(*) AS n FROM notification_groups")[0].decode("n", as: Int.self) == 0)
            let alert: Int = try await h.pool.query("SELECT min(id) AS id FROM alerts")[0].decode("id")
            let ledger = try #require(try await h.store.outbox.deliveries(alertID: alert, limit: 100))
            #expect(ledger.last?.event == .dropped)
            #expect(ledger.last?.detail?.contains("send_resolved: false") == true)
        }
    }

    @Test("repeats: the group again every repeat_interval while an alert nobody acknowledged fires; none once all are acknowledged")
    func repeats() async throws {
        try await withGroups(route: Self.grouped(repeatSeconds: 4 * 3600)) { h in
            try await h.fire(["a", "b"])
            #expect(try await h.store.outbox.flushGroups() == 1)
            #expect(try await h.store.outbox.flushGroups() == 0, "the repeat waits for repeat_interval")
            try await h.advance(4 * 3600)
            #expect(try await h.store.outbox.flushGroups() == 1)
            #expect(try await h.messages().map(\.kind) == ["fired", "repeat"])
            for id in try await h.pool.query("SELECT id FROM alerts").map({ try $0.decode("id", as: Int.self) }) {
                _ = try await h.store.alerts.act(.acknowledge, alertID: id, actor: "oncall", note: nil)
            }
            try await h.advance(4 * 3600)
            #expect(try await h.store.outbox.flushGroups() == 0)
            #expect(try await h.messages().count == 2)
        }
    }

    @Test("an alert that fires and resolves before its group's message is never told, and the ledger says so")
    func untold() async throws {
        var route = Self.grouped()
        route.groupWaitSeconds = 3600
        try await withGroups(route: route) { h in
            try await h.fire(["a", "b"])
            try await h.recover(["a"])
            #expect(try await h.store.outbox.flushGroups() == 0, "group_wait holds the first message")
            try await h.advance()
            #expect(try await h.store.outbox.flushGroups() == 1)
            let messages = try await h.messages()
            #expect(messages.map(\.firing) == [1] && messages.map(\.resolved) == [0])
            let a: Int = try await h.pool.query("SELECT id FROM alerts WHERE platform = 'a'")[0].decode("id")
            let events = try #require(try await h.store.outbox.deliveries(alertID: a, limit: 100)).map(\.event)
            #expect(events == [.routed, .grouped, .routed, .grouped, .dropped], "\(events)")
        }
    }
}
