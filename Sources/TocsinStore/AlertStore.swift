import Foundation
import PostgresClient
import TocsinCore

/// The `alerts` and `alert_events` tables: listing, detail, and the manual
/// actions (acknowledge, resolve).
public struct AlertStore: Sendable {
    public let pool: PostgresPool
    public init(pool: PostgresPool) { self.pool = pool }

    /// The channel alert transitions are announced on (payload: JSON with
    /// the transition and the alert id), for the live dashboard.
    public static let alertsChannel = "tocsin_alerts"

    static let columns = """
        a.id, a.rule_name, a.severity, a.status, a.group_key, a.platform, a.value, a.threshold, a.comparison,
        a.samples, r.description, r.runbook_url, r.labels::text AS labels,
        extract(epoch FROM a.started_at)::float8 AS started_at, extract(epoch FROM a.fired_at)::float8 AS fired_at,
        extract(epoch FROM a.last_evaluated_at)::float8 AS last_evaluated_at,
        extract(epoch FROM a.acknowledged_at)::float8 AS acknowledged_at, a.acknowledged_by, a.acknowledge_note,
        extract(epoch FROM a.resolved_at)::float8 AS resolved_at, a.resolved_by, a.resolution, a.resolve_note
        """

    static func decode(_ row: PostgresRow) throws -> Alert {
        let labelsJSON: String = try row.decode("labels")
        let labels = (try? JSONDecoder().decode([String: String].self, from: Data(labelsJSON.utf8))) ?? [:]
        func enumValue<T: RawRepresentable>(_ column: String) throws -> T where T.RawValue == String {
            let raw: String = try row.decode(column)
            guard let value = T(rawValue: raw) else {
                throw PostgresError(kind: .decoding, message: "unexpected \(column) value")
            }
            return value
        }
        let resolution: String? = try row.decode("resolution")
        return Alert(
            id: try row.decode("id"), rule: try row.decode("rule_name"), severity: try enumValue("severity"),
            status: try enumValue("status"), groupKey: try row.decode("group_key"), platform: try row.decode("platform"),
            value: try row.decode("value"), threshold: try row.decode("threshold"), comparison: try row.decode("comparison"),
            samples: try row.decode("samples"), description: try row.decode("description"),
            runbookURL: try row.decode("runbook_url"), startedAt: try row.decode("started_at"),
            firedAt: try row.decode("fired_at"), lastEvaluatedAt: try row.decode("last_evaluated_at"),
            acknowledgedAt: try row.decode("acknowledged_at"), acknowledgedBy: try row.decode("acknowledged_by"),
            acknowledgeNote: try row.decode("acknowledge_note"), resolvedAt: try row.decode("resolved_at"),
            resolvedBy: try row.decode("resolved_by"), resolution: resolution.flatMap(Resolution.init(rawValue:)),
            resolveNote: try row.decode("resolve_note"), labels: labels)
    }

    public struct Filter: Sendable {
        public var statuses: [AlertStatus] = []
        public var severities: [Rule.Severity] = []
        public var rule: String?
        public var platform: String?
        public var since: Double?
        public var until: Double?
        public var limit = 100
        public var cursor: String?
        public init() {}
    }

    public struct Page: Sendable {
        public var alerts: [Alert]
        public var nextCursor: String?
    }

    /// Cursor: `<open 1|0>.<started_at µs>.<id>` of the last row.
    public static func decodeCursor(_ cursor: String) -> (open: Int, micros: Int, id: Int)? {
        let parts = cursor.split(separator: ".")
        guard parts.count == 3, let open = Int(parts[0]), open == 0 || open == 1,
              let micros = Int(parts[1]), let id = Int(parts[2]) else { return nil }
        return (open, micros, id)
    }

    /// Open alerts first, then history, newest first within each.
    public func list(_ filter: Filter) async throws -> Page {
        let cursor = filter.cursor.flatMap(Self.decodeCursor)
        let rows = try await pool.query(
            """
            SELECT \(Self.columns), (a.status <> 'resolved')::int AS open_rank,
                   (extract(epoch FROM a.started_at) * 1000000)::int8 AS started_us
            FROM alerts a JOIN alert_rules r ON r.id = a.rule_id
            WHERE (cardinality($1::text[]) = 0 OR a.status = ANY($1::text[]))
              AND (cardinality($2::text[]) = 0 OR a.severity = ANY($2::text[]))
              AND ($3::text IS NULL OR a.rule_name = $3)
              AND ($4::text IS NULL OR a.platform = $4)
              AND ($5::timestamptz IS NULL OR a.started_at >= $5 OR a.status <> 'resolved')
              AND ($6::timestamptz IS NULL OR a.started_at < $6)
              AND ($7::int IS NULL OR ((a.status <> 'resolved')::int, a.started_at, a.id)
                   < ($7::int, 'epoch'::timestamptz + $8::int8 * interval '1 microsecond', $9::int8))
            ORDER BY (a.status <> 'resolved')::int DESC, a.started_at DESC, a.id DESC
            LIMIT $10
            """,
            [filter.statuses.map(\.rawValue), filter.severities.map(\.rawValue), filter.rule, filter.platform,
             filter.since.map { Date(timeIntervalSince1970: $0) }, filter.until.map { Date(timeIntervalSince1970: $0) },
             cursor?.open, cursor?.micros, cursor?.id, filter.limit + 1])
        var alerts: [Alert] = []
        var next: String?
        for (i, row) in rows.enumerated() {
            if i == filter.limit {
                let last = rows[i - 1]
                next = "\(try last.decode("open_rank", as: Int.self)).\(try last.decode("started_us", as: Int.self)).\(try last.decode("id", as: Int.self))"
                break
            }
            alerts.append(try Self.decode(row))
        }
        return Page(alerts: alerts, nextCursor: next)
    }

