import Foundation

/// What a notification is about: the alert as it was when the transition
/// happened, and which transition.
public struct NotificationContent: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case fired, resolved, repeated = "repeat", test
    }

    public var notificationID: Int
    public var kind: Kind
    public var alert: Alert
    public var transitionAt: Double

    public init(notificationID: Int, kind: Kind, alert: Alert, transitionAt: Double) {
        self.notificationID = notificationID
        self.kind = kind
        self.alert = alert
        self.transitionAt = transitionAt
    }

    var isResolved: Bool { kind == .resolved }

    /// `[FIRING] high_error_rate · tiktok` / `[RESOLVED] …`.
    public var title: String {
        let state = switch kind {
        case .resolved: "[RESOLVED]"
        case .test: "[TEST]"
        case .fired, .repeated: "[FIRING]"
        }
        return "\(state) \(alert.rule)" + (alert.platform.map { " · \($0)" } ?? "")
    }

    public var valueText: String {
        let value = alert.value.map(NotificationMessages.number) ?? "no data"
        return "\(value) (threshold \(alert.comparison) \(NotificationMessages.number(alert.threshold)))"
    }
}

/// The bodies Tocsin sends: Slack, webhook, PagerDuty, e-mail. Pure: the
/// senders add transport, signatures and timestamps.
public enum NotificationMessages {
    public static let colors: [Rule.Severity: String] = [.warning: "#FFA500", .error: "#FF0000", .critical: "#8B0000"]
    public static let resolvedColor = "#2EB886"

    public static func color(_ content: NotificationContent) -> String {
        content.isResolved ? resolvedColor : colors[content.alert.severity]!
    }

    static func number(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
        return String(format: "%.4g", value)
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(max(0, seconds))
        if s >= 86_400 { return "\(s / 86_400)d \(s % 86_400 / 3600)h" }
        if s >= 3600 { return "\(s / 3600)h \(s % 3600 / 60)m" }
        if s >= 60 { return "\(s / 60)m \(s % 60)s" }
        return "\(s)s"
    }

    static func encode(_ object: [String: Any]) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    public static func dashboardLink(_ publicURL: String?, alertID: Int) -> String? {
        guard let publicURL, !publicURL.isEmpty else { return nil }
        return publicURL.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/monitoring?alert=\(alertID)"
    }

    /// Slack incoming webhook: one attachment, coloured by severity (green
    /// when resolved).
    public static func slack(_ content: NotificationContent, publicURL: String?, now: Double) -> Data {
        let alert = content.alert
        var fields: [[String: Any]] = [
            ["title": "Value", "value": content.valueText, "short": true],
            ["title": "Samples", "value": String(alert.samples), "short": true],
            ["title": "Platform", "value": alert.platform ?? "all", "short": true],
            ["title": "Severity", "value": alert.severity.rawValue, "short": true],
            ["title": "Started at", "value": RFC3339.format(alert.startedAt), "short": true],
        ]
        if content.isResolved, let resolvedAt = alert.resolvedAt {
            fields.append(["title": "Duration", "value": duration(resolvedAt - alert.startedAt), "short": true])
            if let by = alert.resolvedBy { fields.append(["title": "Resolved by", "value": by, "short": true]) }
        }
        var attachment: [String: Any] = [
            "color": color(content),
            "title": content.title,
            "text": alert.description,
            "fields": fields,
            "footer": "Tocsin · alert \(alert.id)",
            "ts": Int(now),
            "fallback": content.title + " — " + content.valueText,
        ]
        if let link = dashboardLink(publicURL, alertID: alert.id) { attachment["title_link"] = link }
        if let runbook = alert.runbookURL {
            attachment["actions"] = [["type": "button", "text": "Runbook", "url": runbook]]
        }
        return encode(["text": content.title, "attachments": [attachment]])
    }

    /// Generic webhook: the alert and the transition.
    public static func webhook(_ content: NotificationContent, publicURL: String?, now: Double) -> Data {
        let alert = (try? JSONSerialization.jsonObject(with: APIJSONSnapshot.encode(content.alert))) ?? [:]
        var body: [String: Any] = [
            "id": content.notificationID,
            "type": "alert.\(content.kind.rawValue)",
            "title": content.title,
            "transition": ["kind": content.kind.rawValue, "at": RFC3339.format(content.transitionAt)],
            "alert": alert,
            "sent_at": RFC3339.format(now),
        ]
        if let link = dashboardLink(publicURL, alertID: content.alert.id) { body["dashboard_url"] = link }
        return encode(body)
    }

