import Foundation
import PostgresClient
import TocsinCore

/// External alerts: the ones Prometheus, Grafana and amtool post to the
/// Alertmanager API. Each lives like a rule's alert — a `fired` transition
/// when first posted, `resolved` when its sender says so or stops posting
/// it — and its transitions go through the same `TransitionWriter`, so
/// routing, silences, inhibition, grouping and the outbox treat it alike.
public struct ExternalAlertRepository: Sendable {
    let database: Database
    let config: ConfigRepository

    /// What one post did.
    public struct Outcome: Sendable, Equatable {
        /// Alerts that fired (a new open alert each).
        public var fired: [Int] = []
        /// Open alerts re-posted: their annotations, ends_at and
        /// last_received_at were updated, nothing was sent.
        public var updated: [Int] = []
        /// Open alerts posted with endsAt in the past: resolved.
        public var resolved: [Int] = []
        /// Posted resolved while no alert of theirs was open: nothing to do.
        public var ignored = 0
        /// Posted firing for an episode its sender had already ended (see
        /// `receive`): nothing to do.
        public var stale = 0
    }

    /// Records a post in one transaction, on the database clock: an alert
    /// whose endsAt is not in the past fires unless an alert of its
    /// fingerprint is open (then it only refreshes it); one whose endsAt
    /// has passed resolves the open one.
    ///
    /// For `reopenGraceSeconds` after a sender resolved the last alert of a
    /// fingerprint (`resolution` auto, `ends_at` the endsAt posted), a
    /// firing post that started before that end belongs to the ended
    /// episode and opens nothing. Two Prometheus servers of an HA pair see a
    /// recovery a scrape apart: the one still firing re-sends the alert
    /// (with its old startsAt) after the other has resolved it, and
    /// Alertmanager would re-open it for that moment. Past the grace, such a
    /// post re-opens the alert: that server still sees the problem (the
    /// other may have lost its target), and no alert is held back longer. A
    /// new episode starts after the last one ended, and an alert without
    /// startsAt starts now, so either fires at once. An alert resolved by
    /// the timeout (its sender went quiet) or by hand is not such an end.
    ///
    /// Any number of API processes may
    /// receive the same alerts at the same time: the partial unique index
    /// on open fingerprints lets exactly one of them insert (and notify),
    /// the others update. Alerts are handled in fingerprint order, so two
    /// posts lock rows in the same order and cannot deadlock.
    public func receive(_ alerts: [PostedAlert], resolveTimeoutSeconds: Int, reopenGraceSeconds: Int,
                        actor: String) async throws -> Outcome {
        var latest: [String: PostedAlert] = [:]
        for alert in alerts { latest[alert.fingerprint] = alert }
        let ordered = latest.sorted { $0.key < $1.key }
        let transitions = TransitionWriter(config: config)
        return try await database.transaction { connection in
            var outcome = Outcome()
            for (fingerprint, alert) in ordered {
                try Self.receive(alert, fingerprint: fingerprint, timeout: resolveTimeoutSeconds, grace: reopenGraceSeconds,
                                 actor: actor, transitions: transitions, connection, into: &outcome)
            }
            return outcome
        }
    }

