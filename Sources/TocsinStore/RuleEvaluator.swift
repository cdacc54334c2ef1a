import Foundation
import Logging
import PostgresClient
import Synchronization
import TocsinCore

/// Evaluates one rule in one transaction.
///
/// The transaction takes `pg_try_advisory_xact_lock(ruleEvaluation, rule id)`
/// and re-checks, by the database clock, that the rule is still due; then it
/// measures every group in SQL, decides each group's transition with the
/// pure state machine, writes the alerts, their transitions (and
/// notification rows), the evaluation log and the rule's next due time, and
/// commits them together. A worker killed half-way leaves nothing: the
/// server rolls the transaction back and releases the lock, and the rule is
/// still due for the next worker.
public struct RuleEvaluator: Sendable {
    public enum Trigger: String, Sendable, Codable {
        case schedule, event, manual
    }

    /// One group's result.
    public struct GroupResult: Sendable, Equatable, Codable {
        public var rule: String
        public var groupKey: String?
        public var value: Double?
        public var samples: Int
        /// ok, pending, firing, acknowledged, resolved or no_data.
        public var outcome: String

        enum CodingKeys: String, CodingKey {
            case rule, value, samples, outcome
            case groupKey = "group_key"
        }

        public init(rule: String, groupKey: String?, value: Double?, samples: Int, outcome: String) {
            self.rule = rule
            self.groupKey = groupKey
            self.value = value
            self.samples = samples
            self.outcome = outcome
        }

