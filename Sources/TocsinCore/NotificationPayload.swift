import Foundation

/// What the outbox stores for one notification: which transition, and the
/// alert as it was then. An internal, versioned format — not the API's
/// JSON, not any receiver's — so the API and the message formats can change
/// without rewriting stored rows. A dispatcher refuses a version it does
/// not know (the row goes dead with that reason) instead of guessing.
///
/// Version 1: one alert's transition. Version 2 adds a group's message
/// (`group`, `alerts`) and escalations (`escalation_level`); a payload
/// without them is still written as version 1, and both are read.
public struct NotificationPayload: Sendable, Equatable, Codable {
    public static let currentVersion = 2
    public static let readableVersions: ClosedRange<Int> = 1...2

    public enum Kind: String, Sendable, Codable, CaseIterable {
        case fired, resolved, repeated = "repeat", test, escalated
    }

    /// What a group's message is about.
    public struct Group: Sendable, Equatable, Codable {
        public var id: Int
        /// `group_by` label values, e.g. {"rule": "oauth_failures"}.
        public var labels: [String: String]
        public var route: String
        /// The group's update number: 1 for its first message.
        public var sequence: Int
        public var firing: Int
        public var resolved: Int
        /// Alerts that changed since the group's last message.
        public var changed: Int

        public init(id: Int, labels: [String: String], route: String, sequence: Int, firing: Int, resolved: Int, changed: Int) {
            self.id = id
            self.labels = labels
            self.route = route
            self.sequence = sequence
            self.firing = firing
            self.resolved = resolved
            self.changed = changed
        }
    }

    public var version: Int
    public var kind: Kind
    public var transitionAt: Date
    /// The alert; for a group, its first firing alert (else its first).
    public var alert: Alert
    public var group: Group?
    /// A group's alerts: firing first, then resolved (at most
    /// `maxGroupAlerts`; `group` has the counts).
    public var alerts: [Alert]?
    public var escalationLevel: Int?

    public static let maxGroupAlerts = 100

    public init(kind: Kind, alert: Alert, transitionAt: Date) {
        self.version = 1
        self.kind = kind
        self.alert = alert
        self.transitionAt = transitionAt
    }

    public init(group: Group, kind: Kind, alerts: [Alert], transitionAt: Date) {
        self.version = 2
        self.kind = kind
        self.alert = alerts.first { $0.status != .resolved } ?? alerts[0]
        self.group = group
        self.alerts = Array(alerts.prefix(Self.maxGroupAlerts))
        self.transitionAt = transitionAt
    }

    public init(escalationLevel: Int, alert: Alert, transitionAt: Date) {
        self.version = 2
        self.kind = .escalated
        self.alert = alert
        self.escalationLevel = escalationLevel
        self.transitionAt = transitionAt
    }

    public var isResolved: Bool { kind == .resolved }

    public enum CodingKeys: String, CodingKey {
        case version = "v", kind, transitionAt = "transition_at", alert, group, alerts
        case escalationLevel = "escalation_level"
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
        guard readableVersions.contains(version.v) else {
            throw UnreadableError(description: "stored notification has version \(version.v); this Tocsin reads versions 1 and 2")
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
