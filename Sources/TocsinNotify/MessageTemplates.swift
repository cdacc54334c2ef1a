import Foundation
import Mustache
import TocsinCore

/// Mustache templates for messages, per channel kind, over the data model
/// documented in docs/notifications.md ("Templates"). A slack or webhook
/// template renders the whole HTTP body; a pagerduty template renders the
/// event's `payload` object (Tocsin adds routing_key, event_action and
/// dedup_key); an email template renders the text body (the subject stays
/// Tocsin's). In the JSON kinds `{{name}}` is escaped for a JSON string;
/// `{{{name}}}` is not escaped.
public enum MessageTemplates {
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var kind: NotifyConfig.Channel.Kind
        public var source: String
        public var line: Int?
        public var message: String
        public var description: String {
            "\(source)" + (line.map { ":\($0)" } ?? "") + ": template \(kind.rawValue): \(message)"
        }
    }

    /// JSON-string escaping for `{{…}}` in JSON templates.
    struct JSONString: MustacheContentType {
        func escapeText(_ text: String) -> String { JSONText.escaped(text) }
    }

    private static let registered: Bool = {
        MustacheContentTypes.register(JSONString(), named: "TOCSIN_JSON")
        return true
    }()

    static func isJSON(_ kind: NotifyConfig.Channel.Kind) -> Bool { kind != .email }

    /// Parses a template; the pragma sits on the first line, so line
    /// numbers are the file's.
    static func compile(_ template: NotifyConfig.MessageTemplate, kind: NotifyConfig.Channel.Kind) throws -> MustacheTemplate {
        _ = registered
        let pragma = isJSON(kind) ? "{{% CONTENT_TYPE: TOCSIN_JSON}}" : "{{% CONTENT_TYPE: TEXT}}"
        do {
            return try MustacheTemplate(string: pragma + template.text)
        } catch let error as MustacheTemplate.ParserError {
            throw Problem(kind: kind, source: template.source, line: error.context.lineNumber,
                          message: "\(error.error) (column \(error.context.columnNumber))")
        } catch {
            throw Problem(kind: kind, source: template.source, line: nil, message: "\(error)")
        }
    }

    /// The rendered text of `payload` for a channel of `kind`.
    static func render(_ template: NotifyConfig.MessageTemplate, kind: NotifyConfig.Channel.Kind, text: MessageText) throws -> String {
        try compile(template, kind: kind).render(model(text))
    }

    /// Every template of `config` parsed and rendered against sample alerts
    /// (one alert, a group, a resolution); JSON kinds must give JSON.
    public static func check(_ config: NotifyConfig) -> [Problem] {
        var problems: [Problem] = []
        for (kind, template) in config.templates.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            do {
                let compiled = try compile(template, kind: kind)
                for payload in samples() {
                    let output = compiled.render(model(MessageText(payload: payload, notificationID: 1, publicURL: "https://tocsin.example.com")))
                    if isJSON(kind), (try? JSONSerialization.jsonObject(with: Data(output.utf8))) == nil {
                        problems.append(Problem(kind: kind, source: template.source, line: nil,
                                                message: "renders text that is not JSON for the sample \(payload.group == nil ? "alert" : "group") (\(payload.kind.rawValue))"))
                        break
                    }
                }
            } catch let problem as Problem {
                problems.append(problem)
            } catch {
                problems.append(Problem(kind: kind, source: template.source, line: nil, message: "\(error)"))
            }
        }
        return problems
    }

    /// The sample alert `check` and `preview --sample` render.
    public static func sampleAlert(id: Int = 4211, platform: String = "tiktok", status: AlertStatus = .firing) -> Alert {
        let started = Date(timeIntervalSince1970: 1_795_935_000)
        return Alert(
            id: id, rule: "oauth_failures", severity: .critical, status: status, groupKey: "platform=\(platform)",
            platform: platform, value: 0.23, threshold: 0.05, comparison: ">", samples: 120,
            description: "OAuth token exchanges are failing", runbookURL: "https://runbooks.example.com/oauth",
            startedAt: started, firedAt: started.addingTimeInterval(60), lastEvaluatedAt: started.addingTimeInterval(90),
            acknowledgedAt: nil, acknowledgedBy: nil, acknowledgeNote: nil,
            resolvedAt: status == .resolved ? started.addingTimeInterval(600) : nil, resolvedBy: status == .resolved ? "auto" : nil,
            resolution: status == .resolved ? .auto : nil, resolveNote: nil, labels: ["team": "integrations"])
    }

    public static func samples() -> [NotificationPayload] {
        let at = Date(timeIntervalSince1970: 1_795_935_060)
        let group = NotificationPayload.Group(id: 7, labels: ["rule": "oauth_failures"], route: "route #1", sequence: 1,
                                              firing: 2, resolved: 1, changed: 3)
        return [
            NotificationPayload(kind: .fired, alert: sampleAlert(), transitionAt: at),
            NotificationPayload(kind: .resolved, alert: sampleAlert(status: .resolved), transitionAt: at),
            NotificationPayload(escalationLevel: 1, alert: sampleAlert(), transitionAt: at),
            NotificationPayload(group: group, kind: .fired,
                                alerts: [sampleAlert(), sampleAlert(id: 4212, platform: "instagram"),
                                         sampleAlert(id: 4213, platform: "youtube", status: .resolved)], transitionAt: at),
        ]
    }

    // MARK: The data model

    static func model(_ text: MessageText) -> [String: Any] {
        let payload = text.payload
        var model: [String: Any] = [
            "kind": payload.kind.rawValue,
            "title": text.title,
            "is_firing": !payload.isResolved,
            "is_resolved": payload.isResolved,
            "is_repeat": payload.kind == .repeated,
            "is_test": payload.kind == .test,
            "is_group": payload.group != nil,
            "is_escalation": payload.kind == .escalated,
            "notification_id": text.notificationID,
            "transition": ["kind": payload.kind.rawValue, "at": RFC3339.format(payload.transitionAt)],
            "alert": alert(payload.alert),
            "rule": ["name": payload.alert.rule, "description": payload.alert.description,
                     "severity": payload.alert.severity.rawValue] as [String: Any],
            "value": text.alert.value.map(MessageText.number) ?? "no data",
            "threshold": MessageText.number(payload.alert.threshold),
            "samples": payload.alert.samples,
            "labels": pairs(AlertLabelSet.of(payload.alert)),
            "dedup_key": PagerDutyMessage.dedupKey(payload),
            "color": payload.group.map { $0.firing == 0 ? MessageText.resolvedColor : text.color } ?? text.color,
            "severity_upper": payload.alert.severity.rawValue.uppercased(),
        ]
        if let duration = text.durationText { model["duration"] = duration }
        if let platform = payload.alert.platform { model["platform"] = platform }
        if let runbook = payload.alert.runbookURL { model["runbook"] = runbook }
        if let link = text.dashboardLink { model["dashboard_url"] = link }
        if let level = payload.escalationLevel { model["escalation_level"] = level }
        if let group = payload.group {
            let alerts = (payload.alerts ?? []).map(alert)
            model["group"] = [
                "id": group.id, "name": MessageText.groupName(group), "labels": pairs(group.labels), "route": group.route,
                "sequence": group.sequence, "firing": group.firing, "resolved": group.resolved, "changed": group.changed,
            ] as [String: Any]
            model["alerts"] = alerts
            model["firing_alerts"] = alerts.filter { ($0["is_resolved"] as? Bool) == false }
            model["resolved_alerts"] = alerts.filter { ($0["is_resolved"] as? Bool) == true }
            model["lines"] = text.groupLines()
            model["lines_text"] = text.groupLines().joined(separator: "\n")
        } else {
            model["alerts"] = [alert(payload.alert)]
        }
        return model
    }

    static func pairs(_ labels: [String: String]) -> [[String: String]] {
        labels.sorted { $0.key < $1.key }.map { ["name": $0.key, "value": $0.value] }
    }

    static func alert(_ alert: Alert) -> [String: Any] {
        var out: [String: Any] = [
            "id": alert.id, "rule": alert.rule, "severity": alert.severity.rawValue, "status": alert.status.rawValue,
            "is_resolved": alert.status == .resolved, "group_key": alert.groupKey, "threshold": MessageText.number(alert.threshold),
            "comparison": alert.comparison, "value": alert.value.map(MessageText.number) ?? "no data",
            "value_text": MessageText.valueText(alert), "samples": alert.samples, "description": alert.description,
            "labels": pairs(AlertLabelSet.of(alert)), "started_at": RFC3339.format(alert.startedAt),
        ]
        if let platform = alert.platform { out["platform"] = platform }
        if let runbook = alert.runbookURL { out["runbook_url"] = runbook }
        if let at = alert.firedAt { out["fired_at"] = RFC3339.format(at) }
        if let at = alert.resolvedAt { out["resolved_at"] = RFC3339.format(at) }
        if let by = alert.acknowledgedBy { out["acknowledged_by"] = by }
        if let by = alert.resolvedBy { out["resolved_by"] = by }
        return out
    }
}
