import Foundation
import PostgresClient
import TocsinCore

/// The `alerts` and `alert_events` tables: listing, detail, and the manual
/// actions (acknowledge, resolve).
public struct AlertRepository: Sendable {
    let database: Database
    let config: ConfigRepository

    /// Read with `LEFT JOIN alert_rules r ON r.id = a.rule_id`: an external
    /// alert has no rule; its description and runbook come from its
    /// annotations, its labels are its own.
    static let columns: PostgresQuery = """
        a.id, a.rule_name, a.severity, a.status, a.group_key, a.platform, a.value, a.threshold, a.comparison,
        a.samples, coalesce(r.description, a.annotations->>'description', a.annotations->>'summary', '') AS description,
        coalesce(r.runbook_url, a.annotations->>'runbook_url') AS runbook_url,
        (CASE WHEN a.source = 'external' THEN a.labels ELSE a.labels || r.labels END)::text AS labels,
        (CASE WHEN a.source = 'external' THEN a.labels - 'alertname' ELSE a.labels END)::text AS group_labels,
        a.started_at, a.fired_at,
        a.last_evaluated_at, a.acknowledged_at, a.acknowledged_by, a.acknowledge_note, a.resolved_at, a.resolved_by,
        a.resolution, a.resolve_note, a.source, a.fingerprint, a.annotations::text AS annotations, a.generator_url, a.ends_at,
        a.last_received_at
        """

    static func stringMap(_ json: String?) -> [String: String] {
        guard let json else { return [:] }
        return (try? JSONDecoder().decode([String: String].self, from: Data(json.utf8))) ?? [:]
    }

    static func decode(_ row: PostgresRow) throws -> Alert {
        let labelsJSON: String = try row.decode("labels")
        let groupJSON: String = try row.decode("group_labels")
        return Alert(
            id: try row.decode("id"), rule: try row.decode("rule_name"), severity: try row.decode("severity"),
            status: try row.decode("status"), groupKey: try row.decode("group_key"), platform: try row.decode("platform"),
            value: try row.decode("value"), threshold: try row.decode("threshold"), comparison: try row.decode("comparison"),
            samples: try row.decode("samples"), description: try row.decode("description"),
            runbookURL: try row.decode("runbook_url"), startedAt: try row.decode("started_at"),
            firedAt: try row.decode("fired_at"), lastEvaluatedAt: try row.decode("last_evaluated_at"),
            acknowledgedAt: try row.decode("acknowledged_at"), acknowledgedBy: try row.decode("acknowledged_by"),
            acknowledgeNote: try row.decode("acknowledge_note"), resolvedAt: try row.decode("resolved_at"),
            resolvedBy: try row.decode("resolved_by"), resolution: try row.decode("resolution"),
            resolveNote: try row.decode("resolve_note"),
            labels: stringMap(labelsJSON), groupLabels: stringMap(groupJSON), external: try decodeExternal(row))
    }

    static func decodeExternal(_ row: PostgresRow) throws -> ExternalAlertInfo? {
        guard try row.decode("source", as: AlertSource.self) == .external, let fingerprint: String = try row.decode("fingerprint"),
              let endsAt: Date = try row.decode("ends_at"), let received: Date = try row.decode("last_received_at")
        else { return nil }
        return ExternalAlertInfo(fingerprint: fingerprint, annotations: stringMap(try row.decode("annotations")),
                                 generatorURL: try row.decode("generator_url"), endsAt: endsAt, lastReceivedAt: received)
    }

    static func fetch(_ id: Int, _ connection: PostgresConnection) throws -> Alert {
        try decode(try connection.query(
            "SELECT \(columns) FROM alerts a LEFT JOIN alert_rules r ON r.id = a.rule_id WHERE a.id = \(id)")[0])
    }

    public struct Filter: Sendable {
        public var statuses: [AlertStatus] = []
        public var severities: [Rule.Severity] = []
        public var rule: String?
        public var platform: String?
        public var since: Date?
        public var until: Date?
        public var limit = 100
        public var cursor: String?
        public init() {}
    }

    public struct Page: Sendable {
        public var alerts: [Alert]
        public var nextCursor: String?
    }

    /// Cursor: `<open 1|0>.<started_at µs>.<id>` of the last row.
    public static func decodeCursor(_ cursor: String) -> (open: Int, at: Date, id: Int)? {
        guard let dot = cursor.firstIndex(of: "."), let open = Int(cursor[..<dot]), open == 0 || open == 1,
              let (micros, id) = Cursor.decode(String(cursor[cursor.index(after: dot)...]))
        else { return nil }
        return (open, Cursor.date(micros: micros), id)
    }

