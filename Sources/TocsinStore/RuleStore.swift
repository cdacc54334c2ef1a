import Foundation
import PostgresClient
import TocsinCore

/// A rule as stored, with its scheduling state.
public struct StoredRule: Sendable, Equatable {
    public var id: Int32
    public var rule: Rule
    public var enabled: Bool
    public var nextDueAt: Double
    public var lastEvaluatedAt: Double?
}

/// The `alert_rules` table: loaded from the rules file, read by the API.
public struct RuleStore: Sendable {
    public let pool: PostgresPool
    public init(pool: PostgresPool) { self.pool = pool }

    public struct SyncReport: Sendable, Equatable {
        public var upserted: Int
        public var disabled: Int
        public init(upserted: Int, disabled: Int) {
            self.upserted = upserted
            self.disabled = disabled
        }
    }

    /// Makes the table match `rules`: new rules are added, changed ones
    /// updated (their schedule kept), rules no longer in the file disabled.
    /// Workers starting together take turns (advisory lock).
    @discardableResult
    public func sync(_ rules: [Rule]) async throws -> SyncReport {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let rows: [(Rule, String, String)] = try rules.map { rule in
            (rule, String(decoding: try encoder.encode(rule), as: UTF8.self),
             String(decoding: try encoder.encode(rule.labels), as: UTF8.self))
        }
        return try await pool.withTransaction { connection in
            try connection.advisoryTransactionLock(namespace: LockNamespace.ruleSync, id: 0)
            var upserted = 0
            for (rule, definition, labels) in rows {
                let changed = try connection.query(
                    """
                    INSERT INTO alert_rules (name, description, runbook_url, kind, severity, comparison, threshold,
                                             recovery_threshold, group_by, interval_seconds, metric_names, labels, definition)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text[], $12::jsonb, $13::jsonb)
                    ON CONFLICT (name) DO UPDATE SET
                        description = excluded.description, runbook_url = excluded.runbook_url, kind = excluded.kind,
                        severity = excluded.severity, comparison = excluded.comparison, threshold = excluded.threshold,
                        recovery_threshold = excluded.recovery_threshold, group_by = excluded.group_by,
                        interval_seconds = excluded.interval_seconds, metric_names = excluded.metric_names,
                        labels = excluded.labels, definition = excluded.definition, enabled = true,
                        disabled_at = NULL, updated_at = now()
                    WHERE alert_rules.definition IS DISTINCT FROM excluded.definition OR NOT alert_rules.enabled
                    RETURNING id
                    """,
                    [rule.name, rule.description, rule.runbookURL, rule.kind.rawValue, rule.severity.rawValue,
                     rule.comparison.rawValue, rule.threshold, rule.recoveryThreshold, rule.groupBy.rawValue,
                     rule.intervalSeconds, rule.metricNames, labels, definition])
                upserted += changed.count
            }
            let disabled = try connection.query(
                """
                UPDATE alert_rules SET enabled = false, disabled_at = now(), updated_at = now()
                WHERE enabled AND NOT (name = ANY($1::text[])) RETURNING id
                """, [rules.map(\.name)])
            return SyncReport(upserted: upserted, disabled: disabled.count)
        }
    }

    static let columns = """
        id, definition::text AS definition, enabled, extract(epoch FROM next_due_at)::float8 AS next_due_at,
        extract(epoch FROM last_evaluated_at)::float8 AS last_evaluated_at
        """

    static func decode(_ row: PostgresRow) throws -> StoredRule {
        let json: String = try row.decode("definition")
        let rule: Rule
        do {
            rule = try JSONDecoder().decode(Rule.self, from: Data(json.utf8))
        } catch {
            throw PostgresError(kind: .decoding, message: "alert_rules.definition is not a valid rule")
        }
        return StoredRule(
            id: try row.decode("id"), rule: rule, enabled: try row.decode("enabled"),
            nextDueAt: try row.decode("next_due_at"), lastEvaluatedAt: try row.decode("last_evaluated_at"))
    }

