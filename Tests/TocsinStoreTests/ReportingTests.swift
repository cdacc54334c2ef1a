import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore

/// Runs every ```sql block of docs/reporting.md against a database seeded
/// with hand-built alerts, events, notifications and evaluations whose
/// answers are known, and compares the whole result — column names and every
/// value as PostgreSQL prints it. A query added to the document without an
/// expected answer here fails `everyQueryIsTested`.
@Suite("Reporting queries of docs/reporting.md")
struct ReportingTests {
    /// One ```sql block and the heading above it.
    struct DocumentedQuery: Sendable, CustomStringConvertible {
        var title: String
        var sql: String
        var description: String { title }
    }

    /// The queries this test knows, in the document's order.
    static let knownTitles = [
        "Alerts per day by severity",
        "Mean time to acknowledge and to resolve, per rule",
        "Noisiest rules: most alerts",
        "Noisiest rules: most flapping",
        "Alerts per group label",
        "SLO burn-rate alerts and their evidence",
        "Alerts by source: rules and external senders",
        "Upload error rate by platform per day",
        "Notification delivery by channel",
        "Dead letters",
        "Alerts that never reached anyone",
        "Median time to first delivery per channel",
        "Rule evaluations in the last 24 hours",
    ]

    static func documentedQueries(_ file: String = "docs/reporting.md") throws -> [DocumentedQuery] {
        let path = TestEnvironment.repositoryRoot.appendingPathComponent(file).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var queries: [DocumentedQuery] = []
        var heading = ""
        // Inside a fenced block: its language and lines so far.
        var fence: (language: String, lines: [String])?
        for line in text.components(separatedBy: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if var open = fence {
                if trimmed == "```" {
                    if open.language == "sql" {
                        queries.append(DocumentedQuery(title: heading, sql: open.lines.joined(separator: "\n")))
                    }
                    fence = nil
                } else {
                    open.lines.append(line)
                    fence = open
                }
            } else if trimmed.hasPrefix("```") {
                fence = (language: String(trimmed.dropFirst(3)).trimmingCharacters(in: .whitespaces), lines: [])
            } else if line.hasPrefix("#") {
                heading = line.drop(while: { $0 == "#" }).trimmingCharacters(in: .whitespaces)
            }
        }
        return queries
    }

    @Test("every sql block of docs/reporting.md has a known answer here")
    func everyQueryIsTested() throws {
        let queries = try Self.documentedQueries()
        #expect(queries.count == Self.knownTitles.count,
                "docs/reporting.md has \(queries.count) sql blocks; ReportingTests knows \(Self.knownTitles.count)")
        #expect(queries.map(\.title) == Self.knownTitles)
        #expect(Set(queries.map(\.title)).count == queries.count, "two queries share a heading")
    }

    @Test("each query returns the known answer on seeded data", arguments: ReportingTests.knownTitles)
    func query(_ title: String) async throws {
        let queries = try Self.documentedQueries()
        let documented = try #require(queries.first { $0.title == title }, "no query headed '\(title)' in docs/reporting.md")
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                let seed = try await ReportingSeed.plant(pool, store)
                let expected = try await seed.expected(title, pool)
                let rows = try await pool.query(PostgresQuery(unsafeSQL: documented.sql))
                #expect(rows.columns == expected.columns, "\(title): columns")
                let actual = rows.map { row in (0..<rows.columns.count).map { row.text($0) } }
                #expect(actual == expected.rows, "\(title): rows")
            }
        }
    }

    @Test("the SQL examples of docs/schema.md and docs/MONITORING_GUIDE.md run")
    func otherExamples() async throws {
        let schema = try Self.documentedQueries("docs/schema.md")
        let guide = try Self.documentedQueries("docs/MONITORING_GUIDE.md")
        #expect(!schema.isEmpty && !guide.isEmpty)
        try await withTestDatabase { db in
            try await db.withPoolAndStore { pool, store in
                _ = try await ReportingSeed.plant(pool, store)
                // The seed writes events with SQL, not through the API: build their rollups.
                try await pool.query("SELECT tocsin_rebuild_rollups('-infinity', 'infinity')")
                for example in schema {
                    let rows = try await pool.query(PostgresQuery(unsafeSQL: example.sql))
                    #expect(!rows.isEmpty, "schema.md, \(example.title): no rows")
                }
                for example in guide {
                    _ = try await pool.query(PostgresQuery(unsafeSQL: example.sql))
                }
            }
        }
    }
}

