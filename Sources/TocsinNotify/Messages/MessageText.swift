import Foundation
import TocsinCore

/// What every message of a notification says, whatever the channel: the
/// title, the value against the threshold, links.
struct MessageText {
    let payload: NotificationPayload
    let notificationID: Int
    let publicURL: String?

    var alert: Alert { payload.alert }

    /// `[FIRING] high_error_rate · tiktok` / `[RESOLVED] …`.
    var title: String {
        let state = switch payload.kind {
        case .resolved: "[RESOLVED]"
        case .test: "[TEST]"
        case .fired, .repeated: "[FIRING]"
        }
        return "\(state) \(alert.rule)" + (alert.platform.map { " · \($0)" } ?? "")
    }

    var valueText: String {
        let value = alert.value.map(Self.number) ?? "no data"
        return "\(value) (threshold \(alert.comparison) \(Self.number(alert.threshold)))"
    }

    static let colors: [Rule.Severity: String] = [.warning: "#FFA500", .error: "#FF0000", .critical: "#8B0000"]
    static let resolvedColor = "#2EB886"

    var color: String { payload.isResolved ? Self.resolvedColor : Self.colors[alert.severity]! }

    var dashboardLink: String? {
        guard let publicURL, !publicURL.isEmpty else { return nil }
        return publicURL.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/monitoring?alert=\(alert.id)"
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
