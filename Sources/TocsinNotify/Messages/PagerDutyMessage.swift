import Foundation
import TocsinCore

/// PagerDuty Events API v2: trigger on firing, resolve on resolved, one
/// incident per alert (`dedup_key`), so a repeated trigger folds into it;
/// one incident per group for a group's messages, resolved with the group.
enum PagerDutyMessage {
    static func dedupKey(_ payload: NotificationPayload) -> String {
        payload.group.map { "tocsin-group-\($0.id)" } ?? "tocsin-alert-\(payload.alert.id)"
    }

    static func body(_ text: MessageText, routingKey: String) -> Data {
        let alert = text.alert
        var body: [String: Any] = [
            "routing_key": routingKey,
            "event_action": text.payload.isResolved ? "resolve" : "trigger",
            "dedup_key": dedupKey(text.payload),
        ]
        if let group = text.payload.group, !text.payload.isResolved {
            body["payload"] = [
                "summary": text.title, "source": "tocsin", "severity": alert.severity.rawValue,
                "timestamp": RFC3339.format(text.payload.transitionAt), "group": MessageText.groupName(group),
                "custom_details": ["firing": group.firing, "resolved": group.resolved, "alerts": text.groupLines(limit: 20)],
            ]
            if let link = text.dashboardLink { body["links"] = [["href": link, "text": "Tocsin dashboard"]] }
            return MessageText.json(body)
        }
        if !text.payload.isResolved {
            var details: [String: Any] = [
                "value": alert.value as Any? ?? NSNull(), "threshold": alert.threshold, "comparison": alert.comparison,
                "samples": alert.samples, "rule": alert.rule, "description": alert.description,
            ]
            if let platform = alert.platform { details["platform"] = platform }
            if let level = text.payload.escalationLevel { details["escalation_level"] = level }
            if let group = alert.groupLabels, !group.isEmpty { details["group"] = group }
            body["payload"] = [
                "summary": text.title + " — " + text.valueText,
                "source": "tocsin",
                "severity": alert.severity.rawValue,
                "timestamp": RFC3339.format(text.payload.transitionAt),
                "component": alert.platform ?? "all",
                "group": alert.rule,
                "custom_details": details,
            ]
            if let link = text.dashboardLink {
                body["links"] = [["href": link, "text": "Tocsin dashboard"]]
            }
        }
        return MessageText.json(body)
    }
}
