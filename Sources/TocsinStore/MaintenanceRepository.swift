import Foundation
import PostgresClient

/// Housekeeping that one worker at a time does: daily partitions of
/// `metric_events` and `rule_evaluations` from the retention limit to a few
/// days ahead (rows waiting in a default partition move into their day),
/// dropping partitions past their retention, and deleting what the other
/// tables keep no longer.
///
/// Nothing here may hold up ingestion or evaluation. Every step is its own
/// short transaction under a short `lock_timeout`: creating or dropping a
/// partition needs an ACCESS EXCLUSIVE lock on the table, and a request for
/// it that waits behind a long query would queue every insert behind
/// itself. When the lock is not granted in time the step gives way, is
/// reported as deferred, and runs at the next round. Rows are deleted in
/// batches (oldest first, through an index), one transaction each, so no
/// delete holds row locks or bloats the WAL for long. Partitions are dropped
/// one per transaction: `DETACH … CONCURRENTLY` would need a weaker lock,
/// but PostgreSQL refuses it on tables with a default partition, which
/// these keep for rows of days whose partition does not exist yet.
public struct MaintenanceRepository: Sendable {
    let database: Database

    /// How long each table's rows are kept.
    public struct Policy: Sendable, Equatable {
        public var metricDays: Int
        public var evaluationDays: Int
        public var alertDays: Int
        public var notificationDays: Int
        /// Partitions created ahead of today.
        public var daysAhead = 3
        /// Rows deleted per transaction, and batches per table per round
        /// (what is left waits for the next round).
        public var batchSize = 1000
        public var maxBatches = 100
        /// How long a step waits for a table lock before giving way.
        public var lockTimeout: Duration = .milliseconds(500)

        public init(metricDays: Int = 30, evaluationDays: Int = 30, alertDays: Int = 400, notificationDays: Int = 30) {
            self.metricDays = metricDays
            self.evaluationDays = evaluationDays
            self.alertDays = alertDays
            self.notificationDays = notificationDays
        }
    }

    public struct Report: Sendable, Equatable {
        public var partitionsCreated = 0
        public var partitionsDropped = 0
        /// Rows deleted, by table.
        public var rowsDeleted: [String: Int] = [:]
        /// `metric_rollups` rows merged into their hour's shard 0.
        public var rollupRowsMerged = 0
        /// Steps that gave way to a lock held by someone else (run next round).
        public var deferred: [String] = []
        /// False when another worker was doing the work.
        public var ran = false

        public var rowsPruned: Int { rowsDeleted.values.reduce(0, +) }
    }

    /// The advisory lock ids in the partitions namespace: one for partition
    /// work, one for row deletion, so two workers never do the same step.
    enum Step: Int32 { case partitions = 0, rows = 1, rollups = 2 }

    public func run(_ policy: Policy) async throws -> Report {
        var report = Report()
        let partitioned: [(table: String, column: String, days: Int)] = [
            ("metric_events", "occurred_at", policy.metricDays), ("rule_evaluations", "started_at", policy.evaluationDays),
        ]
        for (table, column, days) in partitioned {
            try await maintainPartitions(table: table, column: column, days: days, policy: policy, report: &report)
        }
        // Past hours' rollup shards merged, so reads of them read one row
        // per hour, name and platform.
        for _ in 0..<policy.maxBatches {
            guard let merged = try await step(.rollups, "compact metric_rollups", policy, &report, {
                try MetricEventRepository.compactRollups(hours: 6, connection: $0)
            }), merged > 0 else { break }
            report.rollupRowsMerged += merged
        }
        for target in deletions(policy) {
            var batches = 0
            while batches < policy.maxBatches {
                batches += 1
                guard let deleted = try await step(.rows, "delete from \(target.table)", policy, &report, target.statement)
                else { break }
                report.rowsDeleted[target.table, default: 0] += deleted
                if deleted < policy.batchSize { break }
            }
        }
        return report
    }

