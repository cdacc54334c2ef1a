import Foundation
import TocsinCore
import TocsinCrypto

/// Sends one notification to one channel and says how it went.
public struct Sender: Sendable {
    public struct Outcome: Sendable, Equatable {
        public var verdict: RetryPolicy.Verdict
        public var statusCode: Int?
        /// What went wrong, without secrets.
        public var error: String?
    }

    public let transport: Transport
    public let publicURL: String?

    public init(transport: Transport, publicURL: String?) {
        self.transport = transport
        self.publicURL = publicURL
    }

    /// What a channel of `kind` is sent for `payload` (the HTTP body; an
    /// e-mail's text part), with the channel kind's template when there is
    /// one: `tocsin notify preview` prints exactly this.
    public static func body(_ payload: NotificationPayload, id: Int, kind: NotifyConfig.Channel.Kind,
                            template: NotifyConfig.MessageTemplate?, publicURL: String?, now: Date,
                            routingKey: String?) throws -> Data {
        let text = MessageText(payload: payload, notificationID: id, publicURL: publicURL)
        if let template {
            let rendered = try MessageTemplates.render(template, kind: kind, text: text)
            guard kind == .pagerduty else { return Data(rendered.utf8) }
            // The template is the event's payload; the envelope is Tocsin's.
            let inner = (try? JSONSerialization.jsonObject(with: Data(rendered.utf8))) ?? rendered
            var event: [String: Any] = [
                "routing_key": routingKey ?? "", "event_action": payload.isResolved ? "resolve" : "trigger",
                "dedup_key": PagerDutyMessage.dedupKey(payload),
            ]
            if !payload.isResolved { event["payload"] = inner }
            return MessageText.json(event)
        }
        switch kind {
        case .slack: return SlackMessage.body(text, now: now)
        case .webhook: return WebhookMessage.body(text, now: now)
        case .pagerduty: return PagerDutyMessage.body(text, routingKey: routingKey ?? "")
        case .email: return Data(EmailMessage.plain(text).utf8)
        }
    }

    public func send(_ payload: NotificationPayload, id: Int, to channel: ResolvedChannel,
                     template: NotifyConfig.MessageTemplate? = nil) async -> Outcome {
        let now = Date()
        let text = MessageText(payload: payload, notificationID: id, publicURL: publicURL)
        func body() throws -> Data {
            try Self.body(payload, id: id, kind: channel.kind, template: template, publicURL: publicURL, now: now,
                          routingKey: channel.routingKey)
        }
        do {
            switch channel.kind {
            case .slack:
                return try await post(channel.url, body: try body(), headers: ["Content-Type: application/json"])
            case .webhook:
                let body = try body()
                var headers = ["Content-Type: application/json", "Idempotency-Key: \(id)", "User-Agent: tocsin"]
                if let secret = channel.secret {
                    guard let signed = WebhookSignature.headers(body: body, id: String(id), secret: secret,
                                                                scheme: channel.signature, timestamp: Int(now.timeIntervalSince1970))
                    else {
                        return Outcome(verdict: .fail, statusCode: nil,
                                       error: "channel \(channel.name): a Standard Webhooks signature needs a whsec_ secret")
                    }
                    headers += signed
                }
                return try await post(channel.url, body: body, headers: headers)
            case .pagerduty:
                guard channel.routingKey != nil else {
                    return Outcome(verdict: .fail, statusCode: nil, error: "channel \(channel.name) has no routing key")
                }
                return try await post(channel.url ?? NotifyConfig.Channel.pagerDutyURL,
                                      body: try body(), headers: ["Content-Type: application/json"])
            case .email:
                let plain = template == nil ? nil : String(decoding: try body(), as: UTF8.self)
                return try await mail(text, channel: channel, now: now, plain: plain)
            }
        } catch let problem as MessageTemplates.Problem {
            return Outcome(verdict: .fail, statusCode: nil, error: "\(problem)")
        } catch {
            return Outcome(verdict: .retry(after: nil), statusCode: nil, error: "sender unavailable: \(error)")
        }
    }

    private func post(_ url: String?, body: Data, headers: [String]) async throws -> Outcome {
        guard let url else { return Outcome(verdict: .fail, statusCode: nil, error: "channel has no URL") }
        let result = try await transport.post(url: url, headers: headers, body: body)
        let verdict = RetryPolicy.classify(status: result.status, transportFailed: result.transportError != nil,
                                           retryAfter: result.retryAfter, now: Date())
        var error: String?
        if let transportError = result.transportError {
            error = transportError
        } else if verdict != .delivered {
            error = "HTTP \(result.status)" + (result.body.isEmpty ? "" : ": " + String(result.body.prefix(200)))
        }
        return Outcome(verdict: verdict, statusCode: result.status == 0 ? nil : result.status, error: error)
    }

    private func mail(_ text: MessageText, channel: ResolvedChannel, now: Date, plain: String?) async throws -> Outcome {
        guard let url = channel.smtpURL, let from = channel.from, !channel.to.isEmpty else {
            return Outcome(verdict: .fail, statusCode: nil, error: "channel \(channel.name) is missing smtp_url, from or to")
        }
        let message = EmailMessage.message(text, from: from, to: channel.to, now: now,
                                           boundary: "tocsin-" + Crypto.hex(Crypto.randomBytes(8)), plain: plain)
        var startTLS = switch channel.startTLS {
        case .off: 0
        case .opportunistic: 1
        case .required: 2
        }
        // The config reader refuses anything weaker; a password is never sent
        // in clear even if a config slipped through.
        if channel.password != nil, !url.lowercased().hasPrefix("smtps://") { startTLS = 2 }
        let result = try await transport.sendMail(url: url, username: channel.username, password: channel.password,
                                                  from: from, to: channel.to, message: message, startTLS: startTLS,
                                                  caFile: channel.tlsCAFile)
        if result.transportError == nil { return Outcome(verdict: .delivered, statusCode: result.smtpCode, error: nil) }
        // SMTP 5xx (other than 421/45x-style transient ones) are permanent.
        let permanent = result.smtpCode >= 500 && result.smtpCode < 600
        return Outcome(verdict: permanent ? .fail : .retry(after: nil), statusCode: result.smtpCode == 0 ? nil : result.smtpCode,
                       error: result.transportError)
    }
}
