import Foundation
import TocsinCore

/// Slack incoming webhook: one attachment, coloured by severity (green
/// when resolved).
enum SlackMessage {
    static func body(_ text: MessageText, now: Date) -> Data {
        if let group = text.payload.group { return groupBody(text, group: group, now: now) }
        let alert = text.alert
        var fields: [[String: Any]] = [
            ["title": "Value", "value": text.valueText, "short": true],
            ["title": "Samples", "value": String(alert.samples), "short": true],
            ["title": "Platform", "value": alert.platform ?? "all", "short": true],
            ["title": "Severity", "value": alert.severity.rawValue, "short": true],
            ["title": "Started at", "value": RFC3339.format(alert.startedAt), "short": true],
        ]
        if let duration = text.durationText {
            fields.append(["title": "Duration", "value": duration, "short": true])
            if let by = alert.resolvedBy { fields.append(["title": "Resolved by", "value": by, "short": true]) }
        }
        var attachment: [String: Any] = [
            "color": text.color,
            "title": text.title,
            "text": alert.description,
            "fields": fields,
            "footer": "Tocsin · alert \(alert.id)",
            "ts": Int(now.timeIntervalSince1970),
            "fallback": text.title + " — " + text.valueText,
        ]
        if let link = text.dashboardLink { attachment["title_link"] = link }
        if let runbook = alert.runbookURL {
            attachment["actions"] = [["type": "button", "text": "Runbook", "url": runbook]]
        }
        return MessageText.json(["text": text.title, "attachments": [attachment]])
    }

    /// A group: the counts, the first alerts with value vs threshold.
    static func groupBody(_ text: MessageText, group: NotificationPayload.Group, now: Date) -> Data {
        var attachment: [String: Any] = [
            "color": group.firing == 0 ? MessageText.resolvedColor : text.color,
            "title": text.title,
            "text": text.groupLines().joined(separator: "\n"),
            "fields": [
                ["title": "Firing", "value": String(group.firing), "short": true],
                ["title": "Resolved", "value": String(group.resolved), "short": true],
            ],
            "footer": "Tocsin · group \(group.id) · update \(group.sequence)",
            "ts": Int(now.timeIntervalSince1970),
            "fallback": text.title,
        ]
        if let link = text.dashboardLink { attachment["title_link"] = link }
        return MessageText.json(["text": text.title, "attachments": [attachment]])
    }
}
