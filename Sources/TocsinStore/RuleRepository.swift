import Foundation
import PostgresClient
import TocsinCore

/// A rule as stored, with its scheduling state.
public struct StoredRule: Sendable, Equatable {
    public var id: Int32
    public var rule: Rule
    public var enabled: Bool
    public var nextDueAt: Date
    public var lastEvaluatedAt: Date?
    /// Evaluations that failed in a row (0: the last one succeeded).
    public var consecutiveErrors = 0
    /// The last failure, kept after the rule recovers.
    public var lastError: RuleFailure?
}

/// A failed evaluation: what went wrong (SQLSTATE and primary message, no
/// data) and when.
public struct RuleFailure: Sendable, Equatable {
    public var message: String
    public var at: Date
    /// too_many_groups, or evaluation_failed for anything else.
    public var code: RuleErrorCode = .evaluationFailed
}

/// The `alert_rules` table: written by applying a rules file, read by the
/// scheduler and the API.
public struct RuleRepository: Sendable {
    let database: Database
    let config: ConfigRepository

    /// Makes the table match `rules` and records the change as a new rules
    /// version (with `appliedBy`, `source` and a diff) when anything
    /// changed: new rules are added, changed ones updated (their schedule
    /// kept), rules no longer listed disabled — never deleted, so alerts
    /// keep their rule. Concurrent applies take turns (advisory lock).
    @discardableResult
    public func apply(_ rules: [Rule], appliedBy: String, source: String) async throws -> ApplyOutcome {
        let encoded = try rules.map { rule in (rule, try ConfigRepository.json(rule), try ConfigRepository.json(rule.labels)) }
        let after = try rules.map { try ConfigDiff.Item(kind: "rule", name: $0.name, encoding: $0) }
        let document = "[" + encoded.map(\.1).joined(separator: ",") + "]"
        return try await database.transaction { connection in
            try connection.advisoryTransactionLock(namespace: LockNamespace.configuration, id: 0)
            let before = try connection.query("SELECT name, definition::text AS definition FROM alert_rules WHERE enabled")
                .map { row -> ConfigDiff.Item in
                    let rule = try Self.decodeDefinition(try row.decode("definition"))
                    return try ConfigDiff.Item(kind: "rule", name: rule.name, encoding: rule)
                }
            let diff = ConfigDiff.lines(before: before, after: after)
            let current = try ConfigRepository.latest(.rules, connection)
            let outcome = try ConfigRepository.record(.rules, document: document, diff: diff, current: current,
                                                      appliedBy: appliedBy, source: source, connection)
            guard outcome.created || !diff.isEmpty else { return outcome }
            for (rule, definition, labels) in encoded {
                try Self.upsert(rule, definition: definition, labels: labels, version: outcome.version, connection)
            }
            try connection.query(
                """
                UPDATE alert_rules SET enabled = false, disabled_at = now(), updated_at = now(), version = \(outcome.version)
                WHERE enabled AND NOT (name = ANY(\(rules.map(\.name))::text[]))
                """)
            return outcome
        }
    }

    static func upsert(_ rule: Rule, definition: String, labels: String, version: Int?, _ connection: PostgresConnection) throws {
        try connection.query(
            """
            INSERT INTO alert_rules (name, description, runbook_url, kind, severity, comparison, threshold,
                                     recovery_threshold, group_by, interval_seconds, metric_names, input_rules, labels,
                                     definition, version)
            VALUES (\(rule.name), \(rule.description), \(rule.runbookURL), \(rule.kind.rawValue), \(rule.severity.rawValue),
                    \(rule.comparison.rawValue), \(rule.threshold), \(rule.recoveryThreshold), \(rule.groupBy.description),
                    \(rule.intervalSeconds), \(rule.metricNames)::text[], \(rule.inputs)::text[], \(labels)::jsonb,
                    \(definition)::jsonb, \(version))
            ON CONFLICT (name) DO UPDATE SET
                description = excluded.description, runbook_url = excluded.runbook_url, kind = excluded.kind,
                severity = excluded.severity, comparison = excluded.comparison, threshold = excluded.threshold,
                recovery_threshold = excluded.recovery_threshold, group_by = excluded.group_by,
                interval_seconds = excluded.interval_seconds, metric_names = excluded.metric_names,
                input_rules = excluded.input_rules, slo_period_counts = NULL, slo_period_counted_at = NULL, labels = excluded.labels, definition = excluded.definition, enabled = true,
                disabled_at = NULL, updated_at = now(), version = excluded.version
            WHERE alert_rules.definition IS DISTINCT FROM excluded.definition OR NOT alert_rules.enabled
            """)
    }

    static let columns: PostgresQuery =
        "id, definition::text AS definition, enabled, next_due_at, last_evaluated_at, consecutive_errors, last_error, last_error_at, last_error_code"

