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

    public func send(_ payload: NotificationPayload, id: Int, to channel: ResolvedChannel) async -> Outcome {
        let now = Date()
        let text = MessageText(payload: payload, notificationID: id, publicURL: publicURL)
        do {
            switch channel.kind {
            case .slack:
                return try await post(channel.url, body: SlackMessage.body(text, now: now), headers: ["Content-Type: application/json"])
            case .webhook:
                let body = WebhookMessage.body(text, now: now)
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
                guard let key = channel.routingKey else {
                    return Outcome(verdict: .fail, statusCode: nil, error: "channel \(channel.name) has no routing key")
                }
                return try await post(channel.url ?? NotifyConfig.Channel.pagerDutyURL,
                                      body: PagerDutyMessage.body(text, routingKey: key), headers: ["Content-Type: application/json"])
            case .email:
                return try await mail(text, channel: channel, now: now)
            }
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

    private func mail(_ text: MessageText, channel: ResolvedChannel, now: Date) async throws -> Outcome {
        guard let url = channel.smtpURL, let from = channel.from, !channel.to.isEmpty else {
            return Outcome(verdict: .fail, statusCode: nil, error: "channel \(channel.name) is missing smtp_url, from or to")
        }
        let message = EmailMessage.message(text, from: from, to: channel.to, now: now,
                                           boundary: "tocsin-" + Crypto.hex(Crypto.randomBytes(8)))
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