        /// Absent values as explicit nulls, like every other API body.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(rule, forKey: .rule)
            try c.encode(groupKey, forKey: .groupKey)
            try c.encode(value, forKey: .value)
            try c.encode(samples, forKey: .samples)
            try c.encode(outcome, forKey: .outcome)
        }
    }

    public enum Outcome: Sendable, Equatable {
        case evaluated([GroupResult])
        /// Another worker holds the rule's lock.
        case busy
        /// Already evaluated for this interval (or disabled).
        case notDue
    }

    public let pool: PostgresPool
    public let workerID: String
    public let hooks: TransitionHooks
    /// Test-only: sleep this long inside the transaction after measuring, so
    /// a test can kill the process mid-evaluation.
    public let pauseInsideTransaction: Duration?
    /// This process's evaluation counters, written to `workers` with the
    /// heartbeat (not in every evaluation: concurrent evaluations would
    /// queue on the worker's row).
    public let counters = EvaluationCounters()

    public init(pool: PostgresPool, workerID: String, hooks: TransitionHooks = TransitionHooks(),
                pauseInsideTransaction: Duration? = nil) {
        self.pool = pool
        self.workerID = workerID
        self.hooks = hooks
        self.pauseInsideTransaction = pauseInsideTransaction
    }

    /// Evaluates rule `id`. With `force`, the due time is not checked and
    /// the lock is waited for (manual checks).
    public func evaluate(ruleID: Int32, trigger: Trigger, force: Bool = false) async throws -> Outcome {
        let started = ContinuousClock.now
        do {
            let outcome = try await evaluateOnce(ruleID: ruleID, trigger: trigger, force: force)
            switch outcome {
            case .evaluated:
                let elapsed = ContinuousClock.now - started
                Telemetry.evaluation(outcome: "evaluated",
                                     seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            case .busy: Telemetry.evaluation(outcome: "busy")
            case .notDue: Telemetry.evaluation(outcome: "not_due")
            }
            return outcome
        } catch {
            Telemetry.evaluation(outcome: "error")
            throw error
        }
    }

    private func evaluateOnce(ruleID: Int32, trigger: Trigger, force: Bool) async throws -> Outcome {
        let workerID = self.workerID, hooks = self.hooks, pause = self.pauseInsideTransaction, counters = self.counters
        return try await pool.withTransaction { connection in
            if force {
                try connection.advisoryTransactionLock(namespace: LockNamespace.ruleEvaluation, id: ruleID)
            } else if try !connection.tryAdvisoryTransactionLock(namespace: LockNamespace.ruleEvaluation, id: ruleID) {
                return .busy
            }
            guard let ruleRow = try connection.query(
                """
                SELECT \(RuleStore.columns), next_due_at <= now() AS due, due_reason,
                       extract(epoch FROM now())::float8 AS now, extract(epoch FROM clock_timestamp())::float8 AS started
                FROM alert_rules WHERE id = $1 AND enabled
                """, [ruleID]).first
            else { return .notDue }
            let due: Bool = try ruleRow.decode("due")
            guard force || due else { return .notDue }
            // A due time pulled forward by arriving events is an early
            // evaluation, not the interval's scheduled one.
            var trigger = trigger
            if trigger == .schedule, try ruleRow.decode("due_reason", as: String.self) == "event" { trigger = .event }
            let stored = try RuleStore.decode(ruleRow)
            let rule = stored.rule
            let now: Double = try ruleRow.decode("now")
            let started: Double = try ruleRow.decode("started")

            var measured = try Self.measure(rule, connection, now: now)
            if let pause { Thread.sleep(forTimeInterval: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18) }

            // Open alerts are locked so a concurrent manual action waits for us.
            var open: [String: OpenAlert] = [:]
            for row in try connection.query(
                """
                SELECT id, group_key, status, extract(epoch FROM started_at)::float8 AS started_at
                FROM alerts WHERE rule_id = $1 AND status <> 'resolved' FOR UPDATE
                """, [ruleID]) {
                let status = AlertStatus(rawValue: try row.decode("status")) ?? .firing
                open[try row.decode("group_key")] = OpenAlert(id: try row.decode("id"), status: status,
                                                              startedAt: try row.decode("started_at"))
            }
            for key in open.keys where measured[key] == nil {
                measured[key] = RuleMath.empty(rule)
            }
            if measured.isEmpty && rule.groupBy == .none {
                measured[""] = RuleMath.empty(rule)
            }

            var results: [GroupResult] = []
            var fired = 0
            for key in measured.keys.sorted() {
                let measurement = measured[key]!
                let current = open[key]
                let decision = AlertStateMachine.decide(rule: rule, open: current, measurement: measurement, now: now)
                let outcome = try apply(decision, rule: rule, ruleID: ruleID, groupKey: key, current: current,
                                        measurement: measurement, connection: connection, workerID: workerID, hooks: hooks)
                if case .open(.firing) = decision { fired += 1 }
                if case .fire = decision { fired += 1 }
                results.append(GroupResult(rule: rule.name, groupKey: key, value: measurement.value,
                                           samples: measurement.samples, outcome: outcome))
            }
            let finished = try connection.query("SELECT extract(epoch FROM clock_timestamp())::float8 AS t")[0]
                .decode("t", as: Double.self)
            let durationMs = (finished - started) * 1000
            // The evaluation log: one row per group, or one row without a
            // group when the rule had none to evaluate. started_at is the
            // transaction's now(), the clock the due check and the next due
            // time use, so each evaluation falls in its own interval.
            let logged = results.isEmpty
                ? [GroupResult(rule: rule.name, groupKey: nil, value: nil, samples: 0, outcome: "no_data")] : results
            try connection.query(
                """
                INSERT INTO rule_evaluations (rule_id, rule_name, group_key, value, samples, outcome, trigger, worker_id,
                                              started_at, duration_ms)
                SELECT $1, $2, g, v, s, o, $7, $8, now(), $9
                FROM unnest($3::text[], $4::float8[], $5::int[], $6::text[]) AS t(g, v, s, o)
                """,
                [ruleID, rule.name, logged.map(\.groupKey), logged.map(\.value), logged.map(\.samples),
                 logged.map(\.outcome), trigger.rawValue, workerID, durationMs])
            // Next due: the start of the next interval, aligned to the epoch, so
            // every interval has exactly one scheduled evaluation.
            try connection.query(
                """
                UPDATE alert_rules
                SET last_evaluated_at = now(), due_reason = 'schedule',
                    next_due_at = to_timestamp((floor(extract(epoch FROM now()) / interval_seconds) + 1) * interval_seconds)
                WHERE id = $1
                """, [ruleID])
            counters.record(durationMs: durationMs, fired: fired, at: now)
            return .evaluated(results)
        }
    }

    /// Writes what `decision` means and returns the outcome for the log.
    private func apply(
        _ decision: AlertDecision, rule: Rule, ruleID: Int32, groupKey: String, current: OpenAlert?,
        measurement: RuleMeasurement, connection: PostgresConnection, workerID: String, hooks: TransitionHooks
    ) throws -> String {
        let actor = "worker:" + workerID
        switch decision {
        case .none:
            return measurement.value == nil ? "no_data" : "ok"
        case .keep:
            guard let current else { return "ok" }
            try connection.query(
                "UPDATE alerts SET value = $2, samples = $3, last_evaluated_at = now() WHERE id = $1",
                [current.id, measurement.value, measurement.samples])
            return measurement.value == nil ? "no_data" : current.status.rawValue
        case .open(let status):
            let row = try connection.query(
                """
                INSERT INTO alerts (rule_id, rule_name, severity, group_key, platform, status, value, threshold, comparison,
                                    samples, started_at, fired_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), CASE WHEN $6 = 'firing' THEN now() END)
                RETURNING id
                """,
                [ruleID, rule.name, rule.severity.rawValue, groupKey,
                 rule.groupBy == .platform && !groupKey.isEmpty ? groupKey : nil, status.rawValue, measurement.value,
                 rule.threshold, rule.comparison.rawValue, measurement.samples])
            let id: Int = try row[0].decode("id")
            try transition(id, status == .firing ? .fired : .pending, from: nil, actor: actor, resolution: nil,
                           connection: connection, hooks: hooks)
            return status.rawValue
        case .fire:
            guard let current else { return "ok" }
            try connection.query(
                """
                UPDATE alerts SET status = 'firing', fired_at = now(), value = $2, samples = $3, last_evaluated_at = now()
                WHERE id = $1
                """, [current.id, measurement.value, measurement.samples])
            try transition(current.id, .fired, from: current.status, actor: actor, resolution: nil,
                           connection: connection, hooks: hooks)
            return "firing"
        case .resolve(let resolution):
            guard let current else { return "ok" }
            try connection.query(
                """
                UPDATE alerts SET status = 'resolved', resolved_at = now(), resolution = $2, value = $3, samples = $4,
                                  last_evaluated_at = now()
                WHERE id = $1
                """, [current.id, resolution.rawValue, measurement.value, measurement.samples])
            try transition(current.id, .resolved, from: current.status, actor: actor, resolution: resolution,
                           connection: connection, hooks: hooks)
            return "resolved"
        }
    }

    private func transition(
        _ alertID: Int, _ kind: AlertTransition.Kind, from: AlertStatus?, actor: String, resolution: Resolution?,
        connection: PostgresConnection, hooks: TransitionHooks
    ) throws {
        let transition = try TransitionWriter.record(connection, alertID: alertID, kind: kind, from: from, actor: actor,
                                                     note: nil, resolution: resolution)
        let row = try connection.query(
            "SELECT \(AlertStore.columns) FROM alerts a JOIN alert_rules r ON r.id = a.rule_id WHERE a.id = $1", [alertID])[0]
        try hooks.afterTransition(connection, try AlertStore.decode(row), transition)
    }

    // MARK: - RuleMeasurement SQL

    /// Measures every group with data, by the database clock (`now()`).
    /// Only fixed SQL fragments vary with the rule; names and numbers are
    /// parameters.
    ///
    /// The window's bounds are parameters computed from the transaction's
    /// `now()`: with literal bounds the planner prunes partitions at plan
    /// time instead of planning every one.
    static func measure(_ rule: Rule, _ connection: PostgresConnection, now: Double) throws -> [String: RuleMeasurement] {
        let until = Date(timeIntervalSince1970: now)
        let since = Date(timeIntervalSince1970: now - Double(rule.lastEvents != nil ? rule.lookbackSeconds : (rule.windowSeconds ?? 900)))
        let group = rule.groupBy == .platform ? "coalesce(platform, '')" : "''::text"
        var out: [String: RuleMeasurement] = [:]
        switch rule.kind {
        case .count:
            let rows = try connection.query(
                """
                SELECT \(group) AS g, count(*) AS n FROM metric_events
                WHERE name = $1 AND occurred_at >= $2 AND occurred_at < $3
                GROUP BY 1
                """, [rule.metric ?? "", since, until])
            for row in rows {
                let n: Int = try row.decode("n")
                out[try row.decode("g")] = RuleMeasurement(value: Double(n), samples: n)
            }
        case .ratio:
            let rows = try connection.query(
                """
                SELECT \(group) AS g,
                       count(*) FILTER (WHERE name = ANY($1::text[])) AS top,
                       count(*) FILTER (WHERE name = ANY($2::text[])) AS bottom
                FROM metric_events
                WHERE name = ANY($3::text[]) AND occurred_at >= $4 AND occurred_at < $5
                GROUP BY 1
                """, [rule.numerator, rule.denominator, rule.metricNames, since, until])
            for row in rows {
                out[try row.decode("g")] = RuleMath.ratio(numerator: try row.decode("top"), denominator: try row.decode("bottom"),
                                                          minSamples: rule.minSamples)
            }
        case .aggregate:
            let function: String = switch rule.function ?? .avg {
            case .avg: "avg(value)"
            case .sum: "sum(value)"
            case .max: "max(value)"
            case .min: "min(value)"
            case .p95: "percentile_cont(0.95) WITHIN GROUP (ORDER BY value)"
            }
            let rows: PostgresRows
            if let last = rule.lastEvents {
                if rule.groupBy == .none {
                    rows = try connection.query(
                        """
                        SELECT ''::text AS g, count(*) AS n, \(function) AS v FROM (
                            SELECT value FROM metric_events
                            WHERE name = $1 AND occurred_at >= $2 AND occurred_at < $3
                            ORDER BY occurred_at DESC LIMIT $4) recent
                        HAVING count(*) > 0
                        """, [rule.metric ?? "", since, until, last])
                } else {
                    rows = try connection.query(
                        """
                        SELECT g, count(*) AS n, \(function) AS v FROM (
                            SELECT \(group) AS g, value,
                                   row_number() OVER (PARTITION BY \(group) ORDER BY occurred_at DESC) AS rn
                            FROM metric_events
                            WHERE name = $1 AND occurred_at >= $2 AND occurred_at < $3) recent
                        WHERE rn <= $4 GROUP BY g
                        """, [rule.metric ?? "", since, until, last])
                }
            } else {
                rows = try connection.query(
                    """
                    SELECT \(group) AS g, count(*) AS n, \(function) AS v FROM metric_events
                    WHERE name = $1 AND occurred_at >= $2 AND occurred_at < $3
                    GROUP BY 1
                    """, [rule.metric ?? "", since, until])
            }
            for row in rows {
                let n: Int = try row.decode("n")
                let value: Double? = try row.decode("v")
                out[try row.decode("g")] = n >= rule.minSamples ? RuleMeasurement(value: value, samples: n)
                    : RuleMeasurement(value: nil, samples: n)
            }
        }
        return out
    }
}

/// Evaluations done and alerts fired since the last heartbeat.
public final class EvaluationCounters: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var evaluations = 0
        public var alertsFired = 0
        public var lastCheckAt: Double?
        public var lastCheckDurationMs: Double?
        public init() {}
    }

    public init() {}

    private let state = Mutex(Snapshot())

    func record(durationMs: Double, fired: Int, at time: Double) {
        state.withLock {
            $0.evaluations += 1
            $0.alertsFired += fired
            $0.lastCheckAt = time
            $0.lastCheckDurationMs = durationMs
        }
    }

    /// Takes what was counted since the last call.
    public func drain() -> Snapshot {
        state.withLock { s in
            defer { s.evaluations = 0; s.alertsFired = 0 }
            return s
        }
    }

    /// Puts back counts that could not be written.
    public func restore(_ snapshot: Snapshot) {
        state.withLock {
            $0.evaluations += snapshot.evaluations
            $0.alertsFired += snapshot.alertsFired
        }
    }
}