    /// PagerDuty Events API v2: trigger on firing, resolve on resolved, one
    /// incident per alert (dedup_key).
    public static func pagerDuty(_ content: NotificationContent, routingKey: String, publicURL: String?) -> Data {
        let alert = content.alert
        var body: [String: Any] = [
            "routing_key": routingKey,
            "event_action": content.isResolved ? "resolve" : "trigger",
            "dedup_key": "tocsin-alert-\(alert.id)",
        ]
        if !content.isResolved {
            var details: [String: Any] = [
                "value": alert.value as Any? ?? NSNull(), "threshold": alert.threshold, "comparison": alert.comparison,
                "samples": alert.samples, "rule": alert.rule, "description": alert.description,
            ]
            if let platform = alert.platform { details["platform"] = platform }
            body["payload"] = [
                "summary": content.title + " — " + content.valueText,
                "source": "tocsin",
                "severity": alert.severity.rawValue,
                "timestamp": RFC3339.format(content.transitionAt),
                "component": alert.platform ?? "all",
                "group": alert.rule,
                "custom_details": details,
            ]
            if let link = dashboardLink(publicURL, alertID: alert.id) {
                body["links"] = [["href": link, "text": "Tocsin dashboard"]]
            }
        }
        return encode(body)
    }

    /// `[FIRING][ERROR] high_error_rate · tiktok`.
    public static func emailSubject(_ content: NotificationContent) -> String {
        let state = content.isResolved ? "[RESOLVED]" : content.kind == .test ? "[TEST]" : "[FIRING]"
        return "\(state)[\(content.alert.severity.rawValue.uppercased())] \(content.alert.rule)"
            + (content.alert.platform.map { " · \($0)" } ?? "")
    }

    public static func emailText(_ content: NotificationContent, publicURL: String?) -> String {
        let alert = content.alert
        var lines = [content.title, "", alert.description, "", "Value:      \(content.valueText)",
                     "Samples:    \(alert.samples)", "Platform:   \(alert.platform ?? "all")",
                     "Severity:   \(alert.severity.rawValue)", "Started at: \(RFC3339.format(alert.startedAt))"]
        if content.isResolved, let resolvedAt = alert.resolvedAt {
            lines.append("Duration:   \(duration(resolvedAt - alert.startedAt))")
        }
        if let runbook = alert.runbookURL { lines.append("Runbook:    \(runbook)") }
        if let link = dashboardLink(publicURL, alertID: alert.id) { lines += ["", link] }
        return lines.joined(separator: "\n")
    }

    public static func emailHTML(_ content: NotificationContent, publicURL: String?) -> String {
        let alert = content.alert
        func esc(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var rows = [("Value", content.valueText), ("Samples", String(alert.samples)), ("Platform", alert.platform ?? "all"),
                    ("Severity", alert.severity.rawValue), ("Started at", RFC3339.format(alert.startedAt))]
        if content.isResolved, let resolvedAt = alert.resolvedAt { rows.append(("Duration", duration(resolvedAt - alert.startedAt))) }
        var html = """
            <!doctype html><html><body style="font-family:sans-serif">
            <h2 style="border-left:6px solid \(color(content));padding-left:8px">\(esc(content.title))</h2>
            <p>\(esc(alert.description))</p><table cellpadding="4">
            """
        for (name, value) in rows { html += "<tr><th align=\"left\">\(esc(name))</th><td>\(esc(value))</td></tr>" }
        html += "</table>"
        if let runbook = alert.runbookURL { html += "<p><a href=\"\(esc(runbook))\">Runbook</a></p>" }
        if let link = dashboardLink(publicURL, alertID: alert.id) { html += "<p><a href=\"\(esc(link))\">Open in Tocsin</a></p>" }
        return html + "</body></html>"
    }

    /// A complete RFC 5322 message with text and HTML alternatives.
    public static func emailMessage(_ content: NotificationContent, from: String, to: [String], publicURL: String?,
                                    now: Double, boundary: String) -> String {
        func encodedWord(_ text: String) -> String {
            text.allSatisfy(\.isASCII) ? text : "=?UTF-8?B?\(Data(text.utf8).base64EncodedString())?="
        }
        func base64Lines(_ text: String) -> String {
            let encoded = Data(text.utf8).base64EncodedString()
            var lines: [Substring] = []
            var index = encoded.startIndex
            while index < encoded.endIndex {
                let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
                lines.append(encoded[index..<end])
                index = end
            }
            return lines.joined(separator: "\r\n")
        }
        let date = Date(timeIntervalSince1970: now)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let domain = from.split(separator: "@").last.map(String.init) ?? "tocsin"
        let headers = [
            "From: \(from)",
            "To: \(to.joined(separator: ", "))",
            "Subject: \(encodedWord(emailSubject(content)))",
            "Date: \(formatter.string(from: date))",
            "Message-ID: <tocsin-\(content.notificationID)-\(content.kind.rawValue)@\(domain)>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
        ]
        let parts = [
            "--\(boundary)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64Lines(emailText(content, publicURL: publicURL)),
            "--\(boundary)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64Lines(emailHTML(content, publicURL: publicURL)),
        ]
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + parts.joined(separator: "\r\n") + "\r\n--\(boundary)--\r\n"
    }
}

/// The alert as the API encodes it, for message bodies.
enum APIJSONSnapshot {
    static func encode(_ alert: Alert) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(alert)) ?? Data("{}".utf8)
    }
}