    public func list(includeDisabled: Bool = false) async throws -> [StoredRule] {
        try await pool.query(
            "SELECT \(Self.columns) FROM alert_rules WHERE enabled OR $1 ORDER BY name", [includeDisabled]
        ).map(Self.decode)
    }

    public func get(name: String) async throws -> StoredRule? {
        try await pool.query("SELECT \(Self.columns) FROM alert_rules WHERE name = $1", [name]).first.map(Self.decode)
    }

    /// Pulls forward the evaluation of enabled rules that read any of
    /// `names`, to now — or one second after their last evaluation, so a
    /// busy metric never has a rule evaluated more than once a second.
    @discardableResult
    public func wake(readers names: [String]) async throws -> Int {
        try await pool.query(
            """
            UPDATE alert_rules
            SET next_due_at = greatest(now(), coalesce(last_evaluated_at, now()) + interval '1 second'), due_reason = 'event'
            WHERE enabled AND metric_names && $1::text[]
              AND next_due_at > greatest(now(), coalesce(last_evaluated_at, now()) + interval '1 second')
            RETURNING id
            """, [names]).count
    }
}

extension RuleStore {
    /// A rule's current state per group: its open alerts.
    public struct GroupState: Sendable, Equatable {
        public var groupKey: String
        public var status: AlertStatus
        public var value: Double?
        public var samples: Int
        public var since: Double
        public var alertID: Int
    }

    /// The groups of the rule's latest evaluation.
    public struct LastEvaluation: Sendable, Equatable {
        public var at: Double
        public var durationMs: Double
        public var workerID: String
        public var trigger: String
        public var groups: [RuleEvaluator.GroupResult]
    }

    public func states(ruleIDs: [Int32]) async throws -> ([Int32: [GroupState]], [Int32: LastEvaluation]) {
        try await pool.withConnection { connection in
            var states: [Int32: [GroupState]] = [:]
            for row in try connection.query(
                """
                SELECT rule_id, id, group_key, status, value, samples, extract(epoch FROM started_at)::float8 AS since
                FROM alerts WHERE status <> 'resolved' AND rule_id = ANY($1::int[]) ORDER BY group_key
                """, [ruleIDs.map(Int.init)]) {
                states[try row.decode("rule_id"), default: []].append(GroupState(
                    groupKey: try row.decode("group_key"),
                    status: AlertStatus(rawValue: try row.decode("status")) ?? .firing,
                    value: try row.decode("value"), samples: try row.decode("samples"), since: try row.decode("since"),
                    alertID: try row.decode("id")))
            }
            var last: [Int32: LastEvaluation] = [:]
            for row in try connection.query(
                """
                SELECT e.rule_id, e.rule_name, e.group_key, e.value, e.samples, e.outcome, e.trigger, e.worker_id,
                       extract(epoch FROM e.started_at)::float8 AS at, e.duration_ms
                FROM alert_rules r
                JOIN rule_evaluations e ON e.rule_id = r.id AND e.started_at >= r.last_evaluated_at
                WHERE r.id = ANY($1::int[])
                ORDER BY e.rule_id, e.started_at, e.group_key
                """, [ruleIDs.map(Int.init)]) {
                let id: Int32 = try row.decode("rule_id")
                let at: Double = try row.decode("at")
                if last[id] == nil || last[id]!.at < at {
                    last[id] = LastEvaluation(at: at, durationMs: try row.decode("duration_ms"),
                                              workerID: try row.decode("worker_id"), trigger: try row.decode("trigger"),
                                              groups: [])
                }
                guard last[id]!.at == at else { continue }
                last[id]!.groups.append(RuleEvaluator.GroupResult(
                    rule: try row.decode("rule_name"), groupKey: try row.decode("group_key"), value: try row.decode("value"),
                    samples: try row.decode("samples"), outcome: try row.decode("outcome")))
            }
            return (states, last)
        }
    }
}
