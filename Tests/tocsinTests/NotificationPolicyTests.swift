import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinStore

/// Count rules r0 … r(n-1) on metrics m0 …, per platform, evaluated every
/// second: any event of the metric in the window fires.
func countRules(_ names: [(name: String, metric: String, severity: String)]) -> String {
    "rules:\n" + names.map { rule in
        """
          - name: \(rule.name)
            description: \(rule.name) for the notification policy tests
            severity: \(rule.severity)
            kind: count
            metric: \(rule.metric)
            window: 15m
            comparison: ">"
            threshold: 0
            group_by: platform
            interval: 1s

        """
    }.joined()
}

extension TestDatabase {
    func applyRules(yaml: String) async throws {
        let result = RuleFile.parse(yaml: yaml, defaultIntervalSeconds: 60)
        #expect(result.problems.isEmpty, "\(result.problems)")
        try await applyRules(result.rules)
    }

    func insertEvents(metric: String, platforms: [String], count: Int = 1) async throws {
        _ = try await withPool(size: 1) { pool in
            try await pool.query(
                """
                INSERT INTO metric_events (occurred_at, name, platform, value)
                SELECT now() - interval '5 seconds', \(metric), p, 1 FROM unnest(\(platforms)::text[]) p, generate_series(1, \(count))
                """)
        }
    }

    func scalar<T: PostgresDecodable & Sendable>(_ query: PostgresQuery, as type: T.Type = Int.self) async throws -> T {
        try await withPool(size: 1) { pool in try await pool.query(query)[0].decode("v", as: T.self) }
    }

    func applyNotifyFile(_ yaml: String, templates: [String: String] = [:]) async throws {
        let folder = TestEnvironment.temporaryDirectory + "/notify-" + randomSuffix()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, text) in templates { try text.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8) }
        try yaml.write(toFile: folder + "/notify.yaml", atomically: true, encoding: .utf8)
        let applied = try await TestProcess.run(["notify", "apply", folder + "/notify.yaml"], environment: ["DATABASE_URL": url])
        #expect(applied.status == 0, "\(applied.stderr)")
    }

    /// The ledger explains every message and every non-message: each sent
    /// row has its `sent` entry, each alert that fired was routed, and each
    /// one that reached nobody says why (held, dropped).
    func expectLedgerExplainsEverything() async throws {
        let unexplainedSends = try await scalar(
            """
            SELECT count(*) AS v FROM notifications n WHERE n.status = 'sent'
              AND NOT EXISTS (SELECT 1 FROM delivery_ledger l WHERE l.notification_id = n.id AND l.event = 'sent')
            """)
        #expect(unexplainedSends == 0)
        let unrouted = try await scalar(
            """
            SELECT count(*) AS v FROM alerts a WHERE a.fired_at IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM delivery_ledger l WHERE l.alert_id = a.id AND l.event = 'routed')
            """)
        #expect(unrouted == 0)
        let silent = try await scalar(
            """
            SELECT count(*) AS v FROM alerts a WHERE a.fired_at IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM delivery_ledger l WHERE l.alert_id = a.id
                              AND l.event IN ('sent', 'inhibited', 'silenced', 'muted', 'dropped', 'rate_limited', 'retried', 'dead'))
            """)
        #expect(silent == 0)
    }

    func events(_ alertID: Int) async throws -> [DeliveryRecord] {
        try await withStore(poolSize: 1) { store in try await store.outbox.deliveries(alertID: alertID, limit: 1000) ?? [] }
    }

    func alertID(rule: String, platform: String) async throws -> Int {
        try await scalar("SELECT max(id) AS v FROM alerts WHERE rule_name = \(rule) AND platform = \(platform)")
    }
}

@Suite("Notification policy with worker processes", .serialized)
struct NotificationPolicyTests {
    static func workerEnvironment(_ db: TestDatabase, _ extra: [String: String]) -> [String: String] {
        ["DATABASE_URL": db.url, "LOG_LEVEL": "warning", "WORKER_CONCURRENCY": "2"].merging(extra) { $1 }
    }

