import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinStore

/// The worker's retention against a real PostgreSQL: what is past its
/// retention goes (in batches), what is open or pending stays, and a table
/// lock held by someone else defers a step instead of queueing behind it.
@Suite("Retention")
struct RetentionTests {
    /// An alert of `rule` resolved `daysAgo` days ago (open when nil), with a
    /// transition and one notification in `status`, updated `notifiedDaysAgo`
    /// days ago.
    static func seedAlert(_ pool: PostgresPool, resolvedDaysAgo daysAgo: Int?, notification status: String,
                          notifiedDaysAgo: Int) async throws {
        try await pool.query(
            """
            WITH rule AS (SELECT id, name FROM alert_rules WHERE name = 'oauth_failures'),
            alert AS (
                INSERT INTO alerts (rule_id, rule_name, severity, group_key, platform, status, value, threshold, comparison,
                                    started_at, fired_at, resolved_at, resolution)
                SELECT id, name, 'error', gen_random_uuid()::text, 'tiktok',
                       CASE WHEN \(daysAgo)::int IS NULL THEN 'firing' ELSE 'resolved' END, 9, 5, '>',
                       now() - make_interval(days => coalesce(\(daysAgo)::int, 0) + 1),
                       now() - make_interval(days => coalesce(\(daysAgo)::int, 0) + 1),
                       now() - make_interval(days => \(daysAgo)::int),
                       CASE WHEN \(daysAgo)::int IS NULL THEN NULL ELSE 'auto' END
                FROM rule RETURNING id, rule_id, rule_name
            ),
            event AS (
                INSERT INTO alert_events (alert_id, rule_id, transition, from_status, to_status, threshold, actor, at)
                SELECT id, rule_id, 'fired', 'pending', 'firing', 5, 'worker:test', now() - interval '1 day' FROM alert
                RETURNING id, alert_id
            )
            INSERT INTO notifications (alert_id, alert_event_id, rule_name, transition, channel, channel_kind, status,
                                       content, updated_at)
            SELECT a.id, e.id, a.rule_name, 'fired', 'ops', 'slack', \(status), '{}',
                   now() - make_interval(days => \(notifiedDaysAgo))
            FROM alert a JOIN event e ON e.alert_id = a.id
            """)
    }

    static func count(_ pool: PostgresPool, _ table: String) async throws -> Int {
        try await pool.query(PostgresQuery(unsafeSQL: "SELECT count(*) AS n FROM \(table)"))[0].decode("n")
    }

    @Test("resolved alerts past ALERT_RETENTION_DAYS go with their history and notifications; open alerts and pending notifications stay")
    func alertsAndNotifications() async throws {
        try await withTestDatabase { db in
            try await db.applyDefaultRules()
            try await db.withPool { pool in
                for _ in 0..<5 { try await Self.seedAlert(pool, resolvedDaysAgo: 401, notification: "sent", notifiedDaysAgo: 401) }
                // Kept: resolved within the retention (its old notification goes), open since long, pending forever.
                try await Self.seedAlert(pool, resolvedDaysAgo: 100, notification: "sent", notifiedDaysAgo: 100)
                try await Self.seedAlert(pool, resolvedDaysAgo: 100, notification: "dead", notifiedDaysAgo: 10)
                try await Self.seedAlert(pool, resolvedDaysAgo: nil, notification: "pending", notifiedDaysAgo: 500)
                // Check requests older than a day go.
                try await pool.query("INSERT INTO check_requests (requested_by, requested_at) VALUES ('ops', now() - interval '2 days'), ('ops', now())")

                var policy = MaintenanceRepository.Policy()
                policy.batchSize = 2  // five old alerts: three batches
                let report = try await db.withStore(poolSize: 2) { try await $0.maintenance.run(policy) }
                #expect(report.ran)
                #expect(report.deferred.isEmpty)
                #expect(report.rowsDeleted["alerts"] == 5)
                // Finished notifications go first: the five old alerts' and the 100-day-old one.
                #expect(report.rowsDeleted["notifications"] == 6)
                #expect(report.rowsDeleted["check_requests"] == 1)

                let left = try await pool.query(
                    """
                    SELECT a.status, a.resolved_at IS NOT NULL AND a.resolved_at < now() - interval '50 days' AS old,
                           count(DISTINCT e.id) AS events, count(DISTINCT n.id) AS notifications
                    FROM alerts a LEFT JOIN alert_events e ON e.alert_id = a.id LEFT JOIN notifications n ON n.alert_id = a.id
                    GROUP BY a.id ORDER BY a.id
                    """).map {
                        "\(try $0.decode("status", as: String.self)) old=\(try $0.decode("old", as: Bool.self)) "
                            + "events=\(try $0.decode("events", as: Int.self)) notifications=\(try $0.decode("notifications", as: Int.self))"
                    }
                #expect(left == [
                    "resolved old=true events=1 notifications=0",  // its sent notification was 100 days old
                    "resolved old=true events=1 notifications=1",  // dead 10 days ago: kept
                    "firing old=false events=1 notifications=1",  // pending: never deleted
                ])
                #expect(try await Self.count(pool, "alert_events") == 3)
                #expect(try await Self.count(pool, "check_requests") == 1)

                // Nothing left to do: a second round deletes nothing.
                let again = try await db.withStore(poolSize: 2) { try await $0.maintenance.run(policy) }
                #expect(again.rowsPruned == 0)
            }
        }
    }

    @Test("a partition drop gives way to a long query on its table (no queue of inserts behind it) and happens next round")
    func dropGivesWay() async throws {
        try await withTestDatabase { db in
            let wide = MaintenanceRepository.Policy(metricDays: 10, evaluationDays: 10)
            let created = try await db.withStore(poolSize: 2) { try await $0.maintenance.run(wide) }
            #expect(created.partitionsCreated == 28)  // today-10 … today+3, for both tables

            // A long report holds metric_events (ACCESS SHARE) until it commits.
            let reader = try PostgresConnection.connect(db.url)
            defer { reader.close() }
            try reader.query("BEGIN")
            try reader.query("SELECT count(*) FROM metric_events")

            var narrow = MaintenanceRepository.Policy(metricDays: 3, evaluationDays: 3)
            narrow.lockTimeout = .milliseconds(100)
            let blocked = try await db.withStore(poolSize: 2) { try await $0.maintenance.run(narrow) }
            #expect(blocked.deferred == ["drop metric_events partitions"])
            // rule_evaluations is not held: its 7 old days are dropped, one per transaction.
            #expect(blocked.partitionsDropped == 7)
            // While the report runs, ingestion goes on.
            try await db.withPool(size: 1) { pool in
                try await pool.query("INSERT INTO metric_events (occurred_at, name, value) VALUES (now(), 'upload.success', 1)")
                let parts = try await pool.query(
                    "SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'metric_events'::regclass")[0].decode("n", as: Int.self)
                #expect(parts == 15)  // 14 days and the default: none dropped
            }

            try reader.query("COMMIT")
            let next = try await db.withStore(poolSize: 2) { try await $0.maintenance.run(narrow) }
            #expect(next.deferred.isEmpty)
            #expect(next.partitionsDropped == 7)
            let events = try await db.withPool(size: 1) { pool in try await Self.count(pool, "metric_events") }
            #expect(events == 1)
        }
    }
}