    /// Open alerts first, then history, newest first within each.
    public func list(_ filter: Filter) async throws -> Page {
        let cursor = filter.cursor.flatMap(Self.decodeCursor)
        let rows = try await database.read(
            """
            SELECT \(Self.columns), (a.status <> 'resolved')::int AS open_rank
            FROM alerts a LEFT JOIN alert_rules r ON r.id = a.rule_id
            WHERE (cardinality(\(filter.statuses)::text[]) = 0 OR a.status = ANY(\(filter.statuses)::text[]))
              AND (cardinality(\(filter.severities)::text[]) = 0 OR a.severity = ANY(\(filter.severities)::text[]))
              AND (\(filter.rule)::text IS NULL OR a.rule_name = \(filter.rule))
              AND (\(filter.platform)::text IS NULL OR a.platform = \(filter.platform))
              AND (\(filter.since)::timestamptz IS NULL OR a.started_at >= \(filter.since) OR a.status <> 'resolved')
              AND (\(filter.until)::timestamptz IS NULL OR a.started_at < \(filter.until))
              AND (\(cursor?.open)::int IS NULL OR ((a.status <> 'resolved')::int, a.started_at, a.id)
                   < (\(cursor?.open)::int, \(cursor?.at)::timestamptz, \(cursor?.id)::int8))
            ORDER BY (a.status <> 'resolved')::int DESC, a.started_at DESC, a.id DESC
            LIMIT \(filter.limit + 1)
            """)
        var alerts: [Alert] = []
        var next: String?
        for (i, row) in rows.enumerated() {
            if i == filter.limit {
                let last = alerts[i - 1]
                next = "\(last.status.isOpen ? 1 : 0).\(Cursor.encode(micros: Cursor.micros(last.startedAt), id: last.id))"
                break
            }
            alerts.append(try Self.decode(row))
        }
        return Page(alerts: alerts, nextCursor: next)
    }

    public func get(id: Int) async throws -> (Alert, [AlertTransition])? {
        try await database.read { connection in
            guard let row = try connection.query(
                "SELECT \(Self.columns) FROM alerts a LEFT JOIN alert_rules r ON r.id = a.rule_id WHERE a.id = \(id)").first
            else { return nil }
            let transitions = try connection.query(
                "SELECT \(Self.transitionColumns) FROM alert_events WHERE alert_id = \(id) ORDER BY id"
            ).map(Self.decodeTransition)
            return (try Self.decode(row), transitions)
        }
    }

    /// Open alerts by status, for /metrics.
    public func openCounts() async throws -> [AlertStatus: Int] {
        var counts: [AlertStatus: Int] = [:]
        for row in try await database.read("SELECT status, count(*) AS n FROM alerts WHERE status <> 'resolved' GROUP BY 1") {
            counts[try row.decode("status", as: AlertStatus.self)] = try row.decode("n")
        }
        return counts
    }

    static let transitionColumns: PostgresQuery = """
        id, alert_id, transition, from_status, to_status, value, threshold, samples, actor, note, resolution, at,
        escalation_level, evidence::text AS evidence, labels::text AS labels, annotations::text AS annotations
        """

    static func decodeTransition(_ row: PostgresRow) throws -> AlertTransition {
        AlertTransition(
            id: try row.decode("id"), alertID: try row.decode("alert_id"), kind: try row.decode("transition"),
            from: try row.decode("from_status"), to: try row.decode("to_status"), value: try row.decode("value"),
            threshold: try row.decode("threshold"), samples: try row.decode("samples"), actor: try row.decode("actor"),
            note: try row.decode("note"), resolution: try row.decode("resolution"), at: try row.decode("at"),
            escalationLevel: try row.decode("escalation_level"),
            evidence: try row.decode("evidence", as: String?.self).flatMap {
                try? JSONDecoder().decode(Evidence.self, from: Data($0.utf8))
            },
            labels: try row.decode("labels", as: String?.self).map { stringMap($0) },
            annotations: try row.decode("annotations", as: String?.self).map { stringMap($0) })
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
    /// Notifications are routed by the applied configuration, like every
    /// transition.
    public func act(_ action: Action, alertID: Int, actor: String, note: String?) async throws -> Alert {
        let transitions = TransitionWriter(config: config)
        return try await database.transaction { connection in
            guard let current = try connection.query("SELECT status FROM alerts WHERE id = \(alertID) FOR UPDATE").first
            else { throw ActionError.notFound }
            let status: AlertStatus = try current.decode("status")
            switch action {
            case .acknowledge:
                guard status == .firing else {
                    let reason = switch status {
                    case .resolved: "the alert is resolved"
                    case .pending: "the alert is pending: it has not fired yet"
                    default: "the alert is already acknowledged"
                    }
                    throw ActionError.conflict(reason)
                }
                try connection.query(
                    """
                    UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = \(actor),
                                      acknowledge_note = \(note)
                    WHERE id = \(alertID)
                    """)
            case .resolve:
                guard status != .resolved else { throw ActionError.conflict("the alert is already resolved") }
                try connection.query(
                    """
                    UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = \(actor), resolve_note = \(note),
                                      resolution = 'manual'
                    WHERE id = \(alertID)
                    """)
            }
            return try transitions.record(
                connection, alertID: alertID, kind: action == .acknowledge ? .acknowledged : .resolved, from: status,
                actor: actor, note: note, resolution: action == .resolve ? .manual : nil).0
        }
    }
}
