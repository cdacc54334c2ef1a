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
                SELECT \(Self.readColumns) FROM alert_rules r WHERE id = \(ruleID) AND enabled
                """).first
            else { return .notDue }
            let read = try ReadRule(row, trigger: trigger)
            guard force || (read.due && read.inputsReady) else { return .notDue }
            var evaluation = Evaluation(
                rule: read.rule, ruleID: ruleID, now: read.now, actor: "worker:" + workerID, connection: connection,
                transitions: TransitionWriter(config: config))
            try evaluation.measure(periodCounts: read.periodCounts)
            if let pause { Self.sleep(pause) }
            let results = try evaluation.apply(open: try Evaluation.openAlerts(connection, ruleIDs: [ruleID])[ruleID] ?? [:])
            let finished: Date = try connection.query("SELECT clock_timestamp() AS t")[0].decode("t")
            let durationMs = finished.timeIntervalSince(read.started) * 1000
            try Self.log([Logged(evaluation: evaluation, results: results, trigger: read.trigger, durationMs: durationMs,
                                 readDueAt: read.readDueAt)],
                         workerID: workerID, connection)
            return .evaluated(results, durationMs: durationMs, at: read.now)
        }
    }

    /// The most rules `evaluateBatch` takes at once.
    public static let batchLimit = 50

    /// Evaluates the due rules among `ruleIDs` (at most `batchLimit`, none a
    /// composite: those read their inputs' committed states) in one
    /// transaction, with the guarantees of `evaluate` kept per rule: each
    /// rule's advisory lock is tried (a rule another worker holds is
    /// `.busy`), its due time re-checked after the lock (`.notDue`), its
    /// groups measured and decided, and its log and next due time written;
    /// the shared statements — locks, the rules' rows, their open alerts,
    /// the log and the due times — run once for the batch instead of once per
    /// rule. A rule's `durationMs` is its own statements' time plus an equal
    /// share of the shared ones. Any failure rolls the whole batch back,
    /// leaving every rule due; the caller then evaluates them one at a time,
    /// which records a failing rule's failure against that rule alone.
    ///
    /// With `force` (manual checks), as `evaluate(force:)`: the due times
    /// are not checked and the locks are waited for, taken in id order (two
    /// forced batches cannot deadlock; every other evaluation only tries).
    public func evaluateBatch(ruleIDs: [Int32], trigger: EvaluationTrigger, force: Bool = false, workerID: String,
                              pause: Duration? = nil) async throws -> [Int32: Outcome] {
        precondition(ruleIDs.count <= Self.batchLimit, "a batch holds at most \(Self.batchLimit) rules")
        let config = self.config
        let ids = Array(Set(ruleIDs)).sorted()
        return try await database.transaction { connection in
            try connection.query("SELECT set_config('statement_timeout', \(Self.statementTimeout), true)")
            let locked: [Int32]
            if force {
                try connection.query(
                    """
                    SELECT count(pg_advisory_xact_lock(\(LockNamespace.ruleEvaluation)::int4, id))
                    FROM unnest(\(ids)::int4[]) AS t(id)
                    """)
                locked = ids
            } else {
                locked = try connection.query(
                    """
                    SELECT array_agg(id ORDER BY id) AS ids FROM unnest(\(ids)::int4[]) AS t(id)
                    WHERE pg_try_advisory_xact_lock(\(LockNamespace.ruleEvaluation)::int4, id)
                    """)[0].decode("ids", as: [Int32]?.self) ?? []
            }
            var outcomes = Dictionary(uniqueKeysWithValues: ids.map { ($0, Outcome.busy) })
            for id in locked { outcomes[id] = .notDue }
            let rows = try connection.query(
                """
                SELECT \(Self.readColumns) FROM alert_rules r
                WHERE id = ANY(\(locked)::int4[]) AND enabled AND cardinality(input_rules) = 0
                  AND (\(force) OR next_due_at <= now())
                ORDER BY id
                """)
            let started = ContinuousClock.now
            var evaluations: [(read: ReadRule, evaluation: Evaluation, own: Duration)] = []
            for row in rows {
                let read = try ReadRule(row, trigger: trigger)
                guard force || read.due else { continue }
                let begin = ContinuousClock.now
                var evaluation = Evaluation(
                    rule: read.rule, ruleID: read.ruleID, now: read.now, actor: "worker:" + workerID, connection: connection,
                    transitions: TransitionWriter(config: config))
                try evaluation.measure(periodCounts: read.periodCounts)
                evaluations.append((read, evaluation, ContinuousClock.now - begin))
            }
            guard !evaluations.isEmpty else { return outcomes }
            if let pause { Self.sleep(pause) }
            let open = try Evaluation.openAlerts(connection, ruleIDs: evaluations.map(\.read.ruleID))
            var logged: [Logged] = []
            var own = Duration.zero
            for (read, evaluation, measuring) in evaluations {
                let begin = ContinuousClock.now
                let results = try evaluation.apply(open: open[read.ruleID] ?? [:])
                let spent = measuring + (ContinuousClock.now - begin)
                own += spent
                logged.append(Logged(evaluation: evaluation, results: results, trigger: read.trigger,
                                     durationMs: Self.milliseconds(spent), readDueAt: read.readDueAt))
            }
            let shared = Self.milliseconds(ContinuousClock.now - started - own) / Double(logged.count)
            for i in logged.indices { logged[i].durationMs += shared }
            try Self.log(logged, workerID: workerID, connection)
            for entry in logged {
                outcomes[entry.evaluation.ruleID] = .evaluated(entry.results, durationMs: entry.durationMs, at: entry.evaluation.now)
            }
            return outcomes
        }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    static func sleep(_ pause: Duration) {
        Thread.sleep(forTimeInterval: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18)
    }

    /// What an evaluation reads of its rule (alias `r`), by the database
    /// clock.
    static let readColumns: PostgresQuery = """
        \(RuleRepository.columns), next_due_at <= now() AS due, due_reason, now() AS now,
        next_due_at::text AS read_due_at, clock_timestamp() AS started, \(RuleRepository.inputsReady) AS inputs_ready,
        CASE WHEN slo_period_counted_at > now() - \(Self.periodCountsAge)::interval THEN slo_period_counts::text END AS period_counts
        """

    /// One rule as its evaluation read it.
    struct ReadRule {
        let ruleID: Int32
        let rule: Rule
        let due: Bool
        /// A composite waits for its inputs due now: it reads their states
        /// once they have been evaluated for this interval.
        let inputsReady: Bool
        let trigger: EvaluationTrigger
        let now: Date
        let started: Date
        /// The due time read, as text, so that the comparison in `log` is exact.
        let readDueAt: String
        let periodCounts: String?

        init(_ row: PostgresRow, trigger: EvaluationTrigger) throws {
            let stored = try RuleRepository.decode(row)
            ruleID = stored.id
            rule = stored.rule
            due = try row.decode("due")
            inputsReady = try row.decode("inputs_ready")
            // A due time pulled forward by arriving events is an early
            // evaluation, not the interval's scheduled one.
            let reason = try row.decode("due_reason", as: DueReason.self)
            self.trigger = trigger == .schedule && reason == .event ? .event : trigger
            now = try row.decode("now")
            started = try row.decode("started")
            readDueAt = try row.decode("read_due_at")
            periodCounts = try row.decode("period_counts")
        }
    }

    /// One rule's evaluation, for the log.
    struct Logged {
        let evaluation: Evaluation
        let results: [GroupResult]
        let trigger: EvaluationTrigger
        var durationMs: Double
        let readDueAt: String
    }

    /// The evaluation log (one row per group, or one row without a group
    /// when a rule had none to evaluate) and the next due times, for every
    /// rule evaluated in this transaction, in two statements. started_at
    /// is the transaction's now(), the clock the due check and the next due
    /// time use, so each evaluation falls in its own interval.
    ///
    /// Events that arrive while an evaluation runs touch the rule's due
    /// time (`RuleRepository.wake`; nothing else changes it while this
    /// evaluation holds the rule's lock) after this transaction read it:
    /// their wake is kept — the rule is due again a second from now, as a wake after this
    /// evaluation would have made it — instead of being overwritten by the
    /// next interval's due time, which would leave those events unread for up
    /// to a whole interval. `readDueAt` is the due time the evaluation read.
    ///
    /// The rules' rows are locked here only, in id order (as `wake` locks
    /// them), so a batch and a wake never deadlock.
    static func log(_ entries: [Logged], workerID: String, _ connection: PostgresConnection) throws {
        var ruleIDs: [Int32] = [], names: [String] = [], groups: [String?] = [], values: [Double?] = []
        var samples: [Int] = [], outcomes: [String] = [], triggers: [String] = [], durations: [Double] = []
        var evidence: [String?] = []
        for entry in entries {
            let rule = entry.evaluation.rule
            let logged = entry.results.isEmpty
                ? [GroupResult(rule: rule.name, groupKey: nil, value: nil, samples: 0, outcome: .noData)] : entry.results
            for result in logged {
                ruleIDs.append(entry.evaluation.ruleID)
                names.append(rule.name)
                groups.append(result.groupKey)
                values.append(result.value)
                samples.append(result.samples)
                outcomes.append(result.outcome.rawValue)
                triggers.append(entry.trigger.rawValue)
                durations.append(entry.durationMs)
                // Only SLO and composite rules log their evidence (burn rates, inputs):
                // the log of the others stays as small as it was.
                evidence.append(rule.kind == .slo || rule.kind == .composite ? result.evidence.map { $0.json() } : nil)
            }
        }
        try connection.query(
            """
            INSERT INTO rule_evaluations (rule_id, rule_name, group_key, value, samples, outcome, trigger, worker_id,
                                          started_at, duration_ms, evidence)
            SELECT r, n, g, v, s, o, t, \(workerID), now(), d, e::jsonb
            FROM unnest(\(ruleIDs)::int4[], \(names)::text[], \(groups)::text[], \(values)::float8[], \(samples)::int[],
                        \(outcomes)::text[], \(triggers)::text[], \(durations)::float8[], \(evidence)::text[])
                 AS t(r, n, g, v, s, o, t, d, e)
            """)
        // Next due: the start of the next interval, aligned to the epoch, so
        // every interval has exactly one scheduled evaluation — sooner when
        // events of the rule's metrics are stamped after this evaluation's
        // now (a sender's clock ahead of the database's; events may be up to
        // 5 minutes ahead): they enter the window then, so the rule is due
        // then (at most once a second), not an interval later. An SLO rule
        // that counted its period stores the counts.
        try connection.query(
            """
            UPDATE alert_rules AS target
            SET last_evaluated_at = now(), consecutive_errors = 0,
                due_reason = CASE WHEN woken OR ahead < scheduled THEN 'event' ELSE 'schedule' END,
                next_due_at = CASE WHEN woken THEN least(scheduled, now() + interval '1 second')
                                   WHEN ahead IS NULL THEN scheduled
                                   ELSE least(scheduled, greatest(ahead, now() + interval '1 second')) END,
                slo_period_counts = coalesce(counts::jsonb, target.slo_period_counts),
                slo_period_counted_at = CASE WHEN counts IS NULL THEN target.slo_period_counted_at ELSE now() END
            FROM (SELECT r.id, r.next_due_at::text IS DISTINCT FROM t.read AS woken, t.counts,
                         to_timestamp((floor(extract(epoch FROM now()) / r.interval_seconds) + 1) * r.interval_seconds) AS scheduled,
                         -- Per name, the first event at or after now: one index probe each.
                         (SELECT min(first.at) FROM unnest(r.metric_names) AS m(name),
                                 LATERAL (SELECT e.occurred_at AS at FROM metric_events e
                                          WHERE e.name = m.name AND e.occurred_at >= now()
                                            AND e.occurred_at < now() + interval '6 minutes'
                                          ORDER BY e.occurred_at LIMIT 1) AS first) AS ahead
                  FROM unnest(\(entries.map(\.evaluation.ruleID))::int4[], \(entries.map(\.readDueAt))::text[],
                              \(entries.map(\.evaluation.periodCountsToStore))::text[]) AS t(id, read, counts)
                  JOIN alert_rules r ON r.id = t.id
                  ORDER BY r.id FOR UPDATE OF r) AS current
            WHERE target.id = current.id
            """)
    }
}

/// One rule's evaluation inside its transaction: its groups measured, the
/// state machine's decision for each, written.
struct Evaluation {
    let rule: Rule
    let ruleID: Int32
    let now: Date
    let actor: String
    let connection: PostgresConnection
    let transitions: TransitionWriter
    private(set) var measured: [String: MeasuredGroup] = [:]
    /// An SLO rule's period counts, counted by this evaluation (JSON), for
    /// `EvaluationRepository.log` to store.
    private(set) var periodCountsToStore: String?

    init(rule: Rule, ruleID: Int32, now: Date, actor: String, connection: PostgresConnection, transitions: TransitionWriter) {
        self.rule = rule
        self.ruleID = ruleID
        self.now = now
        self.actor = actor
        self.connection = connection
        self.transitions = transitions
    }

    /// Measures every group with data. `periodCounts`: an SLO rule's stored
    /// period counts, when recent enough to reuse.
    mutating func measure(periodCounts: String?) throws {
        (measured, periodCountsToStore) = try EvaluationRepository.measure(rule, connection, now: now, periodCounts: periodCounts)
    }

    /// An open alert as an evaluation reads it.
    struct Open {
        var alert: OpenAlert
        var labels: [String: String]
        var severity: Rule.Severity
    }

    /// The open alerts of `ruleIDs`, per rule and group key, locked (in id
    /// order) so that a concurrent manual action waits for the evaluation.
    static func openAlerts(_ connection: PostgresConnection, ruleIDs: [Int32]) throws -> [Int32: [String: Open]] {
        var out: [Int32: [String: Open]] = [:]
        for row in try connection.query(
            """
            SELECT id, rule_id, group_key, status, started_at, severity, labels::text AS labels
            FROM alerts WHERE rule_id = ANY(\(ruleIDs)::int4[]) AND status <> 'resolved' ORDER BY id FOR UPDATE
            """) {
            let alert = OpenAlert(id: try row.decode("id"), status: try row.decode("status"), startedAt: try row.decode("started_at"))
            out[try row.decode("rule_id"), default: [:]][try row.decode("group_key")] = Open(
                alert: alert, labels: try EvaluationRepository.labelsJSON(try row.decode("labels")), severity: try row.decode("severity"))
        }
        return out
    }

    /// Decides and writes every group measured (and every group with an
    /// open alert but no data now); `open` is the rule's open alerts.
    func apply(open: [String: Open]) throws -> [GroupResult] {
        var measured = self.measured
        for (key, group) in open where measured[key] == nil {
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
            let current = open[key]?.alert
            let decision = AlertStateMachine.decide(rule: group.condition, open: current, measurement: group.measurement, now: now)
            let (outcome, transition) = try write(decision, groupKey: key, group: group, current: current)
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
