import Foundation
import PostgresClient
import TocsinCore

/// The delivery ledger: what happened to an alert on a route and channel,
/// written in the transaction that made it happen.
enum Ledger {
    struct Entry {
        var alertID: Int
        var notificationID: Int? = nil
        var route: String?
        var channel: String
        var event: DeliveryEvent
        var transition: NotificationTransition? = nil
        var inhibitedBy: Int? = nil
        var silenceID: Int? = nil
        var timeInterval: String? = nil
        var level: Int? = nil
        var detail: String? = nil

        /// The same entry for the hold that keeps it back, if any.
        func held(by hold: Hold) -> Entry? {
            guard let event = hold.event else { return nil }
            var out = self
            out.event = event
            out.inhibitedBy = hold.inhibitedBy
            out.silenceID = hold.silenceID
            out.timeInterval = hold.mutedBy
            out.detail = hold.detail
            return out
        }
    }

    static func write(_ connection: PostgresConnection, _ entry: Entry) throws {
        try connection.query(
            """
            INSERT INTO delivery_ledger (alert_id, notification_id, route, channel, event, transition, inhibited_by, silence_id,
                                         time_interval, escalation_level, detail)
            VALUES (\(entry.alertID), \(entry.notificationID), \(entry.route), \(entry.channel), \(entry.event),
                    \(entry.transition), \(entry.inhibitedBy), \(entry.silenceID), \(entry.timeInterval), \(entry.level),
                    \(entry.detail.map { String($0.prefix(500)) }))
            """)
    }

    /// A statement that changes one notification row (`update`, an UPDATE …
    /// RETURNING the row's id) and records `event` for every alert the row
    /// tells of, in one statement. Returns the rows changed.
    static func changing(_ update: PostgresQuery, event: DeliveryEvent, statusCode: Int? = nil, untilSeconds: Double? = nil,
                         detail: String? = nil) -> PostgresQuery {
        """
        WITH done AS (\(update)),
        logged AS (
            INSERT INTO delivery_ledger (alert_id, notification_id, route, channel, event, transition, escalation_level,
                                         status_code, until, detail)
            SELECT coalesce(na.alert_id, n.alert_id), n.id, n.route, n.channel, \(event), n.transition, n.escalation_level,
                   \(statusCode), CASE WHEN \(untilSeconds)::float8 IS NULL THEN NULL
                                       ELSE now() + make_interval(secs => \(untilSeconds)::float8) END,
                   \(detail.map { String($0.prefix(500)) })
            FROM done JOIN notifications n ON n.id = done.id
            LEFT JOIN notification_alerts na ON na.notification_id = n.id
            WHERE coalesce(na.alert_id, n.alert_id) IS NOT NULL)
        SELECT count(*) AS n FROM done
        """
    }
}

/// Why a notification is held now, if it is: an inhibiting alert, a
/// silence, a route's time interval (checked in that order).
struct Hold {
    var status: NotificationStatus
    var inhibitedBy: Int?
    var inhibitRule: String?
    var silenceID: Int?
    var mutedBy: String?

    static let none = Hold(status: .pending)

    var event: DeliveryEvent? {
        switch status {
        case .inhibited: .inhibited
        case .silenced: .silenced
        case .muted: .muted
        default: nil
        }
    }

    var detail: String? {
        switch status {
        case .inhibited: inhibitRule.map { "inhibit rule \($0)" }
        case .muted: mutedBy.map { "time interval \($0)" }
        default: nil
        }
    }
}

/// The policy decisions that need the database: open inhibiting alerts,
/// active (possibly recurring) silences, the database clock.
enum Policy {
    /// The transaction's now(): every time interval is evaluated on it.
    static func now(_ connection: PostgresConnection) throws -> Date {
        try connection.query("SELECT now() AS now")[0].decode("now")
    }

    /// The open (firing or acknowledged) alerts that may inhibit others,
    /// read once per pass and only when an inhibit rule needs them.
    final class OpenAlerts {
        private var loaded: [(id: Int, labels: [String: String])]?

        func get(_ connection: PostgresConnection) throws -> [(id: Int, labels: [String: String])] {
            if let loaded { return loaded }
            let rows = try connection.query(
                """
                SELECT \(AlertRepository.columns) FROM alerts a LEFT JOIN alert_rules r ON r.id = a.rule_id
                WHERE a.status IN ('firing', 'acknowledged')
                ORDER BY a.id LIMIT 10000
                """)
            let open = try rows.map { row in
                let source = try AlertRepository.decode(row)
                return (id: source.id, labels: AlertLabelSet.of(source))
            }
            loaded = open
            return open
        }
    }

    /// The open alert that inhibits `alert` under `config`'s inhibit rules.
    static func inhibitor(_ connection: PostgresConnection, config: NotifyConfig, alert: Alert,
                          open: OpenAlerts = OpenAlerts()) throws -> (rule: String, sourceID: Int)? {
        let labels = AlertLabelSet.of(alert)
        guard config.inhibitRules.contains(where: { $0.target.matchAll(labels) }) else { return nil }
        return config.inhibition(of: labels, targetID: alert.id, openAlerts: try open.get(connection))
    }