/// The seeded data and the answers it must give.
///
/// Times are whole seconds relative to the start of today (UTC) as the
/// database sees it: `at(k, h, m)` is h:m UTC, k days ago. Everything is 1
/// to 3 days old (inside every query's range) except the rows that must be
/// left out, which are 10 or 40 days old.
///
/// Alerts (rule, group, times as day-hour:minute):
///
/// | #   | rule           | group     | started | fired  | acked   | resolved        |
/// |-----|----------------|-----------|---------|--------|---------|-----------------|
/// | A1  | upload_errors  | tiktok    | 2-10:00 | 2-10:00| 2-10:06 | 2-10:30 auto    |
/// | A2  | upload_errors  | tiktok    | 2-10:40 | 2-10:40|         | 2-11:00 auto    |
/// | A3  | upload_errors  | tiktok    | 2-11:20 | 2-11:20|         | 2-11:45 auto    |
/// | A4  | upload_errors  | instagram | 1-09:00 | 1-09:00|         | 1-10:00 manual  |
/// | A5  | token_failures |           | 1-08:00 | 1-08:00| 1-08:10 | 1-09:00 auto    |
/// | A6  | token_failures |           | 3-05:00 | 3-05:00| 3-05:20 | (acknowledged)  |
/// | A7  | slow_webhooks  |           | 1-12:00 |        |         | 1-12:05 auto    |
/// | A8  | slow_webhooks  |           | 2-03:00 | 2-03:05|         | 2-05:05 no_data |
/// | A9  | slow_webhooks  |           | 40-01:00| 40-01:00|        | 40-02:00 auto   |
/// | A10 | slow_webhooks  |           | 1-13:00 | 1-13:00|         | (firing)        |
struct ReportingSeed: Sendable {
    var midnight: Double
    /// `YYYY-MM-DD` of 1, 2 and 3 days ago (UTC).
    var day: [Int: String]
    var alerts: [String: Int] = [:]
    var notifications: [String: Int] = [:]
    /// Text of the timestamps the expected rows show, as PostgreSQL prints them.
    var shown: [String: String] = [:]

    func at(_ daysAgo: Int, _ hour: Int, _ minute: Int, seconds: Int = 0) -> Date {
        Date(timeIntervalSince1970: midnight - Double(daysAgo * 86_400) + Double(hour * 3600 + minute * 60 + seconds))
    }

