import Foundation
import TocsinCore
import TocsinCrypto

/// The signatures of webhook requests.
///
/// - **Standard Webhooks** (standardwebhooks.com), for a `whsec_…` secret:
///   `webhook-id` (the notification id: the same on every retry),
///   `webhook-timestamp` (unix seconds of this attempt) and
///   `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`
///   keyed with the base64-decoded bytes after `whsec_`. Any Standard
///   Webhooks library verifies it.
/// - **Legacy**, for any other secret: `X-Tocsin-Signature: t=<unix>,v1=<hex
///   HMAC-SHA256 of "<t>.<body>">` keyed with the secret's bytes.
public enum WebhookSignature {
    /// `v1,<base64 signature>` of Standard Webhooks.
    public static func standard(id: String, timestamp: Int, body: Data, key: [UInt8]) -> String {
        var message = Array("\(id).\(timestamp).".utf8)
        message.append(contentsOf: body)
        return "v1," + Data(Crypto.hmacSHA256(key: key, message: message)).base64EncodedString()
    }

    /// `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (legacy).
    public static func legacy(body: Data, secret: String, timestamp: Int) -> String {
        var message = Array("\(timestamp).".utf8)
        message.append(contentsOf: body)
        return "t=\(timestamp),v1=" + Crypto.hex(Crypto.hmacSHA256(key: Array(secret.utf8), message: message))
    }

    /// The headers that sign `body` for `scheme` (by the secret's shape when
    /// nil), or nil when the scheme needs a `whsec_` secret and this is not one.
    public static func headers(body: Data, id: String, secret: String, scheme: NotifyConfig.Channel.Signature?,
                               timestamp: Int) -> [String]? {
        let scheme = scheme ?? (secret.hasPrefix("whsec_") ? .standard : .legacy)
        var headers: [String] = []
        if scheme != .legacy {
            guard let key = NotifyConfig.Channel.standardWebhookKey(secret) else { return nil }
            headers += ["webhook-id: \(id)", "webhook-timestamp: \(timestamp)",
                        "webhook-signature: " + standard(id: id, timestamp: timestamp, body: body, key: key)]
        }
        if scheme != .standard {
            headers.append("X-Tocsin-Signature: " + legacy(body: body, secret: secret, timestamp: timestamp))
        }
        return headers
    }
}