    /// The hold that applies to a notification of `alert` on a route now.
    static func hold(_ connection: PostgresConnection, config: NotifyConfig, alert: Alert, route: NotifyConfig.Route?,
                     now: Date, inhibitable: Bool, open: OpenAlerts = OpenAlerts()) throws -> Hold {
        if inhibitable, let (rule, source) = try inhibitor(connection, config: config, alert: alert, open: open) {
            return Hold(status: .inhibited, inhibitedBy: source, inhibitRule: rule)
        }
        if let silence = try OutboxRepository.activeSilence(connection, for: alert) {
            return Hold(status: .silenced, silenceID: silence)
        }
        if let route, let window = config.heldBy(route: route, at: now) {
            return Hold(status: .muted, mutedBy: window)
        }
        return .none
    }

    /// The route of a stored row by its name ("route #N" or its own).
    static func route(named name: String?, in config: NotifyConfig) -> NotifyConfig.Route? {
        guard let name else { return nil }
        return config.routes.enumerated().first { $0.element.displayName(index: $0.offset) == name }?.element
    }
}

/// One entry of an alert's delivery ledger, as the API shows it.
public struct DeliveryRecord: Sendable, Equatable {
    public var id: Int
    public var at: Date
    public var route: String?
    public var channel: String
    public var event: DeliveryEvent
    public var transition: NotificationTransition?
    public var notificationID: Int?
    public var groupID: Int?
    public var inhibitedBy: Int?
    public var silenceID: Int?
    public var timeInterval: String?
    public var until: Date?
    public var escalationLevel: Int?
    public var statusCode: Int?
    public var detail: String?
}

extension OutboxRepository {
    /// The alert's ledger, oldest first (at most `limit` entries); nil when
    /// there is no such alert.
    public func deliveries(alertID: Int, limit: Int) async throws -> [DeliveryRecord]? {
        try await database.read { connection -> [DeliveryRecord]? in
            guard try !connection.query("SELECT 1 FROM alerts WHERE id = \(alertID)").isEmpty else { return nil }
            return try connection.query(
                """
                SELECT l.id, l.at, l.route, l.channel, l.event, l.transition, l.notification_id, n.group_id, l.inhibited_by,
                       l.silence_id, l.time_interval, l.until, l.escalation_level, l.status_code, l.detail
                FROM delivery_ledger l LEFT JOIN notifications n ON n.id = l.notification_id
                WHERE l.alert_id = \(alertID) ORDER BY l.id LIMIT \(limit)
                """
            ).map { row in
                DeliveryRecord(
                    id: try row.decode("id"), at: try row.decode("at"), route: try row.decode("route"),
                    channel: try row.decode("channel"), event: try row.decode("event"), transition: try row.decode("transition"),
                    notificationID: try row.decode("notification_id"), groupID: try row.decode("group_id"),
                    inhibitedBy: try row.decode("inhibited_by"), silenceID: try row.decode("silence_id"),
                    timeInterval: try row.decode("time_interval"), until: try row.decode("until"),
                    escalationLevel: try row.decode("escalation_level"), statusCode: try row.decode("status_code"),
                    detail: try row.decode("detail"))
            }
        }
    }

    /// The alerts that inhibit others now: inhibited alert id → inhibiting alert id.
    public func inhibitions(alertIDs: [Int]) async throws -> [Int: Int] {
        guard !alertIDs.isEmpty else { return [:] }
        var out: [Int: Int] = [:]
        for row in try await database.read(
            """
            SELECT alert_id, min(inhibited_by) AS by FROM notifications
            WHERE status = 'inhibited' AND alert_id = ANY(\(alertIDs)::int8[]) GROUP BY alert_id
            UNION ALL
            SELECT m.alert_id, min(l.inhibited_by) FROM notification_group_alerts m
            JOIN delivery_ledger l ON l.alert_id = m.alert_id AND l.event = 'inhibited'
            WHERE m.held_by LIKE 'inhibit rule %' AND m.alert_id = ANY(\(alertIDs)::int8[]) GROUP BY m.alert_id
            """) {
            out[try row.decode("alert_id")] = try row.decode("by")
        }
        return out
    }
}

extension OutboxRepository {
    /// The newest outbox row that tells of `alertID` on `channel` (its own
    /// or a group's message): its id and stored payload.
    public func latestPayload(alertID: Int, channel: String) async throws -> (id: Int, payload: NotificationPayload)? {
        guard let row = try await database.read(
            """
            SELECT id, content::text AS content FROM notifications
            WHERE channel = \(channel) AND (alert_id = \(alertID) OR id IN (
                SELECT notification_id FROM notification_alerts WHERE alert_id = \(alertID)))
            ORDER BY id DESC LIMIT 1
            """).first
        else { return nil }
        return (try row.decode("id"), try NotificationPayload.decode(try row.decode("content")))
    }
}