    static func plant(_ pool: PostgresPool, _ store: Store) async throws -> ReportingSeed {
        let clock = try await pool.query(
            """
            SELECT extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC'))::float8 AS midnight,
                   extract(epoch FROM date_trunc('second', now()))::float8 AS now,
                   ((now() AT TIME ZONE 'UTC')::date - 1)::text AS d1,
                   ((now() AT TIME ZONE 'UTC')::date - 2)::text AS d2,
                   ((now() AT TIME ZONE 'UTC')::date - 3)::text AS d3
            """)[0]
        var seed = ReportingSeed(midnight: try clock.decode("midnight"),
                        day: [1: try clock.decode("d1"), 2: try clock.decode("d2"), 3: try clock.decode("d3")])
        let now: Double = try clock.decode("now")

        try await store.rules.apply([
            Rule(name: "upload_errors", kind: .ratio, numerator: ["upload.failure"],
                 denominator: ["upload.success", "upload.failure"], threshold: 0.05, groupBy: .platform, severity: .error),
            Rule(name: "token_failures", kind: .count, metric: "token.refresh.failure", threshold: 3, severity: .critical),
            Rule(name: "slow_webhooks", kind: .aggregate, metric: "webhook.latency", function: .avg, threshold: 5,
                 severity: .warning),
            Rule(name: "quiet_rule", kind: .count, metric: "oauth.failure", threshold: 5, severity: .warning),
            Rule(name: "slow_endpoints", kind: .aggregate, metric: "api.latency", function: .p95, threshold: 2,
                 groupBy: ["platform", "endpoint"], severity: .warning),
            Rule(name: "upload_slo", kind: .slo, windowSeconds: nil, threshold: 1, groupBy: .platform, severity: .critical,
                 slo: ServiceLevelObjective(good: ["upload.success"], total: ["upload.success", "upload.failure"],
                                            objective: 0.995)),
        ], appliedBy: "test", source: "test")

        func alert(_ label: String, _ rule: String, _ group: String, _ status: String, started: Date, fired: Date?,
                   acknowledged: Date? = nil, resolved: Date? = nil, resolution: String? = nil) async throws {
            let row = try await pool.query(
                """
                INSERT INTO alerts (rule_id, rule_name, severity, group_key, platform, status, value, threshold, comparison,
                                    samples, started_at, fired_at, last_evaluated_at, acknowledged_at, acknowledged_by,
                                    resolved_at, resolved_by, resolution)
                SELECT id, name, severity, \(group)::text, nullif(\(group)::text, ''), \(status)::text, 1, threshold, comparison, 10,
                       \(started)::timestamptz, \(fired)::timestamptz, coalesce(\(resolved)::timestamptz, \(started)::timestamptz), \(acknowledged)::timestamptz,
                       CASE WHEN \(acknowledged)::timestamptz IS NOT NULL THEN 'oncall' END, \(resolved)::timestamptz,
                       CASE WHEN \(resolution)::text = 'manual' THEN 'oncall' END, \(resolution)::text
                FROM alert_rules WHERE name = \(rule)::text
                RETURNING id
                """)
            seed.alerts[label] = try row[0].decode("id")
        }
        try await alert("A1", "upload_errors", "tiktok", "resolved", started: seed.at(2, 10, 0), fired: seed.at(2, 10, 0),
                        acknowledged: seed.at(2, 10, 6), resolved: seed.at(2, 10, 30), resolution: "auto")
        try await alert("A2", "upload_errors", "tiktok", "resolved", started: seed.at(2, 10, 40), fired: seed.at(2, 10, 40),
                        resolved: seed.at(2, 11, 0), resolution: "auto")
        try await alert("A3", "upload_errors", "tiktok", "resolved", started: seed.at(2, 11, 20), fired: seed.at(2, 11, 20),
                        resolved: seed.at(2, 11, 45), resolution: "auto")
        try await alert("A4", "upload_errors", "instagram", "resolved", started: seed.at(1, 9, 0), fired: seed.at(1, 9, 0),
                        resolved: seed.at(1, 10, 0), resolution: "manual")
        try await alert("A5", "token_failures", "", "resolved", started: seed.at(1, 8, 0), fired: seed.at(1, 8, 0),
                        acknowledged: seed.at(1, 8, 10), resolved: seed.at(1, 9, 0), resolution: "auto")
        try await alert("A6", "token_failures", "", "acknowledged", started: seed.at(3, 5, 0), fired: seed.at(3, 5, 0),
                        acknowledged: seed.at(3, 5, 20))
        try await alert("A7", "slow_webhooks", "", "resolved", started: seed.at(1, 12, 0), fired: nil,
                        resolved: seed.at(1, 12, 5), resolution: "auto")
        try await alert("A8", "slow_webhooks", "", "resolved", started: seed.at(2, 3, 0), fired: seed.at(2, 3, 5),
                        resolved: seed.at(2, 5, 5), resolution: "no_data")
        try await alert("A9", "slow_webhooks", "", "resolved", started: seed.at(40, 1, 0), fired: seed.at(40, 1, 0),
                        resolved: seed.at(40, 2, 0), resolution: "auto")
        try await alert("A10", "slow_webhooks", "", "firing", started: seed.at(1, 13, 0), fired: seed.at(1, 13, 0))

        // The transitions, as the evaluator and the API would have written them.
        try await pool.query(
            """
            INSERT INTO alert_events (alert_id, rule_id, transition, from_status, to_status, value, threshold, samples, actor, at)
            SELECT id, rule_id, 'fired', NULL, 'firing', 1, threshold, 10, 'worker:test', fired_at
            FROM alerts WHERE fired_at IS NOT NULL
            """)

        // Alerts of label-grouped and SLO rules, 40 days ago (outside the
        // 30-day reports), with their labels and the evidence of their firing.
        func grouped(_ label: String, _ rule: String, _ group: String, labels: String, severity: String,
                     evidence: String?) async throws {
            let row = try await pool.query(
                """
                WITH a AS (
                    INSERT INTO alerts (rule_id, rule_name, severity, group_key, platform, labels, status, value, threshold,
                                        comparison, samples, started_at, fired_at, last_evaluated_at, resolved_at, resolution)
                    SELECT id, name, \(severity)::text, \(group)::text, 'tiktok', \(labels)::jsonb, 'resolved', 15.2, threshold,
                           comparison, 900, \(seed.at(40, 6, 0))::timestamptz, \(seed.at(40, 6, 0))::timestamptz,
                           \(seed.at(40, 7, 0))::timestamptz, \(seed.at(40, 7, 0))::timestamptz, 'auto'
                    FROM alert_rules WHERE name = \(rule)::text
                    RETURNING id, rule_id, threshold, fired_at
                )
                INSERT INTO alert_events (alert_id, rule_id, transition, from_status, to_status, value, threshold, samples,
                                          actor, at, evidence)
                SELECT id, rule_id, 'fired', NULL, 'firing', 15.2, threshold, 900, 'worker:test', fired_at, \(evidence)::jsonb FROM a
                RETURNING alert_id
                """)
            seed.alerts[label] = try row[0].decode("alert_id")
        }
        try await grouped("A11", "upload_slo", "tiktok/critical", labels: #"{"platform": "tiktok"}"#, severity: "critical",
                          evidence: #"{"objective": 0.995, "condition": "burn rate > 14.4 over 1h/5m", "budget_remaining": 0.41234, "burn_rates": {"5m": 20.08, "30m": 7.5, "1h": 15.2, "6h": 6.96, "3d": 1.1}, "group": {"platform": "tiktok"}}"#)
        try await grouped("A12", "slow_endpoints", "platform=tiktok,endpoint=/v2/video/upload",
                          labels: #"{"platform": "tiktok", "endpoint": "/v2/video/upload"}"#, severity: "warning",
                          evidence: #"{"group": {"platform": "tiktok", "endpoint": "/v2/video/upload"}}"#)
        seed.shown["A11 fired"] = try await pool.query("SELECT \(seed.at(40, 6, 0))::timestamptz::text AS t")[0].decode("t")

        // Upload events: day 2 tiktok 8 ok / 2 failed, instagram 5 ok; day 1
        // tiktok 1 ok / 3 failed, one failure without a platform. Left out:
        // 10 days old, and other names.
        func events(_ name: String, _ platform: String?, _ count: Int, from start: Date, value: Double = 1) async throws {
            try await pool.query(
                """
                INSERT INTO metric_events (occurred_at, name, platform, value)
                SELECT \(start)::timestamptz + g * interval '1 second', \(name)::text, \(platform)::text, \(value)::float8
                FROM generate_series(1, \(count)::int) g
                """)
        }
        try await events("upload.success", "tiktok", 8, from: seed.at(2, 10, 0))
        try await events("upload.failure", "tiktok", 2, from: seed.at(2, 11, 0))
        try await events("upload.success", "instagram", 5, from: seed.at(2, 12, 0))
        try await events("upload.success", "tiktok", 1, from: seed.at(1, 1, 0))
        try await events("upload.failure", "tiktok", 3, from: seed.at(1, 2, 0))
        try await events("upload.failure", nil, 1, from: seed.at(1, 3, 0))
        try await events("upload.failure", "tiktok", 5, from: seed.at(10, 3, 0))
        try await events("webhook.latency", "tiktok", 4, from: seed.at(1, 4, 0), value: 2.5)
        try await events("oauth.failure", "instagram", 2, from: seed.at(1, 5, 0))

        func notification(_ label: String, alert: String, _ transition: String, channel: String, kind: String,
                          status: String, attempts: Int, created: Date, deliveredAfter: Int? = nil,
                          failedAt: Date? = nil, code: Int? = nil, error: String? = nil) async throws {
            let row = try await pool.query(
                """
                INSERT INTO notifications (alert_id, alert_event_id, rule_name, transition, channel, channel_kind, status,
                                           content, attempts, next_attempt_at, last_error, last_status_code, created_at,
                                           updated_at, sent_at)
                SELECT a.id, (SELECT max(e.id) FROM alert_events e WHERE e.alert_id = a.id), a.rule_name, \(transition)::text, \(channel)::text,
                       \(kind)::text, \(status)::text, '{}'::jsonb, \(attempts)::int, \(created)::timestamptz, \(error)::text, \(code)::int, \(created)::timestamptz,
                       coalesce(\(failedAt)::timestamptz, \(created)::timestamptz + make_interval(secs => coalesce(\(deliveredAfter)::int, 0))),
                       \(created)::timestamptz + make_interval(secs => \(deliveredAfter)::int)
                FROM alerts a WHERE a.id = \(seed.alerts[alert]!)::int8
                RETURNING id
                """)
            seed.notifications[label] = try row[0].decode("id")
        }
        // slack-ops: 3 sent (1, 1, 2 attempts; 2, 4, 30 s), 1 dead after 8, 1 pending.
        try await notification("N1", alert: "A1", "fired", channel: "slack-ops", kind: "slack", status: "sent", attempts: 1,
                               created: seed.at(2, 10, 0), deliveredAfter: 2, code: 200)
        try await notification("N2", alert: "A2", "fired", channel: "slack-ops", kind: "slack", status: "sent", attempts: 1,
                               created: seed.at(2, 10, 40), deliveredAfter: 4, code: 200)
        try await notification("N3", alert: "A3", "fired", channel: "slack-ops", kind: "slack", status: "sent", attempts: 2,
                               created: seed.at(2, 11, 20), deliveredAfter: 30, code: 200)
        try await notification("N4", alert: "A4", "fired", channel: "slack-ops", kind: "slack", status: "dead", attempts: 8,
                               created: seed.at(1, 9, 0), failedAt: seed.at(1, 9, 21), code: 503,
                               error: "HTTP 503: upstream unavailable")
        try await notification("N5", alert: "A10", "fired", channel: "slack-ops", kind: "slack", status: "pending",
                               attempts: 0, created: seed.at(1, 13, 0))
        // pagerduty: 2 sent (1 and 3 attempts; 1 and 3 s), 1 silenced, 1 dropped.
        try await notification("N6", alert: "A5", "fired", channel: "pagerduty", kind: "pagerduty", status: "sent",
                               attempts: 1, created: seed.at(1, 8, 0), deliveredAfter: 1, code: 202)
        try await notification("N7", alert: "A5", "resolved", channel: "pagerduty", kind: "pagerduty", status: "sent",
                               attempts: 3, created: seed.at(1, 9, 0), deliveredAfter: 3, code: 202)
        try await notification("N8", alert: "A6", "fired", channel: "pagerduty", kind: "pagerduty", status: "silenced",
                               attempts: 0, created: seed.at(3, 5, 0))
        try await notification("N9", alert: "A8", "fired", channel: "pagerduty", kind: "pagerduty", status: "dropped",
                               attempts: 0, created: seed.at(2, 3, 5), error: "the alert resolved while silenced")
        // oncall-webhook: refused for good at the first attempt.
        try await notification("N10", alert: "A10", "fired", channel: "oncall-webhook", kind: "webhook", status: "dead",
                               attempts: 1, created: seed.at(1, 13, 0), failedAt: seed.at(1, 13, 0, seconds: 1), code: 404,
                               error: "HTTP 404: not found")
        // Left out of the 30 days.
        try await notification("N11", alert: "A9", "fired", channel: "slack-ops", kind: "slack", status: "sent", attempts: 1,
                               created: seed.at(40, 1, 0), deliveredAfter: 5, code: 200)

        // The delivery ledger of those rows: routed when queued; sent,
        // dead, silenced or dropped as they ended (N5 is still pending).
        try await pool.query(
            """
            INSERT INTO delivery_ledger (alert_id, notification_id, route, channel, event, transition, at)
            SELECT alert_id, id, 'route #1', channel, 'routed', transition, created_at FROM notifications
            """)
        try await pool.query(
            """
            INSERT INTO delivery_ledger (alert_id, notification_id, route, channel, event, transition, status_code, at)
            SELECT alert_id, id, 'route #1', channel, status, transition, last_status_code,
                   CASE WHEN status = 'sent' THEN sent_at ELSE updated_at END
            FROM notifications WHERE status IN ('sent', 'dead', 'silenced', 'dropped')
            """)

        // Evaluations: upload_errors twice (two groups each; 4.5 and 2.5 ms; no
        // data in one group the first time), token_failures once in the last
        // 24 hours (1.25 ms) and once 30 hours ago (left out).
        let hour = 3600.0
        func evaluation(_ rule: String, _ group: String?, _ value: Double?, outcome: String, secondsAgo: Double,
                        ms: Double) async throws {
            try await pool.query(
                """
                INSERT INTO rule_evaluations (rule_id, rule_name, group_key, value, samples, outcome, trigger, worker_id,
                                              started_at, duration_ms)
                SELECT id, name, \(group)::text, \(value)::float8, 10, \(outcome)::text, 'schedule', 'test-worker', \(Date(timeIntervalSince1970: now - secondsAgo))::timestamptz, \(ms)::float8
                FROM alert_rules WHERE name = \(rule)::text
                """)
        }
        try await evaluation("upload_errors", "tiktok", 0.2, outcome: "firing", secondsAgo: 2 * hour, ms: 4.5)
        try await evaluation("upload_errors", "instagram", nil, outcome: "no_data", secondsAgo: 2 * hour, ms: 4.5)
        try await evaluation("upload_errors", "tiktok", 0.1, outcome: "firing", secondsAgo: hour, ms: 2.5)
        try await evaluation("upload_errors", "instagram", 0, outcome: "ok", secondsAgo: hour, ms: 2.5)
        try await evaluation("token_failures", "", 1, outcome: "ok", secondsAgo: 3 * hour, ms: 1.25)
        try await evaluation("token_failures", "", 1, outcome: "ok", secondsAgo: 30 * hour, ms: 100)

        for (name, date) in [("upload_errors last", Date(timeIntervalSince1970: now - hour)),
                             ("token_failures last", Date(timeIntervalSince1970: now - 3 * hour)),
                             ("N4 failed", seed.at(1, 9, 21)), ("N10 failed", seed.at(1, 13, 0, seconds: 1))] {
            seed.shown[name] = try await pool.query("SELECT \(date)::timestamptz::text AS t")[0].decode("t")
        }
        return seed
    }

    struct Expected {
        var columns: [String]
        var rows: [[String?]]
    }

    func expected(_ title: String, _ pool: PostgresPool) async throws -> Expected {
        switch title {
        case "Alerts per day by severity":
            // Fired alerts only (A7 never fired), by the day they fired; A9 is 40 days old.
            return Expected(columns: ["day", "warning", "error", "critical", "total"], rows: [
                [day[3]!, "0", "0", "1", "1"],  // A6
                [day[2]!, "1", "3", "0", "4"],  // A8; A1, A2, A3
                [day[1]!, "1", "1", "1", "3"],  // A10; A4; A5
            ])
        case "Mean time to acknowledge and to resolve, per rule":
            return Expected(columns: ["rule", "fired", "acknowledged", "resolved", "mtta_minutes", "mttr_minutes"], rows: [
                // A8 and A10 fired (A7 did not, A9 is too old); nobody acknowledged; A8 resolved after 120 minutes.
                ["slow_webhooks", "2", "0", "1", nil, "120.0"],
                // A5, A6: acknowledged after 10 and 20 minutes; A5 resolved after 60.
                ["token_failures", "2", "2", "1", "15.0", "60.0"],
                // A1 to A4: one acknowledgement after 6 minutes; resolved after 30, 20, 25 and 60 minutes.
                ["upload_errors", "4", "1", "4", "6.0", "33.8"],
            ])
        case "Noisiest rules: most alerts":
            return Expected(columns: ["rule", "alerts", "fired", "short_lived", "groups"], rows: [
                // A2 (20 min) and A3 (25 min) resolved on their own in under 30 minutes; A1 took 30, A4 was manual.
                ["upload_errors", "4", "4", "2", "2"],
                ["slow_webhooks", "3", "2", "0", "1"],
                ["token_failures", "2", "2", "0", "1"],
            ])
        case "Noisiest rules: most flapping":
            return Expected(columns: ["rule", "group_key", "alerts", "reopened_within_1h"], rows: [
                // A2 opened 10 minutes after A1 resolved, A3 20 minutes after A2.
                ["upload_errors", "tiktok", "3", "2"],
                // A10 opened 55 minutes after A7 resolved; A7 came 31 hours after A8.
                ["slow_webhooks", "", "3", "1"],
            ])
        case "Alerts per group label":
            return Expected(columns: ["rule", "group_labels", "alerts", "fired"], rows: [
                ["slow_endpoints", #"{"endpoint": "/v2/video/upload", "platform": "tiktok"}"#, "1", "1"],
                ["upload_slo", #"{"platform": "tiktok"}"#, "1", "1"],
            ])
        case "SLO burn-rate alerts and their evidence":
            return Expected(columns: ["rule", "group_key", "severity", "fired_at", "condition", "budget_remaining",
                                      "burn_rates"], rows: [
                ["upload_slo", "tiktok/critical", "critical", shown["A11 fired"]!, "burn rate > 14.4 over 1h/5m", "0.412",
                 "1h 15.2, 30m 7.5, 3d 1.1, 5m 20.1, 6h 7.0"],
            ])
        case "Alerts by source: rules and external senders":
            // Three external alerts, fired yesterday: E1 resolved by its sender after 10 minutes, E2 expired after 5,
            // E3 still firing. Planted here, so the other queries' answers stay those of the rule alerts.
            for (name, fired, resolved, resolution) in [
                ("E1", at(1, 14, 0), at(1, 14, 10) as Date?, "auto" as String?), ("E2", at(1, 15, 0), at(1, 15, 5), "expired"),
                ("E3", at(1, 16, 0), nil, nil),
            ] {
                try await pool.query(
                    """
                    INSERT INTO alerts (rule_id, rule_name, severity, group_key, status, threshold, comparison, started_at,
                                        fired_at, resolved_at, resolution, source, fingerprint, ends_at, last_received_at)
                    VALUES (NULL, \(name)::text, 'warning', \(name)::text,
                            CASE WHEN \(resolved)::timestamptz IS NULL THEN 'firing' ELSE 'resolved' END, 0, '',
                            \(fired)::timestamptz, \(fired)::timestamptz, \(resolved)::timestamptz, \(resolution)::text, 'external',
                            \(name)::text, \(fired)::timestamptz + interval '5 minutes', \(fired)::timestamptz)
                    """)
            }
            return Expected(columns: ["source", "fired", "expired", "acknowledged", "mttr_minutes"], rows: [
                ["external", "3", "1", "0", "7.5"],
                // A1 to A6, A8, A10 (A7 never fired, A9 is too old); A1, A5, A6 acknowledged;
                // resolved after 30, 20, 25, 60, 60 and 120 minutes.
                ["rule", "8", "0", "3", "52.5"],
            ])
        case "Upload error rate by platform per day":
            return Expected(columns: ["day", "platform", "successes", "failures", "error_rate_pct"], rows: [
                [day[2]!, "instagram", "5", "0", "0.00"],
                [day[2]!, "tiktok", "8", "2", "20.00"],
                [day[1]!, "(none)", "0", "1", "100.00"],
                [day[1]!, "tiktok", "1", "3", "75.00"],
            ])
        case "Notification delivery by channel":
            return Expected(columns: ["channel", "channel_kind", "notifications", "sent", "dead", "pending", "silenced",
                                      "dropped", "success_pct", "avg_attempts_when_sent", "max_attempts",
                                      "avg_delivery_seconds"], rows: [
                ["oncall-webhook", "webhook", "1", "0", "1", "0", "0", "0", "0.0", nil, "1", nil],
                ["pagerduty", "pagerduty", "4", "2", "0", "0", "1", "1", "100.0", "2.00", "3", "2.0"],
                // N11 (40 days old) is left out: 3 sent of 4 finished; (1+1+2)/3 attempts; (2+4+30)/3 seconds.
                ["slack-ops", "slack", "5", "3", "1", "1", "0", "0", "75.0", "1.33", "8", "12.0"],
            ])
        case "Dead letters":
            return Expected(columns: ["id", "alert_id", "rule", "channel", "transition", "attempts", "last_status_code",
                                      "last_error", "failed_at"], rows: [
                [String(notifications["N10"]!), String(alerts["A10"]!), "slow_webhooks", "oncall-webhook", "fired", "1",
                 "404", "HTTP 404: not found", shown["N10 failed"]!],
                [String(notifications["N4"]!), String(alerts["A4"]!), "upload_errors", "slack-ops", "fired", "8", "503",
                 "HTTP 503: upstream unavailable", shown["N4 failed"]!],
            ])
        case "Alerts that never reached anyone":
            // Fired in 30 days without a sent entry, newest firing first: A10 (dead
            // webhook, pending Slack), A4 (dead), A8 (dropped), A6 (silenced).
            return Expected(columns: ["alert_id", "rule", "platform", "status", "fired_on", "what_happened"], rows: [
                [String(alerts["A10"]!), "slow_webhooks", "", "firing", day[1]!, "dead, routed"],
                [String(alerts["A4"]!), "upload_errors", "instagram", "resolved", day[1]!, "dead, routed"],
                [String(alerts["A8"]!), "slow_webhooks", "", "resolved", day[2]!, "dropped, routed"],
                [String(alerts["A6"]!), "token_failures", "", "acknowledged", day[3]!, "routed, silenced"],
            ])
        case "Median time to first delivery per channel":
            return Expected(columns: ["channel", "alerts_reached", "median_seconds", "max_seconds"], rows: [
                // A5: its firing was sent after 1 s (its resolution later does not count).
                ["pagerduty", "1", "1.0", "1.0"],
                // A1, A2, A3 after 2, 4 and 30 s; A9 is 40 days old.
                ["slack-ops", "3", "4.0", "30.0"],
            ])
        case "Rule evaluations in the last 24 hours":
            return Expected(columns: ["rule", "evaluations", "avg_ms", "max_ms", "with_no_data", "last_evaluated_at"], rows: [
                ["token_failures", "1", "1.3", "1.3", "0", shown["token_failures last"]!],
                ["upload_errors", "2", "3.5", "4.5", "1", shown["upload_errors last"]!],
            ])
        default:
            Issue.record("no expected answer for the query '\(title)'")
            return Expected(columns: [], rows: [])
        }
    }
}
