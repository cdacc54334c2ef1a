import Foundation
import TocsinCore

/// E-mail: a subject, a text and an HTML part, as one RFC 5322 message.
enum EmailMessage {
    /// `[FIRING][ERROR] high_error_rate · tiktok`.
    static func subject(_ text: MessageText) -> String {
        if text.payload.group != nil { return text.title }
        if text.payload.kind == .escalated {
            return "[ESCALATED L\(text.payload.escalationLevel ?? 1)][\(text.alert.severity.rawValue.uppercased())] \(text.alert.rule)"
                + (text.alert.platform.map { " · \($0)" } ?? "")
        }
        let state = text.payload.isResolved ? "[RESOLVED]" : text.payload.kind == .test ? "[TEST]" : "[FIRING]"
        return "\(state)[\(text.alert.severity.rawValue.uppercased())] \(text.alert.rule)"
            + (text.groupText.map { " · \($0)" } ?? "")
    }

    static func rows(_ text: MessageText) -> [(String, String)] {
        let alert = text.alert
        var rows = [("Value", text.valueText), ("Samples", String(alert.samples)), ("Platform", alert.platform ?? "all"),
                    ("Severity", alert.severity.rawValue), ("Started at", RFC3339.format(alert.startedAt))]
        if let duration = text.durationText { rows.append(("Duration", duration)) }
        return rows
    }

    static func plain(_ text: MessageText) -> String {
        let alert = text.alert
        if text.payload.group != nil {
            return ([text.title, ""] + text.groupLines(limit: 50) + (text.dashboardLink.map { ["", $0] } ?? []))
                .joined(separator: "\n")
        }
        var lines = [text.title, "", alert.description, ""]
        lines += rows(text).map { name, value in (name + ":").padding(toLength: 12, withPad: " ", startingAt: 0) + value }
        if let runbook = alert.runbookURL { lines.append("Runbook:    \(runbook)") }
        if let link = text.dashboardLink { lines += ["", link] }
        return lines.joined(separator: "\n")
    }

    static func esc(_ value: String) -> String {
        value.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func html(_ text: MessageText) -> String {
        let alert = text.alert
        if text.payload.group != nil {
            var html = "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>\(esc(text.title))</h2><ul>"
            for line in text.groupLines(limit: 50) { html += "<li>\(esc(line))</li>" }
            html += "</ul>"
            if let link = text.dashboardLink { html += "<p><a href=\"\(esc(link))\">Open in Tocsin</a></p>" }
            return html + "</body></html>"
        }
        var html = """
            <!doctype html><html><body style="font-family:sans-serif">
            <h2 style="border-left:6px solid \(text.color);padding-left:8px">\(esc(text.title))</h2>
            <p>\(esc(alert.description))</p><table cellpadding="4">
            """
        for (name, value) in rows(text) { html += "<tr><th align=\"left\">\(esc(name))</th><td>\(esc(value))</td></tr>" }
        html += "</table>"
        if let runbook = alert.runbookURL { html += "<p><a href=\"\(esc(runbook))\">Runbook</a></p>" }
        if let link = text.dashboardLink { html += "<p><a href=\"\(esc(link))\">Open in Tocsin</a></p>" }
        return html + "</body></html>"
    }

    /// A complete RFC 5322 message with text and HTML alternatives.
    /// With `plain` (a template's text), the message is that text alone.
    static func message(_ text: MessageText, from: String, to: [String], now: Date, boundary: String,
                        plain: String? = nil) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let domain = from.split(separator: "@").last.map(String.init) ?? "tocsin"
        let headers = [
            "From: \(from)",
            "To: \(to.joined(separator: ", "))",
            "Subject: \(encodedWord(subject(text)))",
            "Date: \(formatter.string(from: now))",
            "Message-ID: <tocsin-\(text.notificationID)-\(text.payload.kind.rawValue)@\(domain)>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
        ]
        var parts = [
            "--\(boundary)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64Lines(plain ?? self.plain(text)),
        ]
        if plain == nil {
            parts.append("--\(boundary)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                         + base64Lines(html(text)))
        }
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + parts.joined(separator: "\r\n") + "\r\n--\(boundary)--\r\n"
    }

    /// A header value in RFC 2047 form when it is not plain ASCII.
    static func encodedWord(_ text: String) -> String {
        text.allSatisfy { $0.isASCII && !$0.isNewline } ? text : "=?UTF-8?B?\(Data(text.utf8).base64EncodedString())?="
    }

    static func base64Lines(_ text: String) -> String {
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
}
