import Foundation
import TestSupport
import Testing
import TocsinCore
@testable import TocsinNotify

/// The message builders, pure: what each channel kind receives.
@Suite("Message bodies")
struct MessageTests {
    static let alert = Alert(
        id: 87, rule: "high_error_rate", severity: .error, status: .firing, groupKey: "tiktok", platform: "tiktok",
        value: 0.0834, threshold: 0.05, comparison: ">", samples: 48, description: "Upload error rate above 5 %",
        runbookURL: "https://runbooks.example.com/uploads", startedAt: 1_795_935_323, firedAt: 1_795_935_323,
        lastEvaluatedAt: 1_795_935_383, acknowledgedAt: nil, acknowledgedBy: nil, acknowledgeNote: nil, resolvedAt: nil,
        resolvedBy: nil, resolution: nil, resolveNote: nil, labels: ["team": "integrations"])

    static func text(_ kind: NotificationPayload.Kind, alert: Alert = alert, publicURL: String? = "https://tocsin.example.com/")
        -> MessageText
    {
        MessageText(payload: NotificationPayload(kind: kind, alert: alert, transitionAt: 1_795_935_383), notificationID: 4211,
                    publicURL: publicURL)
    }

    static func json(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("Slack: one attachment coloured by severity, green when resolved, with the value, a link and the runbook")
    func slack() throws {
        let fired = try Self.json(SlackMessage.body(Self.text(.fired), now: 1_795_935_400))
        #expect(fired["text"] as? String == "[FIRING] high_error_rate · tiktok")
        let attachment = try #require((fired["attachments"] as? [[String: Any]])?.first)
        #expect(attachment["color"] as? String == "#FF0000")
        #expect(attachment["title_link"] as? String == "https://tocsin.example.com/monitoring?alert=87")
        #expect(attachment["ts"] as? Int == 1_795_935_400)
        let fields = try #require(attachment["fields"] as? [[String: Any]])
        #expect(fields.first { $0["title"] as? String == "Value" }?["value"] as? String == "0.0834 (threshold > 0.05)")
        #expect((attachment["actions"] as? [[String: Any]])?.first?["url"] as? String == "https://runbooks.example.com/uploads")
        var resolvedAlert = Self.alert
        resolvedAlert.status = .resolved
        resolvedAlert.resolvedAt = Date(timeIntervalSince1970: 1_795_935_323 + 3725)
        resolvedAlert.resolvedBy = "ops"
        let resolved = try Self.json(SlackMessage.body(Self.text(.resolved, alert: resolvedAlert, publicURL: nil), now: 0))
        let second = try #require((resolved["attachments"] as? [[String: Any]])?.first)
        #expect(second["color"] as? String == MessageText.resolvedColor)
        #expect(second["title_link"] == nil)
        let more = try #require(second["fields"] as? [[String: Any]])
        #expect(more.first { $0["title"] as? String == "Duration" }?["value"] as? String == "1h 2m")
        #expect(more.first { $0["title"] as? String == "Resolved by" }?["value"] as? String == "ops")
    }

    @Test("an alert grouped by labels names its group in titles, subjects and PagerDuty details")
    func groupLabels() throws {
        var alert = Self.alert
        alert.groupKey = "platform=tiktok,endpoint=/v2/video/upload"
        alert.groupLabels = ["platform": "tiktok", "endpoint": "/v2/video/upload"]
        let text = Self.text(.fired, alert: alert)
        #expect(text.title == "[FIRING] high_error_rate · tiktok · endpoint=/v2/video/upload")
        #expect(EmailMessage.subject(text) == "[FIRING][ERROR] high_error_rate · tiktok · endpoint=/v2/video/upload")
        let trigger = try Self.json(PagerDutyMessage.body(text, routingKey: "R0UT1NG"))
        let details = (trigger["payload"] as? [String: Any])?["custom_details"] as? [String: Any]
        #expect(details?["group"] as? [String: String] == ["platform": "tiktok", "endpoint": "/v2/video/upload"])
        // Grouped by platform only, as before.
        #expect(Self.text(.fired).title == "[FIRING] high_error_rate · tiktok")
    }

    @Test("PagerDuty: trigger with a summary and details, resolve with the same dedup_key and nothing else")
    func pagerDuty() throws {
        let trigger = try Self.json(PagerDutyMessage.body(Self.text(.fired), routingKey: "R0UT1NG"))
        #expect(trigger["event_action"] as? String == "trigger")
        #expect(trigger["dedup_key"] as? String == "tocsin-alert-87")
        let payload = try #require(trigger["payload"] as? [String: Any])
        #expect(payload["severity"] as? String == "error" && payload["component"] as? String == "tiktok")
        #expect((payload["custom_details"] as? [String: Any])?["samples"] as? Int == 48)
        let resolve = try Self.json(PagerDutyMessage.body(Self.text(.resolved), routingKey: "R0UT1NG"))
        #expect(resolve["event_action"] as? String == "resolve")
        #expect(resolve["dedup_key"] as? String == "tocsin-alert-87")
        #expect(resolve["payload"] == nil)
    }

    @Test("e-mail: the subject, RFC 2047 for non-ASCII, text and HTML parts, a stable Message-ID, escaped HTML")
    func email() throws {
        var odd = Self.alert
        odd.description = "<script>alert(1)</script> & more"
        odd.platform = "tïktok"
        let text = Self.text(.fired, alert: odd)
        #expect(EmailMessage.subject(text) == "[FIRING][ERROR] high_error_rate · tïktok")
        let message = EmailMessage.message(text, from: "tocsin@example.com", to: ["a@example.com", "b@example.com"],
                                           now: 1_795_935_400, boundary: "B")
        #expect(message.contains("Subject: =?UTF-8?B?"))
        #expect(message.contains("To: a@example.com, b@example.com\r\n"))
        #expect(message.contains("Message-ID: <tocsin-4211-fired@example.com>"))
        #expect(message.contains("Date: Sun, 29 Nov 2026 06:56:40 +0000"))
        #expect(message.hasSuffix("--B--\r\n"))
        let html = EmailMessage.html(text)
        #expect(html.contains("&lt;script&gt;") && !html.contains("<script>"))
        #expect(EmailMessage.plain(text).contains("Value:      0.0834 (threshold > 0.05)"))
    }

    @Test("webhook version 1: exactly the keys of docs/webhook-v1.schema.json, every alert key present")
    func webhook() throws {
        let schemaURL = TestEnvironment.repositoryRoot.appendingPathComponent("docs/webhook-v1.schema.json")
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: schemaURL)) as? [String: Any])
        let properties = Set((schema["properties"] as? [String: Any] ?? [:]).keys)
        let required = Set(schema["required"] as? [String] ?? [])
        let alertSchema = try #require((schema["properties"] as? [String: Any])?["alert"] as? [String: Any])
        let alertRequired = Set(alertSchema["required"] as? [String] ?? [])
        let body = try Self.json(WebhookMessage.body(Self.text(.fired), now: 1_795_935_400))
        #expect(Set(body.keys).isSubset(of: properties))
        #expect(required.isSubset(of: Set(body.keys)))
        #expect(body["version"] as? Int == 1 && body["id"] as? Int == 4211 && body["type"] as? String == "alert.fired")
        let alert = try #require(body["alert"] as? [String: Any])
        #expect(Set(alert.keys) == alertRequired)
        #expect(alert["acknowledged_by"] is NSNull && alert["fired_at"] as? String == "2026-11-29T06:55:23.000000Z")
        let bare = try Self.json(WebhookMessage.body(Self.text(.test, publicURL: nil), now: 0))
        #expect(bare["dashboard_url"] == nil && bare["type"] as? String == "alert.test")
    }

    @Test("webhook version 2 for groups and escalations: exactly the keys of docs/webhook-v2.schema.json; PagerDuty one incident per group")
    func groupsAndEscalations() throws {
        let schemaURL = TestEnvironment.repositoryRoot.appendingPathComponent("docs/webhook-v2.schema.json")
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: schemaURL)) as? [String: Any])
        let properties = try #require(schema["properties"] as? [String: Any])
        let types = Set(((properties["type"] as? [String: Any])?["enum"] as? [String]) ?? [])
        let groupRequired = Set(((properties["group"] as? [String: Any])?["required"] as? [String]) ?? [])
        var second = Self.alert
        second.id = 88
        second.platform = "instagram"
        var resolved = Self.alert
        resolved.id = 89
        resolved.status = .resolved
        let group = NotificationPayload.Group(id: 5, labels: ["rule": "high_error_rate"], route: "ops", sequence: 2,
                                              firing: 2, resolved: 1, changed: 2)
        let payload = NotificationPayload(group: group, kind: .fired, alerts: [Self.alert, second, resolved], transitionAt: 1_795_935_383)
        let text = MessageText(payload: payload, notificationID: 9, publicURL: "https://tocsin.example.com")
        let body = try Self.json(WebhookMessage.body(text, now: 1_795_935_400))
        #expect(Set(body.keys).isSubset(of: Set(properties.keys)))
        #expect(body["version"] as? Int == 2 && body["type"] as? String == "group.fired")
        #expect(types.contains(body["type"] as? String ?? ""))
        #expect(Set((body["group"] as? [String: Any] ?? [:]).keys) == groupRequired)
        #expect((body["alerts"] as? [[String: Any]])?.count == 3)
        #expect(body["title"] as? String == "[FIRING:2, RESOLVED:1] rule=high_error_rate")
        #expect(body["dashboard_url"] as? String == "https://tocsin.example.com/monitoring?rule=high_error_rate")
        let slack = try Self.json(SlackMessage.body(text, now: 1_795_935_400))
        let attachment = try #require((slack["attachments"] as? [[String: Any]])?.first)
        #expect((attachment["text"] as? String)?.contains("FIRING high_error_rate · instagram: 0.0834 (threshold > 0.05)") == true)
        let pd = try Self.json(PagerDutyMessage.body(text, routingKey: "k"))
        #expect(pd["dedup_key"] as? String == "tocsin-group-5" && pd["event_action"] as? String == "trigger")
        let escalation = MessageText(payload: NotificationPayload(escalationLevel: 2, alert: Self.alert, transitionAt: 1_795_935_383),
                                     notificationID: 10, publicURL: nil)
        let escalated = try Self.json(WebhookMessage.body(escalation, now: 1_795_935_400))
        #expect(escalated["version"] as? Int == 2 && escalated["type"] as? String == "alert.escalated")
        #expect(escalated["escalation_level"] as? Int == 2 && escalated["title"] as? String == "[ESCALATED L2] high_error_rate · tiktok")
        #expect(EmailMessage.subject(escalation) == "[ESCALATED L2][ERROR] high_error_rate · tiktok")
        // v1 stays v1: the single-alert message has no new keys.
        let plain = try Self.json(WebhookMessage.body(Self.text(.fired), now: 1_795_935_400))
        #expect(plain["version"] as? Int == 1 && plain["group"] == nil && plain["escalation_level"] == nil)
    }

    @Test("the shipped templates (templates/*.mustache) give the built-in messages: Slack and PagerDuty the same JSON (Slack without ts), e-mail the same text")
    func defaultTemplates() throws {
        func template(_ name: String) throws -> NotifyConfig.MessageTemplate {
            let url = TestEnvironment.repositoryRoot.appendingPathComponent("templates/\(name).mustache")
            return .init(source: "templates/\(name).mustache", text: try String(contentsOf: url, encoding: .utf8))
        }
        let slack = try template("slack"), email = try template("email"), pagerduty = try template("pagerduty")
        let config = NotifyConfig(channels: [], routes: [], templates: [.slack: slack, .email: email, .pagerduty: pagerduty,
                                                                          .webhook: try template("webhook")])
        #expect(MessageTemplates.check(config).isEmpty, "\(MessageTemplates.check(config))")
        for payload in MessageTemplates.samples() {
            for publicURL in ["https://tocsin.example.com", nil] {
                let text = MessageText(payload: payload, notificationID: 3, publicURL: publicURL)
                var builtIn = try Self.json(SlackMessage.body(text, now: 1_795_935_400))
                var attachments = try #require(builtIn["attachments"] as? [[String: Any]])
                attachments[0]["ts"] = nil
                builtIn["attachments"] = attachments
                let rendered = try Self.json(Data(try MessageTemplates.render(slack, kind: .slack, text: text).utf8))
                #expect(NSDictionary(dictionary: rendered).isEqual(to: builtIn), "slack \(payload.kind) \(payload.group != nil)")
                let plain = try MessageTemplates.render(email, kind: .email, text: text)
                #expect(plain.trimmingCharacters(in: .newlines) == EmailMessage.plain(text), "email \(payload.kind)")
                let event = try Self.json(PagerDutyMessage.body(text, routingKey: "k"))
                let templated = try Self.json(Sender.body(payload, id: 3, kind: .pagerduty, template: pagerduty,
                                                          publicURL: publicURL, now: 0, routingKey: "k"))
                #expect((templated["dedup_key"] as? String) == (event["dedup_key"] as? String))
                #expect(((templated["payload"] as? [String: Any])?["summary"] as? String)
                        == ((event["payload"] as? [String: Any])?["summary"] as? String))
            }
        }
    }
}
