import Foundation
import TocsinCore

/// What every message of a notification says, whatever the channel: the
/// title, the value against the threshold, links.
struct MessageText {
    let payload: NotificationPayload
    let notificationID: Int
    let publicURL: String?

    var alert: Alert { payload.alert }

    /// `[FIRING] high_error_rate · tiktok` / `[RESOLVED] …`; a group's
    /// `[FIRING:12] rule=oauth_failures` (`[FIRING:3, RESOLVED:2]` when
    /// some resolved); an escalation's `[ESCALATED L2] …`.
    var title: String {
        if let group = payload.group {
            var counts: [String] = []
            if group.firing > 0 { counts.append("FIRING:\(group.firing)") }
            if group.resolved > 0 || group.firing == 0 { counts.append("RESOLVED:\(group.resolved)") }
            return "[\(counts.joined(separator: ", "))] " + Self.groupName(group)
        }
        let state = switch payload.kind {
        case .resolved: "[RESOLVED]"
        case .test: "[TEST]"
        case .fired, .repeated: "[FIRING]"
        case .escalated: "[ESCALATED L\(payload.escalationLevel ?? 1)]"
        }
        return "\(state) \(alert.rule)" + (groupText.map { " · \($0)" } ?? "")
    }

    /// The group: its platform, then its other labels as `name=value`
    /// (`tiktok · endpoint=/v2/video/upload`); nil for a rule without groups.
    var groupText: String? {
        var parts = alert.platform.map { [$0] } ?? []
        let others = (alert.groupLabels ?? [:]).filter { $0.key != "platform" }.sorted { $0.key < $1.key }
        parts += others.map { "\($0.key)=\($0.value)" }
        return parts.isEmpty ? nil : parts.joined(separator: " · ")
    }

    /// `rule=oauth_failures, platform=tiktok`.
    static func groupName(_ group: NotificationPayload.Group) -> String {
        group.labels.isEmpty ? group.route
            : group.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
    }

    /// The group's alerts as lines: `tiktok · oauth_failures: 0.12 (threshold > 0.05)`,
    /// firing first, at most `limit` and a line for the rest.
    func groupLines(limit: Int = 10) -> [String] {
        guard let alerts = payload.alerts, let group = payload.group else { return [] }
        var lines = alerts.prefix(limit).map { alert in
            let state = alert.status == .resolved ? "RESOLVED" : "FIRING"
            let name = alert.rule + (alert.platform.map { " · \($0)" } ?? "")
            return "\(state) \(name): \(Self.valueText(alert))"
        }
        let total = group.firing + group.resolved
        if total > lines.count { lines.append("… and \(total - lines.count) more") }
        return lines
    }

    var valueText: String { Self.valueText(alert) }

    static func valueText(_ alert: Alert) -> String {
        // An external alert has no value: its labels say what it is about.
        if alert.external != nil {
            let labels = alert.labels.filter { $0.key != "alertname" }.sorted { $0.key < $1.key }
            return labels.isEmpty ? "external alert" : labels.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        }
        let value = alert.value.map(Self.number) ?? "no data"
        return "\(value) (threshold \(alert.comparison) \(Self.number(alert.threshold)))"
    }

    static let colors: [Rule.Severity: String] = [.warning: "#FFA500", .error: "#FF0000", .critical: "#8B0000"]
    static let resolvedColor = "#2EB886"

    var color: String { payload.isResolved ? Self.resolvedColor : Self.colors[alert.severity]! }

    /// The alert on the dashboard; for a group, the dashboard filtered to
    /// the group's rule and platform when it is grouped by them.
    var dashboardLink: String? {
        guard let publicURL, !publicURL.isEmpty else { return nil }
        let base = publicURL.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/monitoring"
        guard let group = payload.group else { return base + "?alert=\(alert.id)" }
        var query = URLComponents()
        query.queryItems = [("rule", group.labels["rule"] ?? group.labels["alertname"]), ("platform", group.labels["platform"]),
                            ("severity", group.labels["severity"])]
            .compactMap { name, value in value.flatMap { $0.isEmpty ? nil : URLQueryItem(name: name, value: $0) } }
        if query.queryItems?.isEmpty ?? true { query.queryItems = [URLQueryItem(name: "status", value: "firing")] }
        return base + "?" + (query.percentEncodedQuery ?? "")
    }

    /// How long the alert lasted, for resolutions.
    var durationText: String? {
        guard payload.isResolved, let resolvedAt = alert.resolvedAt else { return nil }
        return Self.duration(resolvedAt.timeIntervalSince(alert.startedAt))
    }

    static func number(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
        return String(format: "%.4g", value)
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(min(max(0, seconds.isFinite ? seconds : 0), 1e9))
        if s >= 86_400 { return "\(s / 86_400)d \(s % 86_400 / 3600)h" }
        if s >= 3600 { return "\(s / 3600)h \(s % 3600 / 60)m" }
        if s >= 60 { return "\(s / 60)m \(s % 60)s" }
        return "\(s)s"
    }

    static func json(_ object: [String: Any]) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }
}
