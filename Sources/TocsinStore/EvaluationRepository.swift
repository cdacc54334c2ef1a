import Foundation
import PostgresClient
import TocsinCore

/// Evaluates one rule in one transaction.
///
/// The transaction takes `pg_try_advisory_xact_lock(ruleEvaluation, rule id)`
/// and re-checks, by the database clock, that the rule is still due; then it
/// measures every group in SQL, decides each group's transition with the
/// pure state machine, writes the alerts, their transitions (and
/// notification rows), the evaluation log and the rule's next due time, and
/// commits them together. A worker killed half-way — or a primary that dies
/// under it — leaves nothing: the server rolls the transaction back and the
/// lock goes with it, and the rule is still due for the next worker.
public struct EvaluationRepository: Sendable {
    let database: Database
    let config: ConfigRepository

    /// The longest any statement of an evaluation may run; past it the
    /// evaluation fails (and the rule backs off).
    static let statementTimeout = "30s"

    /// How long an SLO rule's period counts (its error budget) are reused
    /// before they are counted again.
    static let periodCountsAge = "10 minutes"

    public enum Outcome: Sendable, Equatable {
        case evaluated([GroupResult], durationMs: Double, at: Date)
        /// Another worker holds the rule's lock.
        case busy
        /// Already evaluated for this interval (or disabled).
        case notDue
    }

    /// Evaluates rule `id` as `workerID`. With `force`, the due time is not
    /// checked and the lock is waited for (manual checks). `pause` (tests
    /// only) sleeps inside the transaction after measuring, so a test can
    /// kill the process mid-evaluation.
    public func evaluate(ruleID: Int32, trigger: EvaluationTrigger, force: Bool = false, workerID: String,
                         pause: Duration? = nil) async throws -> Outcome {
        let config = self.config
        return try await database.transaction { connection in
            if force {
                try connection.advisoryTransactionLock(namespace: LockNamespace.ruleEvaluation, id: ruleID)
            } else if try !connection.tryAdvisoryTransactionLock(namespace: LockNamespace.ruleEvaluation, id: ruleID) {
                return .busy
            }
            // One evaluation never holds a worker (or its locks) for long.
            try connection.query("SELECT set_config('statement_timeout', \(Self.statementTimeout), true)")
            guard let row = try connection.query(
                """
                SELECT \(RuleRepository.columns), next_due_at <= now() AS due, due_reason, now() AS now,
                       next_due_at::text AS read_due_at,
                       clock_timestamp() AS started, \(RuleRepository.inputsReady) AS inputs_ready,
                       CASE WHEN slo_period_counted_at > now() - \(Self.periodCountsAge)::interval
                            THEN slo_period_counts::text END AS period_counts
                FROM alert_rules r WHERE id = \(ruleID) AND enabled
                """).first
            else { return .notDue }
            let due: Bool = try row.decode("due")
            guard force || due else { return .notDue }
            // A composite waits for its inputs due now: it reads their states
            // once they have been evaluated for this interval.
            let inputsReady: Bool = try row.decode("inputs_ready")
            guard force || inputsReady else { return .notDue }
            // A due time pulled forward by arriving events is an early
            // evaluation, not the interval's scheduled one.
            var trigger = trigger
            if trigger == .schedule, try row.decode("due_reason", as: DueReason.self) == .event { trigger = .event }
            let evaluation = Evaluation(
                rule: try RuleRepository.decode(row).rule, ruleID: ruleID, now: try row.decode("now"),
                actor: "worker:" + workerID, connection: connection, transitions: TransitionWriter(config: config))
            let periodCounts: String? = try row.decode("period_counts")
            var measured = try Self.measure(evaluation.rule, connection, now: evaluation.now, ruleID: ruleID,
                                            periodCounts: periodCounts)
            if let pause { Thread.sleep(forTimeInterval: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18) }
            let results = try evaluation.apply(&measured)
            let started: Date = try row.decode("started")
            let finished: Date = try connection.query("SELECT clock_timestamp() AS t")[0].decode("t")
            let durationMs = finished.timeIntervalSince(started) * 1000
            try Self.log(results, rule: evaluation.rule, ruleID: ruleID, trigger: trigger, workerID: workerID,
                         durationMs: durationMs, readDueAt: try row.decode("read_due_at"), connection)
            return .evaluated(results, durationMs: durationMs, at: evaluation.now)
        }
    }