    /// True unless the rule (alias `r`) is a composite with an input due at
    /// or before the composite itself: a composite is evaluated after its
    /// inputs' evaluations of the same interval. An input due later (its
    /// next interval, a backoff, an early evaluation pulled to now) does not
    /// hold it back, so a composite never starves behind busy inputs.
    static let inputsReady: PostgresQuery = """
        (cardinality(r.input_rules) = 0 OR NOT EXISTS (
            SELECT 1 FROM alert_rules i
            WHERE i.enabled AND i.name = ANY(r.input_rules) AND i.next_due_at <= r.next_due_at AND i.next_due_at <= now()))
        """

    static func decodeDefinition(_ json: String) throws -> Rule {
        do {
            return try JSONDecoder().decode(Rule.self, from: Data(json.utf8))
        } catch {
            throw PostgresError(kind: .decoding, message: "alert_rules.definition is not a valid rule")
        }
    }

    static func decode(_ row: PostgresRow) throws -> StoredRule {
        StoredRule(
            id: try row.decode("id"), rule: try decodeDefinition(try row.decode("definition")), enabled: try row.decode("enabled"),
            nextDueAt: try row.decode("next_due_at"), lastEvaluatedAt: try row.decode("last_evaluated_at"),
            consecutiveErrors: try row.decode("consecutive_errors"),
            lastError: try row.decode("last_error", as: String?.self).map { message in
                RuleFailure(message: message, at: try row.decode("last_error_at"),
                            code: try row.decode("last_error_code", as: RuleErrorCode?.self) ?? .evaluationFailed)
            })
    }

    public func list(includeDisabled: Bool = false) async throws -> [StoredRule] {
        try await database.read(
            "SELECT \(Self.columns) FROM alert_rules WHERE enabled OR \(includeDisabled) ORDER BY name"
        ).map(Self.decode)
    }

    public func get(name: String) async throws -> StoredRule? {
        try await database.read("SELECT \(Self.columns) FROM alert_rules WHERE name = \(name)").first.map(Self.decode)
    }

    /// A rule due now, as the scheduler sees it.
    public struct DueRule: Sendable {
        public var id: Int32
        public var name: String
        /// Not a composite: it can be evaluated in a batch.
        public var batchable: Bool
    }

    /// The enabled rules due now (up to `limit`, soonest first; among rules
    /// due at the same time, in an order `spread` picks — from the soonest
    /// `4 × limit`, read in index order, so the call costs the same with
    /// 100 rules due or 100,000), and how long
    /// until the next one is due when none is (at most a second: the
    /// scheduler looks again at least that often).
    /// A composite whose inputs are due is left out until they have been
    /// evaluated (the scheduler looks again at once after evaluating them).
    public func due(limit: Int, spread: Int32 = 0) async throws -> (due: [DueRule], wait: Duration) {
        let rows = try await database.write(
            """
            SELECT id, name, next_due_at <= now() AS due, cardinality(input_rules) = 0 AS batchable,
                   least(1, greatest(0, extract(epoch FROM next_due_at - now())))::float8 AS wait
            FROM (SELECT * FROM alert_rules r WHERE enabled AND \(Self.inputsReady)
                  ORDER BY next_due_at LIMIT \(limit * 4)) soonest
            ORDER BY next_due_at, hashint4(id # \(spread)::int4) LIMIT \(limit)
            """)
        var due: [DueRule] = []
        for row in rows {
            guard try row.decode("due", as: Bool.self) else {
                let seconds = min(1, max(0, try row.decode("wait", as: Double.self)))
                return (due, due.isEmpty ? .milliseconds(Int(seconds * 1000) + 1) : .zero)
            }
            due.append(DueRule(id: try row.decode("id"), name: try row.decode("name"), batchable: try row.decode("batchable")))
        }
        return (due, due.isEmpty ? .seconds(1) : .zero)
    }

    /// Records a failed evaluation of rule `id`, whose transaction rolled
    /// back: counts it, keeps the message, logs it in `rule_evaluations`,
    /// and moves the due time 1, 2, 4 … seconds ahead, never more than one
    /// interval — so a failing rule is retried, but never in a loop.
    /// Returns the failures in a row so far.
    @discardableResult
    public func recordFailure(ruleID: Int32, message: String, code: RuleErrorCode = .evaluationFailed,
                              trigger: EvaluationTrigger, workerID: String) async throws -> Int {
        let message = String(message.prefix(RuleRepository.maxErrorLength))
        let rows = try await database.write(
            """
            WITH failed AS (
                UPDATE alert_rules
                SET consecutive_errors = consecutive_errors + 1, last_error = \(message), last_error_at = now(),
                    last_error_code = \(code),
                    due_reason = 'schedule',
                    next_due_at = now() + make_interval(secs => least(interval_seconds, power(2, least(consecutive_errors, 20))))
                WHERE id = \(ruleID)
                RETURNING id, name, consecutive_errors
            ), logged AS (
                INSERT INTO rule_evaluations (rule_id, rule_name, samples, outcome, trigger, worker_id, started_at,
                                              duration_ms, error)
                SELECT id, name, 0, 'error', \(trigger), \(workerID), now(), 0, \(message) FROM failed
            )
            SELECT consecutive_errors FROM failed
            """)
        return try rows.first?.decode("consecutive_errors") ?? 0
    }

