import PostgresClient

/// Housekeeping that one worker at a time does: daily partitions of
/// `metric_events` and `rule_evaluations` from the retention limit to a few
/// days ahead (rows waiting in a default partition move into their day),
/// dropping partitions past the retention, and pruning expired rows.
public struct MaintenanceRepository: Sendable {
    let database: Database

    public struct Report: Sendable, Equatable {
        public var partitionsCreated = 0
        public var partitionsDropped = 0
        public var rowsPruned = 0
        /// False when another worker held the lock (and did the work).
        public var ran = false
    }

    static let partitioned = [("metric_events", "occurred_at"), ("rule_evaluations", "started_at")]

    public func run(retentionDays: Int, daysAhead: Int = 3) async throws -> Report {
        try await database.transaction { connection in
            var report = Report()
            guard try connection.tryAdvisoryTransactionLock(namespace: LockNamespace.partitions, id: 0) else {
                return report
            }
            report.ran = true
            for (table, column) in Self.partitioned {
                let rows = try connection.query(
                    """
                    WITH today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS d)
                    SELECT tocsin_drop_partitions(\(table), \(column), (SELECT d FROM today) - \(retentionDays)::int) AS dropped,
                           tocsin_ensure_partitions(\(table), \(column), (SELECT d FROM today) - \(retentionDays)::int,
                                                    (SELECT d FROM today) + \(daysAhead)::int) AS created
                    """)
                report.partitionsDropped += try rows[0].decode("dropped", as: Int.self)
                report.partitionsCreated += try rows[0].decode("created", as: Int.self)
            }
            report.rowsPruned += try connection.query(
                """
                DELETE FROM metric_rollups
                WHERE hour < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => \(retentionDays))
                """).affectedRows
            report.rowsPruned += try connection.query(
                "DELETE FROM ingest_idempotency WHERE created_at < now() - interval '24 hours'").affectedRows
            report.rowsPruned += try connection.query(
                "DELETE FROM check_requests WHERE requested_at < now() - interval '1 day'").affectedRows
            report.rowsPruned += try connection.query(
                "DELETE FROM workers WHERE last_heartbeat < now() - interval '1 day'").affectedRows
            report.rowsPruned += try connection.query(
                "DELETE FROM dashboard_sessions WHERE expires_at < now()").affectedRows
            return report
        }
    }
}