    /// The evaluation log (one row per group, or one row without a group
    /// when the rule had none to evaluate) and the next due time. started_at
    /// is the transaction's now(), the clock the due check and the next due
    /// time use, so each evaluation falls in its own interval.
    ///
    /// Events that arrive while the evaluation runs touch the rule's due
    /// time (`RuleRepository.wake`; nothing else changes it while this
    /// evaluation holds the rule's lock) after this transaction read it:
    /// their wake is kept — the rule is due again a second from now, as a wake after this
    /// evaluation would have made it — instead of being overwritten by the
    /// next interval's due time, which would leave those events unread for up
    /// to a whole interval. `readDueAt` is the due time this evaluation read (as text, so that the
    /// comparison is exact).
    static func log(_ results: [GroupResult], rule: Rule, ruleID: Int32, trigger: EvaluationTrigger, workerID: String,
                    durationMs: Double, readDueAt: String, _ connection: PostgresConnection) throws {
        let logged = results.isEmpty
            ? [GroupResult(rule: rule.name, groupKey: nil, value: nil, samples: 0, outcome: .noData)] : results
        // Only SLO and composite rules log their evidence (burn rates, inputs):
        // the log of the others stays as small as it was.
        let evidence: [String?] = logged.map { result in
            rule.kind == .slo || rule.kind == .composite ? result.evidence.map { $0.json() } : nil
        }
        try connection.query(
            """
            INSERT INTO rule_evaluations (rule_id, rule_name, group_key, value, samples, outcome, trigger, worker_id,
                                          started_at, duration_ms, evidence)
            SELECT \(ruleID), \(rule.name), g, v, s, o, \(trigger), \(workerID), now(), \(durationMs), e::jsonb
            FROM unnest(\(logged.map(\.groupKey))::text[], \(logged.map(\.value))::float8[], \(logged.map(\.samples))::int[],
                        \(logged.map(\.outcome))::text[], \(evidence)::text[]) AS t(g, v, s, o, e)
            """)
        // Next due: the start of the next interval, aligned to the epoch, so
        // every interval has exactly one scheduled evaluation — sooner when
        // events of the rule's metrics are stamped after this evaluation's
        // now (a sender's clock ahead of the database's; events may be up to
        // 5 minutes ahead): they enter the window then, so the rule is due
        // then (at most once a second), not an interval later.
        try connection.query(
            """
            UPDATE alert_rules
            SET last_evaluated_at = now(), consecutive_errors = 0,
                due_reason = CASE WHEN woken OR ahead < scheduled THEN 'event' ELSE 'schedule' END,
                next_due_at = CASE WHEN woken THEN least(scheduled, now() + interval '1 second')
                                   WHEN ahead IS NULL THEN scheduled
                                   ELSE least(scheduled, greatest(ahead, now() + interval '1 second')) END
            FROM (SELECT next_due_at::text IS DISTINCT FROM \(readDueAt) AS woken,
                         to_timestamp((floor(extract(epoch FROM now()) / interval_seconds) + 1) * interval_seconds) AS scheduled,
                         -- Per name, the first event at or after now: one index probe each.
                         (SELECT min(first.at) FROM unnest(r.metric_names) AS m(name),
                                 LATERAL (SELECT e.occurred_at AS at FROM metric_events e
                                          WHERE e.name = m.name AND e.occurred_at >= now()
                                            AND e.occurred_at < now() + interval '6 minutes'
                                          ORDER BY e.occurred_at LIMIT 1) AS first) AS ahead
                  FROM alert_rules r WHERE id = \(ruleID) FOR UPDATE) AS current
            WHERE id = \(ruleID)
            """)
    }
}

/// One rule's evaluation inside its transaction: the state machine's
/// decision for each group, written.
struct Evaluation {
    let rule: Rule
    let ruleID: Int32
    let now: Date
    let actor: String
    let connection: PostgresConnection
    let transitions: TransitionWriter