    static func stop(_ workers: [TestProcess]) async throws {
        for worker in workers { worker.signal(SIGTERM) }
        for worker in workers { #expect(try await worker.wait() == 0) }
    }

    @Test("200 alerts over 20 platforms, group_by [rule], 3 workers: one message per rule group, then an update per interval, none twice")
    func grouping() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            let rules = (0..<10).map { (name: "r\($0)", metric: "m\($0)", severity: "error") }
            try await db.applyRules(yaml: countRules(rules))
            let platforms = (1...20).map { "p\($0)" }
            for rule in rules { try await db.insertEvents(metric: rule.metric, platforms: platforms) }
            try await db.applyNotifyFile("""
                channels:
                  - name: hook
                    kind: webhook
                    url_env: TEST_HOOK_URL
                    rate_per_second: 1000
                    burst: 1000
                routes:
                  - name: by-rule
                    channels: [hook]
                    group_by: [rule]
                    group_wait: 0s
                    group_interval: 2s
                """)
            let env = Self.workerEnvironment(db, ["TEST_HOOK_URL": receiver.url + "/hook"])
            let workers = try (0..<3).map { _ in try TestProcess.launch(["worker"], environment: env) }
            let first = try await eventually(timeout: .seconds(60)) { try await receiver.requests().count >= 10 }
            #expect(first, "stderr: \(workers[0].stderr)")
            // A new alert in group r0 becomes one update, group_interval after the first message.
            try await db.insertEvents(metric: "m0", platforms: ["p21"])
            let updated = try await eventually(timeout: .seconds(30)) { try await receiver.requests().count >= 11 }
            #expect(updated, "stderr: \(workers[0].stderr)")
            try await Task.sleep(for: .seconds(3))
            try await Self.stop(workers)

            let requests = try await receiver.requests()
            #expect(requests.count == 11)
            #expect(Set(requests.compactMap { $0.headers["idempotency-key"] }).count == requests.count)
            let bodies = try requests.map { try $0.json() }
            let groups = bodies.compactMap { $0["group"] as? [String: Any] }
            #expect(groups.count == 11)
            #expect(bodies.allSatisfy { ($0["type"] as? String) == "group.fired" })
            // One group per rule; each first message tells of its 20 alerts.
            let byGroup = Dictionary(grouping: groups) { $0["id"] as? Int ?? -1 }
            #expect(byGroup.count == 10)
            let firsts = groups.filter { $0["sequence"] as? Int == 1 }
            #expect(firsts.count == 10)
            #expect(firsts.allSatisfy { $0["firing"] as? Int == 20 && $0["changed"] as? Int == 20 })
            let update = try #require(groups.first { $0["sequence"] as? Int == 2 })
            #expect((update["labels"] as? [String: String])?["rule"] == "r0")
            #expect(update["changed"] as? Int == 1)
            #expect(update["firing"] as? Int == 21)
            let told = bodies.reduce(0) { $0 + (($1["group"] as? [String: Any])?["changed"] as? Int ?? 0) }
            #expect(told == 201)
            // The new alert's ledger: routed, grouped, then grouped into the update message, then sent.
            let newest = try await db.alertID(rule: "r0", platform: "p21")
            let ledger = try await db.events(newest)
            #expect(ledger.map(\.event) == [.routed, .grouped, .grouped, .sent], "\(ledger)")
            #expect(ledger.last?.statusCode == 200)
            let updateKey = zip(requests, bodies).first { (($0.1["group"] as? [String: Any])?["sequence"] as? Int) == 2 }?
                .0.headers["idempotency-key"]
            #expect(ledger.last?.notificationID.map(String.init) == updateKey)
            try await db.expectLedgerExplainsEverything()
        }
    }

    @Test("a group's state is in PostgreSQL: a worker SIGKILLed while its group waits loses nothing; another sends the message once")
    func groupSurvivesRestart() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.applyRules(yaml: countRules([(name: "queue_stuck", metric: "q", severity: "error")]))
            try await db.insertEvents(metric: "q", platforms: ["a", "b", "c"])
            try await db.applyNotifyFile("""
                channels:
                  - name: hook
                    kind: webhook
                    url_env: TEST_HOOK_URL
                routes:
                  - channels: [hook]
                    group_by: [rule]
                    group_wait: 4s
                """)
            let env = Self.workerEnvironment(db, ["TEST_HOOK_URL": receiver.url + "/hook"])
            let first = try TestProcess.launch(["worker"], environment: env)
            let waiting = try await eventually {
                try await db.scalar("SELECT count(*) AS v FROM notification_group_alerts") == 3
            }
            #expect(waiting, "\(first.stderr)")
            first.signal(SIGKILL)
            _ = try await first.wait()
            #expect(try await db.scalar("SELECT count(*) AS v FROM notifications") == 0, "group_wait holds the message")
            let second = try TestProcess.launch(["worker"], environment: env)
            #expect(try await eventually(timeout: .seconds(30)) { try await receiver.requests().count == 1 }, "\(second.stderr)")
            try await Task.sleep(for: .seconds(2))
            try await Self.stop([second])
            let requests = try await receiver.requests()
            #expect(requests.count == 1)
            let group = try #require(try requests.first?.json()["group"] as? [String: Any])
            #expect(group["firing"] as? Int == 3 && group["sequence"] as? Int == 1)
            try await db.expectLedgerExplainsEverything()
        }
    }

    static let twoRules = countRules([(name: "crit", metric: "c", severity: "critical"), (name: "warn", metric: "w", severity: "warning")])

    static func inhibitionConfig(inhibit: Bool) -> String {
        """
        channels:
          - name: hook
            kind: webhook
            url_env: TEST_HOOK_URL
            rate_per_second: 1000
            burst: 1000
        routes:
          - channels: [hook]
        """ + (inhibit ? """

        inhibit_rules:
          - name: critical-mutes-lesser
            source: {severity: critical}
            target: {severity: [warning, error], rule: {regex: "wa.*"}}
            equal: [platform]
        """ : "")
    }

    static func titles(_ receiver: HTTPReceiver) async throws -> [String] {
        try await receiver.requests().compactMap { try $0.json()["title"] as? String }
    }

    @Test("inhibition: a warning under an open critical on its platform is held and recorded, and notifies when the critical resolves")
    func inhibitionOn() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.applyRules(yaml: Self.twoRules)
            try await db.applyNotifyFile(Self.inhibitionConfig(inhibit: true))
            try await db.insertEvents(metric: "c", platforms: ["tiktok"])
            let env = Self.workerEnvironment(db, ["TEST_HOOK_URL": receiver.url + "/hook"])
            let worker = try TestProcess.launch(["worker"], environment: env)
            #expect(try await eventually { try await Self.titles(receiver) == ["[FIRING] crit · tiktok"] }, "\(worker.stderr)")
            // A warning on another platform is not inhibited (equal: [platform]).
            try await db.insertEvents(metric: "w", platforms: ["tiktok", "instagram"])
            #expect(try await eventually { try await Self.titles(receiver).contains("[FIRING] warn · instagram") })
            let held = try await eventually {
                try await db.scalar("SELECT count(*) AS v FROM notifications WHERE status = 'inhibited'") == 1
            }
            #expect(held)
            let critical = try await db.alertID(rule: "crit", platform: "tiktok")
            let warning = try await db.alertID(rule: "warn", platform: "tiktok")
            let inhibited = try await db.events(warning).first { $0.event == .inhibited }
            #expect(inhibited?.inhibitedBy == critical)
            #expect(inhibited?.detail == "inhibit rule critical-mutes-lesser")
            let shown = try await db.withStore(poolSize: 1) { store in try await store.outbox.inhibitions(alertIDs: [warning]) }
            #expect(shown[warning] == critical)
            try await Task.sleep(for: .seconds(2))
            #expect(!(try await Self.titles(receiver)).contains("[FIRING] warn · tiktok"))
            // The critical recovers: the warning, still firing, is sent.
            _ = try await db.withPool(size: 1) { pool in try await pool.query("DELETE FROM metric_events WHERE name = 'c'") }
            #expect(try await eventually { try await Self.titles(receiver).contains("[RESOLVED] crit · tiktok") })
            #expect(try await eventually { try await Self.titles(receiver).contains("[FIRING] warn · tiktok") })
            // The receiver has it; the sent mark follows a moment later.
            #expect(try await eventually { try await db.events(warning).contains { $0.event == .sent } })
            let after = try await db.events(warning).map(\.event)
            #expect(after == [.routed, .inhibited, .released, .sent], "\(after)")
            try await Self.stop([worker])
            #expect(try await Self.titles(receiver).count == 4)
            try await db.expectLedgerExplainsEverything()
        }
    }

    @Test("inhibition off: without inhibit rules the warning is sent while the critical is open")
    func inhibitionOff() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.applyRules(yaml: Self.twoRules)
            try await db.applyNotifyFile(Self.inhibitionConfig(inhibit: false))
            try await db.insertEvents(metric: "c", platforms: ["tiktok"])
            let env = Self.workerEnvironment(db, ["TEST_HOOK_URL": receiver.url + "/hook"])
            let worker = try TestProcess.launch(["worker"], environment: env)
            #expect(try await eventually { try await Self.titles(receiver) == ["[FIRING] crit · tiktok"] }, "\(worker.stderr)")
            try await db.insertEvents(metric: "w", platforms: ["tiktok"])
            #expect(try await eventually { try await Self.titles(receiver).contains("[FIRING] warn · tiktok") })
            #expect(try await db.scalar("SELECT count(*) AS v FROM notifications WHERE status = 'inhibited'") == 0)
            try await Self.stop([worker])
            try await db.expectLedgerExplainsEverything()
        }
    }

    @Test("a mute time interval a few seconds wide, on the database clock: the firing is held while it lasts and sent when it ends")
    func muteWindow() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.applyRules(yaml: countRules([(name: "deploy_errors", metric: "d", severity: "error")]))
            // A window from 3 s to 15 s from the database's now (UTC), not across
            // midnight: wide enough for a loaded machine to start a worker in it.
            var now = try await db.scalar("SELECT extract(epoch FROM now())::float8 AS v", as: Double.self)
            let secondOfDay = now.truncatingRemainder(dividingBy: 86_400)
            if secondOfDay > 86_400 - 30 {
                try await Task.sleep(for: .seconds(86_400 - secondOfDay + 1))
                now = try await db.scalar("SELECT extract(epoch FROM now())::float8 AS v", as: Double.self)
            }
            func clock(_ t: Double) -> String {
                let s = Int(t.truncatingRemainder(dividingBy: 86_400))
                return String(format: "%02d:%02d:%02d", s / 3600, s % 3600 / 60, s % 60)
            }
            let start = (now + 3).rounded(.up), end = start + 12
            try await db.applyNotifyFile("""
                channels:
                  - name: hook
                    kind: webhook
                    url_env: TEST_HOOK_URL
                routes:
                  - name: deploys
                    channels: [hook]
                    mute_time_intervals: [deploy-window]
                time_intervals:
                  - name: deploy-window
                    time_zone: UTC
                    times: [{start: "\(clock(start))", end: "\(clock(end))"}]
                """)
            try await db.insertEvents(metric: "d", platforms: ["tiktok"])
            // Start the worker inside the window: the alert fires while it holds.
            while try await db.scalar("SELECT extract(epoch FROM now())::float8 AS v", as: Double.self) < start + 0.2 {
                try await Task.sleep(for: .milliseconds(100))
            }
            let env = Self.workerEnvironment(db, ["TEST_HOOK_URL": receiver.url + "/hook"])
            let worker = try TestProcess.launch(["worker"], environment: env)
            let muted = try await eventually {
                try await db.scalar("SELECT count(*) AS v FROM notifications WHERE status = 'muted' AND muted_by = 'deploy-window'") == 1
            }
            #expect(muted, "\(worker.stderr)")
            let firedAt = try await db.scalar("SELECT extract(epoch FROM min(fired_at))::float8 AS v FROM alerts", as: Double.self)
            #expect(firedAt >= start && firedAt < end)
            #expect(try await receiver.requests().isEmpty)
            #expect(try await eventually(timeout: .seconds(30)) { try await receiver.requests().count == 1 })
            let arrived = try #require(try await receiver.requests().first)
            #expect(arrived.at >= end)
            #expect((try arrived.json()["title"] as? String) == "[FIRING] deploy_errors · tiktok")
            let alert = try await db.alertID(rule: "deploy_errors", platform: "tiktok")
            #expect(try await eventually { try await db.events(alert).contains { $0.event == .sent } })
            let ledger = try await db.events(alert)
            #expect(ledger.map(\.event) == [.routed, .muted, .released, .sent], "\(ledger)")
            #expect(ledger[1].timeInterval == "deploy-window")
            #expect(ledger.allSatisfy { $0.route == "deploys" })
            try await Self.stop([worker])
            try await db.expectLedgerExplainsEverything()
        }
    }

    @Test("escalation: unacknowledged after `after`, a second receiver is notified once, as a transition with the level; none when acknowledged first")
    func escalation() async throws {
        let first = try await HTTPReceiver.start()
        defer { first.stop() }
        let second = try await HTTPReceiver.start()
        defer { second.stop() }
        try await withTestDatabase { db in
            try await db.applyRules(yaml: countRules([(name: "stuck_uploads", metric: "s", severity: "critical")]))
            try await db.applyNotifyFile("""
                channels:
                  - name: oncall
                    kind: webhook
                    url_env: TEST_FIRST_URL
                  - name: manager
                    kind: webhook
                    url_env: TEST_SECOND_URL
                routes:
                  - channels: [oncall]
                    escalate:
                      - after: 8s
                        channels: [manager]
                      - after: 1h
                        channels: [manager]
                """)
            try await db.insertEvents(metric: "s", platforms: ["ignored", "handled"])
            let env = Self.workerEnvironment(db, ["TEST_FIRST_URL": first.url + "/oncall", "TEST_SECOND_URL": second.url + "/manager"])
            let workers = try (0..<2).map { _ in try TestProcess.launch(["worker"], environment: env) }
            #expect(try await eventually { try await first.requests().count == 2 }, "\(workers[0].stderr)")
            let handled = try await db.alertID(rule: "stuck_uploads", platform: "handled")
            let ignored = try await db.alertID(rule: "stuck_uploads", platform: "ignored")
            _ = try await db.withStore(poolSize: 1) { store in
                try await store.alerts.act(.acknowledge, alertID: handled, actor: "oncall", note: "on it")
            }
            #expect(try await eventually(timeout: .seconds(30)) { try await second.requests().count == 1 })
            try await Task.sleep(for: .seconds(3))
            try await Self.stop(workers)
            let escalations = try await second.requests()
            #expect(escalations.count == 1)
            let body = try #require(try escalations.first?.json())
            #expect(body["type"] as? String == "alert.escalated")
            #expect(body["escalation_level"] as? Int == 1)
            #expect((body["alert"] as? [String: Any])?["id"] as? Int == ignored)
            #expect(body["title"] as? String == "[ESCALATED L1] stuck_uploads · ignored")
            let history = try await db.withStore(poolSize: 1) { store in try await store.alerts.get(id: ignored)?.1 ?? [] }
            let escalated = history.filter { $0.kind == .escalated }
            #expect(escalated.map(\.escalationLevel) == [1])
            #expect(escalated.first?.actor == "escalation")
            let ledger = try await db.events(ignored)
            #expect(ledger.contains { $0.event == .escalated && $0.escalationLevel == 1 && $0.channel == "manager" })
            #expect(ledger.contains { $0.event == .sent && $0.channel == "manager" && $0.escalationLevel == 1 })
            #expect(!(try await db.events(handled)).contains { $0.event == .escalated })
            #expect(try await db.scalar("SELECT count(*) AS v FROM alert_events WHERE transition = 'escalated'") == 1)
            try await db.expectLedgerExplainsEverything()
        }
    }

    @Test("a template's preview is byte for byte what the receiver got")
    func templatePreview() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.applyRules(yaml: countRules([(name: "oauth_failures", metric: "oauth.failure", severity: "error")]))
            let template = """
                {"text": "{{title}}", "rule": "{{rule.name}}", "value": "{{value}}", "threshold": "{{threshold}}",
                 "platform": "{{platform}}", "id": {{notification_id}},
                 "labels": [{{#labels}}"{{name}}={{value}}",{{/labels}}""],
                 "note": "quotes \\" and {{alert.description}}"}
                """
            try await db.applyNotifyFile("""
                channels:
                  - name: hook
                    kind: webhook
                    url_env: TEST_HOOK_URL
                routes:
                  - channels: [hook]
                templates:
                  webhook: hook.mustache
                """, templates: ["hook.mustache": template])
            try await db.insertEvents(metric: "oauth.failure", platforms: ["tiktok"])
            let env = Self.workerEnvironment(db, ["TEST_HOOK_URL": receiver.url + "/hook"])
            let worker = try TestProcess.launch(["worker"], environment: env)
            #expect(try await eventually { try await receiver.requests().count == 1 }, "\(worker.stderr)")
            try await Self.stop([worker])
            let received = try #require(try await receiver.requests().first)
            let json = try received.json()
            #expect(json["text"] as? String == "[FIRING] oauth_failures · tiktok")
            #expect(json["platform"] as? String == "tiktok")
            let alert = try await db.alertID(rule: "oauth_failures", platform: "tiktok")
            let preview = try await TestProcess.run(["notify", "preview", "--channel", "hook", "--alert", "\(alert)"],
                                                    environment: ["DATABASE_URL": db.url])
            #expect(preview.status == 0, "\(preview.stderr)")
            #expect(preview.stdout == received.body)
            let sample = try await TestProcess.run(["notify", "preview", "--channel", "hook", "--sample"],
                                                   environment: ["DATABASE_URL": db.url])
            #expect(sample.status == 0, "\(sample.stderr)")
            #expect(sample.stdout.contains(#""rule": "oauth_failures""#))
            try await db.expectLedgerExplainsEverything()
        }
    }
}

