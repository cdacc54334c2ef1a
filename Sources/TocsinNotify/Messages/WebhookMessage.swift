import Foundation
import TocsinCore

/// The generic webhook body, version 1 (documented in docs/webhook.md,
/// schema docs/webhook-v1.schema.json); version 2 (webhook-v2.schema.json)
/// for what version 1 cannot say: a group's message and an escalation. Its
/// own format: changing the API or the stored payload does not change what
/// receivers get.
enum WebhookMessage {
    static let version = 1
    static let groupVersion = 2

    static func body(_ text: MessageText, now: Date) -> Data {
        var body: [String: Any] = [
            "version": version,
            "id": text.notificationID,
            "type": "alert.\(text.payload.kind.rawValue)",
            "title": text.title,
            "transition": ["kind": text.payload.kind.rawValue, "at": RFC3339.format(text.payload.transitionAt)],
            "alert": alert(text.alert),
            "sent_at": RFC3339.format(now),
        ]
        if let link = text.dashboardLink { body["dashboard_url"] = link }
        if let level = text.payload.escalationLevel {
            body["version"] = groupVersion
            body["escalation_level"] = level
        }
        // A group's message: its labels and counts, and its alerts (the
        // first one is also `alert`, so a receiver of single alerts still works).
        if let group = text.payload.group {
            body["version"] = groupVersion
            body["type"] = "group.\(text.payload.kind.rawValue)"
            body["group"] = [
                "id": group.id, "labels": group.labels, "route": group.route, "sequence": group.sequence,
                "firing": group.firing, "resolved": group.resolved, "changed": group.changed,
            ]
            body["alerts"] = (text.payload.alerts ?? []).map(alert)
        }
        return MessageText.json(body)
    }

    /// The alert with every key present (null when unknown).
    static func alert(_ alert: Alert) -> [String: Any] {
        func time(_ date: Date?) -> Any { date.map(RFC3339.format) ?? NSNull() }
        func text(_ value: String?) -> Any { value ?? NSNull() }
        return [
            "id": alert.id, "rule": alert.rule, "severity": alert.severity.rawValue, "status": alert.status.rawValue,
            "group_key": alert.groupKey, "platform": text(alert.platform), "value": alert.value ?? NSNull(),
            "threshold": alert.threshold, "comparison": alert.comparison, "samples": alert.samples,
            "description": alert.description, "runbook_url": text(alert.runbookURL), "labels": alert.labels,
            "started_at": RFC3339.format(alert.startedAt), "fired_at": time(alert.firedAt),
            "last_evaluated_at": time(alert.lastEvaluatedAt), "acknowledged_at": time(alert.acknowledgedAt),
            "acknowledged_by": text(alert.acknowledgedBy), "acknowledge_note": text(alert.acknowledgeNote),
            "resolved_at": time(alert.resolvedAt), "resolved_by": text(alert.resolvedBy),
            "resolution": text(alert.resolution?.rawValue), "resolve_note": text(alert.resolveNote),
        ]
    }
}