    /// Decides and writes every group measured (and every group with an
    /// open alert but no data now).
    func apply(_ measured: inout [String: MeasuredGroup]) throws -> [GroupResult] {
        // Open alerts are locked so a concurrent manual action waits for us.
        var open: [String: OpenAlert] = [:]
        var openGroups: [String: (labels: [String: String], severity: Rule.Severity)] = [:]
        for row in try connection.query(
            """
            SELECT id, group_key, status, started_at, severity, labels::text AS labels
            FROM alerts WHERE rule_id = \(ruleID) AND status <> 'resolved' FOR UPDATE
            """) {
            let key: String = try row.decode("group_key")
            open[key] = OpenAlert(id: try row.decode("id"), status: try row.decode("status"), startedAt: try row.decode("started_at"))
            openGroups[key] = (try EvaluationRepository.labelsJSON(try row.decode("labels")), try row.decode("severity"))
        }
        for (key, group) in openGroups where measured[key] == nil {
            let condition = rule.condition(severity: group.severity)
            measured[key] = MeasuredGroup(labels: group.labels, measurement: RuleMath.empty(condition), condition: condition,
                                          evidence: RuleMath.evidence(rule, labels: group.labels))
        }
        if measured.isEmpty && rule.groupBy.isEmpty && rule.kind != .slo {
            measured[""] = MeasuredGroup(labels: [:], measurement: RuleMath.empty(rule), condition: rule,
                                         evidence: RuleMath.evidence(rule, labels: [:]))
        }
        return try measured.keys.sorted().map { key in
            let group = measured[key]!
            let decision = AlertStateMachine.decide(rule: group.condition, open: open[key], measurement: group.measurement, now: now)
            let (outcome, transition) = try write(decision, groupKey: key, group: group, current: open[key])
            return GroupResult(rule: rule.name, groupKey: key, value: group.measurement.value,
                               samples: group.measurement.samples, outcome: outcome, transition: transition,
                               labels: rule.groupBy.isEmpty ? nil : group.labels, evidence: group.evidence)
        }
    }

    /// Writes what `decision` means; returns the outcome for the log and the
    /// transition made, if any.
    func write(_ decision: AlertDecision, groupKey: String, group: MeasuredGroup,
               current: OpenAlert?) throws -> (EvaluationOutcome, AlertTransition.Kind?) {
        let measurement = group.measurement
        let condition = group.condition
        let noDataOrOK: EvaluationOutcome = measurement.value == nil ? .noData : .ok
        let evidence = group.evidence.map { $0.json() }
        switch decision {
        case .none:
            return (noDataOrOK, nil)
        case .keep:
            guard let current else { return (.ok, nil) }
            try connection.query(
                """
                UPDATE alerts SET value = \(measurement.value), samples = \(measurement.samples), last_evaluated_at = now()
                WHERE id = \(current.id)
                """)
            return (measurement.value == nil ? .noData : EvaluationOutcome(current.status), nil)
        case .open(let status):
            let platform = rule.groupBy.includesPlatform ? group.labels["platform"] : nil
            let labels = try ConfigRepository.json(group.labels)
            let id: Int = try connection.query(
                """
                INSERT INTO alerts (rule_id, rule_name, severity, group_key, platform, labels, status, value, threshold,
                                    comparison, samples, started_at, fired_at)
                VALUES (\(ruleID), \(rule.name), \(condition.severity), \(groupKey), \(platform), \(labels)::jsonb, \(status),
                        \(measurement.value), \(condition.threshold), \(condition.comparison), \(measurement.samples), now(),
                        CASE WHEN \(status) = 'firing' THEN now() END)
                RETURNING id
                """)[0].decode("id")
            let kind: AlertTransition.Kind = status == .firing ? .fired : .pending
            try transitions.record(connection, alertID: id, kind: kind, from: nil, actor: actor, evidence: evidence)
            return (EvaluationOutcome(status), kind)
        case .fire:
            guard let current else { return (.ok, nil) }
            try connection.query(
                """
                UPDATE alerts SET status = 'firing', fired_at = now(), value = \(measurement.value),
                                  samples = \(measurement.samples), last_evaluated_at = now()
                WHERE id = \(current.id)
                """)
            try transitions.record(connection, alertID: current.id, kind: .fired, from: current.status, actor: actor,
                                   evidence: evidence)
            return (.firing, .fired)
        case .resolve(let resolution):
            guard let current else { return (.ok, nil) }
            try connection.query(
                """
                UPDATE alerts SET status = 'resolved', resolved_at = now(), resolution = \(resolution),
                                  value = \(measurement.value), samples = \(measurement.samples), last_evaluated_at = now()
                WHERE id = \(current.id)
                """)
            try transitions.record(connection, alertID: current.id, kind: .resolved, from: current.status, actor: actor,
                                   resolution: resolution, evidence: evidence)
            return (.resolved, .resolved)
        }
    }
}

extension EvaluationOutcome {
    init(_ status: AlertStatus) {
        switch status {
        case .pending: self = .pending
        case .firing: self = .firing
        case .acknowledged: self = .acknowledged
        case .resolved: self = .resolved
        }
    }
}
