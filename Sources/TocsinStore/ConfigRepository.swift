import Foundation
import PostgresClient
import Synchronization
import TocsinCore
import TocsinCrypto

/// One applied version of the rules or of the notification configuration.
public struct ConfigVersion: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case rules, notify
    }

    public var kind: Kind
    public var version: Int
    public var appliedAt: Date
    public var appliedBy: String
    public var source: String
    public var diff: [String]
}

/// What an apply did: a new version, or nothing because the configuration
/// is already the current one.
public struct ApplyOutcome: Sendable, Equatable {
    /// The version now current (nil when nothing was ever applied).
    public var version: Int?
    public var created: Bool
    public var diff: [String]
}

/// The `config_versions` table, and the current notification configuration
/// as every process reads it (cached per version: a transition reads only
/// the version number unless it changed).
public final class ConfigRepository: Sendable {
    let database: Database
    private let cachedNotify = Mutex<(version: Int, config: NotifyConfig)?>(nil)

    init(database: Database) {
        self.database = database
    }

    public struct InlineSecrets: Error, CustomStringConvertible {
        public var fields: [(channel: String, field: String)]
        public var description: String {
            let list = fields.map { "\($0.channel).\($0.field)" }.joined(separator: ", ")
            return "secret values cannot be stored in the database (\(list)): give the *_env form naming an environment variable of the workers"
        }
    }

    /// Applies a notification configuration (its secrets detached: only
    /// references) as a new version when it differs from the current one.
    public func applyNotify(_ config: NotifyConfig, appliedBy: String, source: String) async throws -> ApplyOutcome {
        let inline = config.channelsWithInlineSecrets
        guard inline.isEmpty else { throw InlineSecrets(fields: inline) }
        let document = try Self.json(config)
        let after = try Self.items(config)
        return try await database.transaction { connection in
            try connection.advisoryTransactionLock(namespace: LockNamespace.configuration, id: 1)
            let current = try Self.latest(.notify, connection)
            let before = try current.map { try Self.items(try Self.decodeNotify($0.document)) } ?? []
            return try Self.record(.notify, document: document, diff: ConfigDiff.lines(before: before, after: after),
                                   current: current, appliedBy: appliedBy, source: source, connection)
        }
    }

    /// The current notification configuration (empty when none was applied).
    public func activeNotify() async throws -> (version: Int?, config: NotifyConfig) {
        try await database.primary.withConnection { connection in try self.activeNotify(connection) }
    }

    func activeNotify(_ connection: PostgresConnection) throws -> (version: Int?, config: NotifyConfig) {
        let rows = try connection.query(
            "SELECT version FROM config_versions WHERE kind = 'notify' ORDER BY version DESC LIMIT 1")
        guard let version: Int = try rows.first?.decode("version") else { return (nil, .empty) }
        if let cached = cachedNotify.withLock({ $0 }), cached.version == version { return (version, cached.config) }
        let document: String = try connection.query(
            "SELECT document::text AS document FROM config_versions WHERE kind = 'notify' AND version = \(version)"
        )[0].decode("document")
        let config = try Self.decodeNotify(document)
        cachedNotify.withLock { $0 = (version, config) }
        return (version, config)
    }

    /// Newest first.
    public func versions(_ kind: ConfigVersion.Kind, limit: Int) async throws -> [ConfigVersion] {
        try await database.read(
            """
            SELECT kind, version, applied_at, applied_by, source, diff::text AS diff FROM config_versions
            WHERE kind = \(kind.rawValue) ORDER BY version DESC LIMIT \(limit)
            """
        ).map { row in
            let diff: String = try row.decode("diff")
            return ConfigVersion(
                kind: kind, version: try row.decode("version"), appliedAt: try row.decode("applied_at"),
                appliedBy: try row.decode("applied_by"), source: try row.decode("source"),
                diff: (try? JSONDecoder().decode([String].self, from: Data(diff.utf8))) ?? [])
        }
    }

    // MARK: Shared by the rules and notification applies

    struct Stored {
        var version: Int
        var checksum: String
        var document: String
    }

    static func latest(_ kind: ConfigVersion.Kind, _ connection: PostgresConnection) throws -> Stored? {
        try connection.query(
            """
            SELECT version, checksum, document::text AS document FROM config_versions
            WHERE kind = \(kind.rawValue) ORDER BY version DESC LIMIT 1
            """
        ).first.map { row in
            Stored(version: try row.decode("version"), checksum: try row.decode("checksum"), document: try row.decode("document"))
        }
    }

    /// Inserts the next version unless the document is the current one.
    static func record(_ kind: ConfigVersion.Kind, document: String, diff: [String], current: Stored?, appliedBy: String,
                       source: String, _ connection: PostgresConnection) throws -> ApplyOutcome {
        let checksum = Crypto.sha256Hex(document)
        if let current, current.checksum == checksum {
            return ApplyOutcome(version: current.version, created: false, diff: [])
        }
        let version = (current?.version ?? 0) + 1
        let diffJSON = String(decoding: try JSONEncoder().encode(diff), as: UTF8.self)
        try connection.query(
            """
            INSERT INTO config_versions (kind, version, applied_by, source, checksum, diff, document)
            VALUES (\(kind.rawValue), \(version), \(String(appliedBy.prefix(200))), \(String(source.prefix(1000))), \(checksum),
                    \(diffJSON)::jsonb, \(document)::jsonb)
            """)
        return ApplyOutcome(version: version, created: true, diff: diff)
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decodeNotify(_ document: String) throws -> NotifyConfig {
        do {
            return try JSONDecoder().decode(NotifyConfig.self, from: Data(document.utf8))
        } catch {
            throw PostgresError(kind: .decoding, message: "config_versions.document is not a notification configuration")
        }
    }

    static func items(_ config: NotifyConfig) throws -> [ConfigDiff.Item] {
        var items = try config.channels.map { try ConfigDiff.Item(kind: "channel", name: $0.name, encoding: $0) }
        for (index, route) in config.routes.enumerated() {
            items.append(try ConfigDiff.Item(kind: "route", name: "#\(index + 1)", encoding: route))
        }
        for window in config.timeIntervals {
            items.append(try ConfigDiff.Item(kind: "time interval", name: window.name, encoding: window.recurrence))
        }
        for rule in config.inhibitRules {
            items.append(try ConfigDiff.Item(kind: "inhibit rule", name: rule.name, encoding: rule))
        }
        for (kind, template) in config.templates.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            // The text's digest, not the text: a diff line stays one line.
            items.append(ConfigDiff.Item(kind: "template", name: kind.rawValue,
                                         fields: ["source": template.source, "sha256": String(Crypto.sha256Hex(template.text).prefix(12))]))
        }
        return items
    }
}