    /// Longest error message kept.
    static let maxErrorLength = 500

    /// Rules whose last evaluation failed, for /metrics: all of them, and
    /// those failing with too_many_groups.
    public func failingCount() async throws -> (all: Int, tooManyGroups: Int) {
        let row = try await database.read(
            """
            SELECT count(*) AS n, count(*) FILTER (WHERE last_error_code = 'too_many_groups') AS groups
            FROM alert_rules WHERE enabled AND consecutive_errors > 0
            """)[0]
        return (try row.decode("n"), try row.decode("groups"))
    }

    /// Pulls forward the evaluation of enabled rules that read any of
    /// `names`, to now — or one second after their last evaluation, so a
    /// busy metric never has a rule evaluated more than once a second. A
    /// failing rule keeps to its backoff. A rule already due keeps its due
    /// reason, but its due time is touched, which tells an evaluation running
    /// now that events arrived after it read them (see
    /// `EvaluationRepository.log`).
    @discardableResult
    public func wake(readers names: [String]) async throws -> Int {
        try await database.write(
            """
            WITH woken AS (
                -- Locked in id order, as an evaluation batch locks them: the two never deadlock.
                SELECT id FROM alert_rules
                WHERE enabled AND consecutive_errors = 0 AND metric_names && \(names)::text[]
                  AND (next_due_at > greatest(now(), coalesce(last_evaluated_at, now()) + interval '1 second')
                       -- Due already, perhaps being evaluated right now: marked, so
                       -- that evaluation knows events came after it read them.
                       OR next_due_at <= now())
                ORDER BY id FOR UPDATE)
            UPDATE alert_rules r
            SET next_due_at = greatest(now(), coalesce(r.last_evaluated_at, now()) + interval '1 second'),
                due_reason = CASE WHEN r.next_due_at <= now() THEN r.due_reason ELSE 'event' END
            FROM woken WHERE r.id = woken.id
            RETURNING r.id
            """).count
    }
}

extension RuleRepository {
    /// A rule's current state per group: its open alerts.
    public struct GroupState: Sendable, Equatable {
        public var groupKey: String
        public var status: AlertStatus
        public var value: Double?
        public var samples: Int
        public var since: Date
        public var alertID: Int
    }

    /// The groups of the rule's latest evaluation.
    public struct LastEvaluation: Sendable, Equatable {
        public var at: Date
        public var durationMs: Double
        public var workerID: String
        public var trigger: EvaluationTrigger
        public var groups: [GroupResult]
    }

    public func states(ruleIDs: [Int32]) async throws -> ([Int32: [GroupState]], [Int32: LastEvaluation]) {
        let ids = ruleIDs.map(Int.init)
        return try await database.read { connection in
            var states: [Int32: [GroupState]] = [:]
            for row in try connection.query(
                """
                SELECT rule_id, id, group_key, status, value, samples, started_at
                FROM alerts WHERE status <> 'resolved' AND rule_id = ANY(\(ids)::int[]) ORDER BY group_key
                """) {
                states[try row.decode("rule_id"), default: []].append(GroupState(
                    groupKey: try row.decode("group_key"), status: try row.decode("status"),
                    value: try row.decode("value"), samples: try row.decode("samples"), since: try row.decode("started_at"),
                    alertID: try row.decode("id")))
            }
            var last: [Int32: LastEvaluation] = [:]
            for row in try connection.query(
                """
                SELECT e.rule_id, e.rule_name, e.group_key, e.value, e.samples, e.outcome, e.trigger, e.worker_id,
                       e.started_at, e.duration_ms, e.evidence::text AS evidence
                FROM alert_rules r
                JOIN rule_evaluations e ON e.rule_id = r.id AND e.started_at >= r.last_evaluated_at AND e.outcome <> 'error'
                WHERE r.id = ANY(\(ids)::int[])
                ORDER BY e.rule_id, e.started_at, e.group_key
                """) {
                let id: Int32 = try row.decode("rule_id")
                let at: Date = try row.decode("started_at")
                if last[id] == nil || last[id]!.at < at {
                    last[id] = LastEvaluation(at: at, durationMs: try row.decode("duration_ms"),
                                              workerID: try row.decode("worker_id"), trigger: try row.decode("trigger"),
                                              groups: [])
                }
                guard last[id]!.at == at else { continue }
                last[id]!.groups.append(GroupResult(
                    rule: try row.decode("rule_name"), groupKey: try row.decode("group_key"), value: try row.decode("value"),
                    samples: try row.decode("samples"), outcome: try row.decode("outcome"),
                    evidence: try row.decode("evidence", as: String?.self).flatMap {
                        try? JSONDecoder().decode(Evidence.self, from: Data($0.utf8))
                    }))
            }
            return (states, last)
        }
    }
}