    public func get(id: Int) async throws -> (Alert, [AlertTransition])? {
        try await pool.withConnection { connection in
            guard let row = try connection.query(
                "SELECT \(Self.columns) FROM alerts a JOIN alert_rules r ON r.id = a.rule_id WHERE a.id = $1", [id]).first
            else { return nil }
            let transitions = try connection.query(
                """
                SELECT id, alert_id, transition, from_status, to_status, value, threshold, samples, actor, note, resolution,
                       extract(epoch FROM at)::float8 AS at
                FROM alert_events WHERE alert_id = $1 ORDER BY id
                """, [id]).map(Self.decodeTransition)
            return (try Self.decode(row), transitions)
        }
    }

    static func decodeTransition(_ row: PostgresRow) throws -> AlertTransition {
        let from: String? = try row.decode("from_status")
        let resolution: String? = try row.decode("resolution")
        return AlertTransition(
            id: try row.decode("id"), alertID: try row.decode("alert_id"),
            kind: AlertTransition.Kind(rawValue: try row.decode("transition")) ?? .pending,
            from: from.flatMap(AlertStatus.init(rawValue:)),
            to: AlertStatus(rawValue: try row.decode("to_status")) ?? .pending,
            value: try row.decode("value"), threshold: try row.decode("threshold"), samples: try row.decode("samples"),
            actor: try row.decode("actor"), note: try row.decode("note"),
            resolution: resolution.flatMap(Resolution.init(rawValue:)), at: try row.decode("at"))
    }

    public enum Action: String, Sendable {
        case acknowledge, resolve
    }

    public enum ActionError: Error, Equatable {
        case notFound
        case conflict(String)
    }

    /// Acknowledges or resolves an alert as `actor` (an API key name), with
    /// an optional note. Resolving a resolved alert, or acknowledging one
    /// that is not firing (pending, acknowledged, resolved), is a conflict.
    public func act(_ action: Action, alertID: Int, actor: String, note: String?,
                    hooks: TransitionHooks = TransitionHooks()) async throws -> Alert {
        try await pool.withTransaction { connection in
            guard let current = try connection.query(
                "SELECT status, rule_id FROM alerts WHERE id = $1 FOR UPDATE", [alertID]).first
            else { throw ActionError.notFound }
            let status: String = try current.decode("status")
            let updated: PostgresRows
            switch action {
            case .acknowledge:
                guard status == "firing" else {
                    let reason = switch status {
                    case "resolved": "the alert is resolved"
                    case "pending": "the alert is pending: it has not fired yet"
                    default: "the alert is already acknowledged"
                    }
                    throw ActionError.conflict(reason)
                }
                updated = try connection.query(
                    """
                    UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2, acknowledge_note = $3
                    WHERE id = $1 RETURNING status
                    """, [alertID, actor, note])
            case .resolve:
                guard status != "resolved" else { throw ActionError.conflict("the alert is already resolved") }
                updated = try connection.query(
                    """
                    UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = $2, resolve_note = $3,
                                      resolution = 'manual'
                    WHERE id = $1 RETURNING status
                    """, [alertID, actor, note])
            }
            guard updated.count == 1 else { throw ActionError.notFound }
            let transition = try TransitionWriter.record(
                connection, alertID: alertID, kind: action == .acknowledge ? .acknowledged : .resolved,
                from: AlertStatus(rawValue: status), actor: actor, note: note,
                resolution: action == .resolve ? .manual : nil)
            let row = try connection.query(
                "SELECT \(Self.columns) FROM alerts a JOIN alert_rules r ON r.id = a.rule_id WHERE a.id = $1", [alertID])[0]
            let alert = try Self.decode(row)
            try hooks.afterTransition(connection, alert, transition)
            return alert
        }
    }
}

/// What else happens in the transaction of a transition: the notification
/// outbox rows (installed by the notifications module) and the live
/// dashboard announcement.
public struct TransitionHooks: Sendable {
    public typealias Hook = @Sendable (PostgresConnection, Alert, AlertTransition) throws -> Void
    public var outbox: Hook?

    public init(outbox: Hook? = nil) { self.outbox = outbox }

    func afterTransition(_ connection: PostgresConnection, _ alert: Alert, _ transition: AlertTransition) throws {
        try outbox?(connection, alert, transition)
        try TransitionWriter.announce(connection, alert: alert, transition: transition)
        Telemetry.transition(transition.kind.rawValue)
    }
}

/// Writes `alert_events` rows and announces transitions.
enum TransitionWriter {
    /// Appends the transition with the alert's current value, threshold and
    /// samples as evidence.
    static func record(
        _ connection: PostgresConnection, alertID: Int, kind: AlertTransition.Kind, from: AlertStatus?, actor: String,
        note: String?, resolution: Resolution?
    ) throws -> AlertTransition {
        let row = try connection.query(
            """
            INSERT INTO alert_events (alert_id, rule_id, transition, from_status, to_status, value, threshold, samples,
                                      actor, note, resolution)
            SELECT id, rule_id, $2, $3, status, value, threshold, samples, $4, $5, $6 FROM alerts WHERE id = $1
            RETURNING id, alert_id, transition, from_status, to_status, value, threshold, samples, actor, note, resolution,
                      extract(epoch FROM at)::float8 AS at
            """, [alertID, kind.rawValue, from?.rawValue, actor, note, resolution?.rawValue])[0]
        return try AlertStore.decodeTransition(row)
    }

    static func announce(_ connection: PostgresConnection, alert: Alert, transition: AlertTransition) throws {
        let payload = #"{"type":"alert.\#(transition.kind.rawValue)","alert_id":\#(alert.id)}"#
        try connection.notify(channel: AlertStore.alertsChannel, payload: payload)
    }
}