@Suite("notify check and preview without a database")
struct NotifyCheckTests {
    @Test("notify check renders every template against the samples and reports a template's errors with its file and line")
    func templateErrors() async throws {
        let folder = TestEnvironment.temporaryDirectory + "/check-" + randomSuffix()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "{\"text\": \"{{title}}\",\n \"n\": \"{{#alerts}}{{id}}{{/alert}}\"}\n".write(toFile: folder + "/bad.mustache", atomically: true, encoding: .utf8)
        try "{\"text\": \"{{title}}\" {{value}}\n".write(toFile: folder + "/notjson.mustache", atomically: true, encoding: .utf8)
        try "{{title}}\n{{#group}}{{firing}} firing{{/group}}\n".write(toFile: folder + "/mail.mustache", atomically: true, encoding: .utf8)
        let file = folder + "/notify.yaml"
        func write(_ templates: String) throws {
            try """
                channels:
                  - name: slack
                    kind: slack
                    url: https://hooks.slack.com/services/T/B/x
                  - name: hook
                    kind: webhook
                    url: https://example.com/hook
                routes:
                  - channels: [slack, hook]
                templates:
                \(templates)
                """.write(toFile: file, atomically: true, encoding: .utf8)
        }
        try write("  slack: bad.mustache\n  webhook: notjson.mustache\n  email: mail.mustache")
        let failed = try await TestProcess.run(["notify", "check", file])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("bad.mustache:2: template slack"), "\(failed.stderr)")
        #expect(failed.stderr.contains("notjson.mustache: template webhook: renders text that is not JSON"), "\(failed.stderr)")
        try write("  email: mail.mustache\n  slack: missing.mustache")
        let missing = try await TestProcess.run(["notify", "check", file])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot read missing.mustache"), "\(missing.stderr)")
        try write("  email: mail.mustache")
        let fine = try await TestProcess.run(["notify", "check", file])
        #expect(fine.status == 0, "\(fine.stderr)")
        #expect(fine.stdout.contains("1 template(s) rendered against the samples"))
        // Preview with the file: the sample group (the route does not group, so the single alert).
        let preview = try await TestProcess.run(["notify", "preview", "--channel", "hook", "--sample"], environment: ["NOTIFY_CONFIG": file])
        #expect(preview.status == 0, "\(preview.stderr)")
        #expect((try JSONSerialization.jsonObject(with: Data(preview.stdout.utf8)) as? [String: Any])?["title"] as? String
                == "[FIRING] oauth_failures · tiktok")
    }
}
