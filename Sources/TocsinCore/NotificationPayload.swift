import Foundation

/// What the outbox stores for one notification: which transition, and the
/// alert as it was then. An internal, versioned format — not the API's
/// JSON, not any receiver's — so the API and the message formats can change
/// without rewriting stored rows. A dispatcher refuses a version it does
/// not know (the row goes dead with that reason) instead of guessing.
public struct NotificationPayload: Sendable, Equatable, Codable {
    public static let currentVersion = 1

    public enum Kind: String, Sendable, Codable, CaseIterable {
        case fired, resolved, repeated = "repeat", test
    }

    public var version: Int
    public var kind: Kind
    public var transitionAt: Date
    public var alert: Alert

    public init(kind: Kind, alert: Alert, transitionAt: Date) {
        self.version = Self.currentVersion
        self.kind = kind
        self.alert = alert
        self.transitionAt = transitionAt
    }

    public var isResolved: Bool { kind == .resolved }

    public enum CodingKeys: String, CodingKey {
        case version = "v", kind, transitionAt = "transition_at", alert
    }

    /// The stored JSON: sorted keys, dates in RFC 3339.
    public func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.format(date))
        }
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    public struct UnreadableError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func decode(_ json: String) throws -> NotificationPayload {
        struct Version: Decodable { var v: Int }
        guard let version = try? JSONDecoder().decode(Version.self, from: Data(json.utf8)) else {
            throw UnreadableError(description: "stored notification is not readable")
        }
        guard version.v == currentVersion else {
            throw UnreadableError(description: "stored notification has version \(version.v); this Tocsin reads version \(currentVersion)")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = RFC3339.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not RFC 3339"))
            }
            return date
        }
        do {
            return try decoder.decode(NotificationPayload.self, from: Data(json.utf8))
        } catch {
            throw UnreadableError(description: "stored notification is not readable")
        }
    }
}