    static func json(_ map: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(map), as: UTF8.self)
    }

    static func receive(_ alert: PostedAlert, fingerprint: String, timeout: Int, grace: Int, actor: String,
                        transitions: TransitionWriter,
                        _ connection: PostgresConnection, into outcome: inout Outcome) throws {
        let annotations = try json(alert.annotations)
        let ended = try connection.query(
            "SELECT coalesce(\(alert.endsAt)::timestamptz <= now(), false) AS ended")[0].decode("ended", as: Bool.self)
        // Twice at most: when a concurrent post inserts the open alert
        // between our look and our insert, the insert does nothing and the
        // second look finds (and locks) that alert.
        for _ in 0..<2 {
            if let open = try connection.query(
                """
                SELECT id, status FROM alerts
                WHERE source = 'external' AND fingerprint = \(fingerprint) AND status <> 'resolved' FOR UPDATE
                """).first {
                let id: Int = try open.decode("id")
                let status: AlertStatus = try open.decode("status")
                if ended {
                    try connection.query(
                        """
                        UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = \(actor), resolution = 'auto',
                                          annotations = \(annotations)::jsonb, ends_at = \(alert.endsAt),
                                          last_received_at = now(), last_evaluated_at = now()
                        WHERE id = \(id)
                        """)
                    try transitions.record(connection, alertID: id, kind: .resolved, from: status, actor: actor,
                                           resolution: .auto)
                    outcome.resolved.append(id)
                } else {
                    try connection.query(
                        """
                        UPDATE alerts SET annotations = \(annotations)::jsonb, generator_url = \(alert.generatorURL),
                                          ends_at = coalesce(\(alert.endsAt)::timestamptz, now() + make_interval(secs => \(timeout))),
                                          last_received_at = now(), last_evaluated_at = now()
                        WHERE id = \(id)
                        """)
                    outcome.updated.append(id)
                }
                return
            }
            if ended {
                outcome.ignored += 1
                return
            }
            if grace > 0, let startsAt = alert.startsAt, try connection.query(
                """
                SELECT resolution = 'auto' AND \(startsAt)::timestamptz < ends_at
                       AND resolved_at > now() - make_interval(secs => \(grace)) AS stale
                FROM alerts
                WHERE source = 'external' AND fingerprint = \(fingerprint) AND status = 'resolved'
                ORDER BY resolved_at DESC, id DESC LIMIT 1
                """).first?.decode("stale", as: Bool.self) == true {
                outcome.stale += 1
                return
            }
            let labels = try json(alert.labels)
            let inserted = try connection.query(
                """
                INSERT INTO alerts (rule_id, rule_name, severity, group_key, platform, status, value, threshold, comparison,
                                    samples, started_at, fired_at, last_evaluated_at, labels, source, fingerprint, annotations,
                                    generator_url, ends_at, last_received_at)
                VALUES (NULL, \(alert.alertname), \(alert.severity), \(fingerprint), \(alert.labels["platform"]), 'firing', NULL, 0, '',
                        0, least(coalesce(\(alert.startsAt)::timestamptz, now()), now()), now(), now(), \(labels)::jsonb,
                        'external', \(fingerprint), \(annotations)::jsonb, \(alert.generatorURL),
                        coalesce(\(alert.endsAt)::timestamptz, now() + make_interval(secs => \(timeout))), now())
                ON CONFLICT (fingerprint) WHERE source = 'external' AND status <> 'resolved' DO NOTHING
                RETURNING id
                """)
            if let row = inserted.first {
                let id: Int = try row.decode("id")
                try transitions.record(connection, alertID: id, kind: .fired, from: nil, actor: actor)
                outcome.fired.append(id)
                return
            }
        }
    }

    /// Resolves open external alerts whose `ends_at` has passed on the
    /// database clock (nobody re-posted them), at most `limit` per call,
    /// under the transaction-scoped lock `(0x74630005, 0)`: any number of
    /// workers may call it, each alert resolves once. Returns their ids.
    public func expire(limit: Int = 500) async throws -> [Int] {
        let transitions = TransitionWriter(config: config)
        return try await database.transaction { connection in
            guard try connection.tryAdvisoryTransactionLock(namespace: LockNamespace.externalAlerts, id: 0) else { return [] }
            let due = try connection.query(
                """
                SELECT id, status FROM alerts
                WHERE source = 'external' AND status <> 'resolved' AND ends_at <= now()
                ORDER BY ends_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """)
            var ids: [Int] = []
            for row in due {
                let id: Int = try row.decode("id")
                let status: AlertStatus = try row.decode("status")
                try connection.query(
                    """
                    UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = 'resolve_timeout',
                                      resolution = 'expired', last_evaluated_at = now()
                    WHERE id = \(id)
                    """)
                try transitions.record(connection, alertID: id, kind: .resolved, from: status, actor: "resolve_timeout",
                                       resolution: .expired)
                ids.append(id)
            }
            return ids
        }
    }

    /// The open (firing or acknowledged) alerts of every source, for the
    /// Alertmanager API's reads: at most `limit`, oldest first.
    public func open(limit: Int = 10_000) async throws -> [Alert] {
        try await database.read(
            """
            SELECT \(AlertRepository.columns) FROM alerts a LEFT JOIN alert_rules r ON r.id = a.rule_id
            WHERE a.status IN ('firing', 'acknowledged')
            ORDER BY a.started_at, a.id LIMIT \(limit)
            """).map(AlertRepository.decode)
    }
}