    private func maintainPartitions(table: String, column: String, days: Int, policy: Policy,
                                    report: inout Report) async throws {
        let cutoff: PostgresQuery = "(now() AT TIME ZONE 'UTC')::date - \(days)::int"
        let created = try await step(.partitions, "create \(table) partitions", policy, &report) { connection in
            try connection.query(
                """
                SELECT tocsin_ensure_partitions(\(table), \(column), \(cutoff),
                                                (now() AT TIME ZONE 'UTC')::date + \(policy.daysAhead)::int) AS n
                """)[0].decode("n", as: Int.self)
        }
        report.partitionsCreated += created ?? 0
        while let dropped = try await step(.partitions, "drop \(table) partitions", policy, &report, { connection in
            try connection.query("SELECT tocsin_drop_one_partition(\(table), \(cutoff)) AS p")[0].decode("p", as: String?.self)
        }), dropped != nil {
            report.partitionsDropped += 1
        }
        // Old rows that landed in the default partition.
        let defaultPartition = PostgresQuery(unsafeSQL: table + "_default")
        let columnName = PostgresQuery(unsafeSQL: column)
        if let deleted = try await step(.partitions, "delete from \(table)_default", policy, &report, { connection in
            try connection.query(
                """
                DELETE FROM \(defaultPartition) WHERE \(columnName) < (\(cutoff))::timestamp AT TIME ZONE 'UTC'
                """).affectedRows
        }), deleted > 0 {
            report.rowsDeleted[table, default: 0] += deleted
        }
    }

    /// One step in its own transaction: the step's advisory lock (nil when
    /// another worker holds it) and the lock timeout; a lock not granted in
    /// time defers the step (nil).
    private func step<T: Sendable>(_ lock: Step, _ name: String, _ policy: Policy, _ report: inout Report,
                                   _ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T? {
        let timeoutMs = max(1, Int(policy.lockTimeout.components.seconds * 1000
            + policy.lockTimeout.components.attoseconds / 1_000_000_000_000_000))
        do {
            let result: T? = try await database.transaction { connection in
                guard try connection.tryAdvisoryTransactionLock(namespace: LockNamespace.partitions, id: lock.rawValue) else {
                    return nil
                }
                try connection.query(
                    """
                    SELECT set_config('lock_timeout', \("\(timeoutMs)ms"), true),
                           set_config('statement_timeout', '60s', true)
                    """)
                return try body(connection)
            }
            if result != nil { report.ran = true }
            return result
        } catch let error as PostgresError where error.sqlState == "55P03" {
            report.deferred.append(name)
            return nil
        }
    }

    struct Deletion {
        var table: String
        var statement: @Sendable (PostgresConnection) throws -> Int
    }

    /// What is deleted, oldest first, `batchSize` rows per statement.
    func deletions(_ policy: Policy) -> [Deletion] {
        let batch = policy.batchSize
        func byCtid(_ table: String, _ condition: PostgresQuery) -> Deletion {
            let name = PostgresQuery(unsafeSQL: table)
            return Deletion(table: table) { connection in
                try connection.query(
                    "DELETE FROM \(name) WHERE ctid = ANY (ARRAY(SELECT ctid FROM \(name) WHERE \(condition) LIMIT \(batch)))"
                ).affectedRows
            }
        }
        return [
            byCtid("metric_rollups",
                   "hour < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => \(policy.metricDays))"),
            byCtid("ingest_idempotency", "created_at < now() - interval '24 hours'"),
            byCtid("check_requests", "requested_at < now() - interval '1 day'"),
            byCtid("workers", "last_heartbeat < now() - interval '1 day'"),
            byCtid("dashboard_sessions", "expires_at < now()"),
            // Groups left without alerts (their alerts were deleted with
            // retention) and with nothing due. A transition that is adding an
            // alert holds the row, so its new version is not the one deleted.
            byCtid("notification_groups",
                   "next_flush_at IS NULL AND NOT EXISTS (SELECT 1 FROM notification_group_alerts m WHERE m.group_id = notification_groups.id)"),
            Deletion(table: "notifications") { connection in
                try connection.query(
                    """
                    DELETE FROM notifications WHERE id = ANY (ARRAY(
                        SELECT id FROM notifications
                        WHERE status IN ('sent', 'dead', 'dropped')
                          AND updated_at < now() - make_interval(days => \(policy.notificationDays))
                        ORDER BY updated_at LIMIT \(batch)))
                    """).affectedRows
            },
            // A resolved alert goes with its transitions and notifications, in
            // one statement (the foreign keys are checked at its end).
            Deletion(table: "alerts") { connection in
                try connection.query(
                    """
                    WITH doomed AS (
                        SELECT id FROM alerts
                        WHERE status = 'resolved' AND resolved_at < now() - make_interval(days => \(policy.alertDays))
                        ORDER BY resolved_at LIMIT \(batch) FOR UPDATE SKIP LOCKED
                    ), notifications_gone AS (
                        DELETE FROM notifications WHERE alert_id IN (SELECT id FROM doomed)
                    ), events_gone AS (
                        DELETE FROM alert_events WHERE alert_id IN (SELECT id FROM doomed)
                    )
                    DELETE FROM alerts WHERE id IN (SELECT id FROM doomed)
                    """).affectedRows
            },
        ]
    }
}
