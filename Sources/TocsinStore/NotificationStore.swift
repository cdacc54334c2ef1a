import Foundation
import PostgresClient
import TocsinCore

/// A notification row as the API shows it.
public struct NotificationRecord: Sendable, Equatable, Encodable {
    public var id: Int
    public var alertID: Int
    public var rule: String
    public var channel: String
    public var channelKind: String
    public var transition: String
    public var sequence: Int
    public var status: String
    public var attempts: Int
    public var lastError: String?
    public var lastStatusCode: Int?
    public var createdAt: Double
    public var nextAttemptAt: Double?
    public var sentAt: Double?

    enum CodingKeys: String, CodingKey {
        case id, rule, channel, transition, sequence, status, attempts
        case alertID = "alert_id", channelKind = "channel_kind", lastError = "last_error"
        case lastStatusCode = "last_status_code", createdAt = "created_at", nextAttemptAt = "next_attempt_at"
        case sentAt = "sent_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(alertID, forKey: .alertID)
        try c.encode(rule, forKey: .rule)
        try c.encode(channel, forKey: .channel)
        try c.encode(channelKind, forKey: .channelKind)
        try c.encode(transition, forKey: .transition)
        try c.encode(sequence, forKey: .sequence)
        try c.encode(status, forKey: .status)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(lastError, forKey: .lastError)
        try c.encode(lastStatusCode, forKey: .lastStatusCode)
        try c.encode(RFC3339.format(createdAt), forKey: .createdAt)
        try c.encode(nextAttemptAt.map(RFC3339.format), forKey: .nextAttemptAt)
        try c.encode(sentAt.map(RFC3339.format), forKey: .sentAt)
    }
}

/// A row a dispatcher has claimed (leased) and must now send.
public struct ClaimedNotification: Sendable, Equatable {
    public var id: Int
    public var channel: String
    public var attempts: Int
    public var content: NotificationContent
}

/// The notification outbox.
public struct NotificationStore: Sendable {
    public let pool: PostgresPool
    public init(pool: PostgresPool) { self.pool = pool }

    /// Announced when rows become due, so dispatchers wake at once.
    public static let channel = "tocsin_outbox"

    static func contentJSON(_ content: NotificationContent) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(content), as: UTF8.self)
    }

    /// The transition hook that writes the outbox rows of a transition in
    /// its own transaction: one per routed channel, held when silenced.
    /// Resolutions of alerts that never fired notify nobody.
    public static func outboxHook(config: NotifyConfig) -> TransitionHooks.Hook? {
        guard !config.channels.isEmpty else { return nil }
        return { connection, alert, transition in
            let kind: NotificationContent.Kind
            switch transition.kind {
            case .fired: kind = .fired
            case .resolved where alert.firedAt != nil: kind = .resolved
            default: return
            }
            let destinations = config.destinations(rule: alert.rule, severity: alert.severity, labels: alert.labels,
                                                   transition: transition.kind)
            guard !destinations.isEmpty else { return }
            let content = try contentJSON(NotificationContent(notificationID: 0, kind: kind, alert: alert, transitionAt: transition.at))
            let silence = try activeSilence(connection, for: alert)
            for (channel, _) in destinations {
                try connection.query(
                    """
                    INSERT INTO notifications (alert_id, alert_event_id, rule_name, transition, channel, channel_kind, content,
                                               status, silence_id)
                    VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
                    ON CONFLICT (alert_id, transition, sequence, channel) DO NOTHING
                    """,
                    [alert.id, transition.id, alert.rule, kind.rawValue, channel.name, channel.kind.rawValue, content,
                     silence == nil ? "pending" : "silenced", silence])
            }
            if silence == nil { try connection.notify(channel: Self.channel, payload: "") }
        }
    }

    static func activeSilence(_ connection: PostgresConnection, for alert: Alert) throws -> Int? {
        let labels = String(decoding: try JSONEncoder().encode(alert.labels), as: UTF8.self)
        return try connection.query(
            """
            SELECT id FROM silences
            WHERE deleted_at IS NULL AND starts_at <= now() AND ends_at > now()
              AND (rule IS NULL OR rule = $1) AND (platform IS NULL OR platform = $2)
              AND (severity IS NULL OR severity = $3) AND labels <@ $4::jsonb
            ORDER BY id LIMIT 1
            """, [alert.rule, alert.platform, alert.severity.rawValue, labels]).first?.decode("id")
    }

    // MARK: Dispatching

    /// Leases up to `limit` due rows to `owner` for `leaseSeconds`. Each
    /// claim counts as an attempt.
    public func claim(owner: String, limit: Int, leaseSeconds: Double) async throws -> [ClaimedNotification] {
        let rows = try await pool.query(
            """
            UPDATE notifications
            SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2), attempts = attempts + 1,
                updated_at = now()
            WHERE id IN (SELECT id FROM notifications
                         WHERE status = 'pending' AND next_attempt_at <= now()
                           AND (lease_expires_at IS NULL OR lease_expires_at < now())
                         ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
            RETURNING id, channel, attempts, content::text AS content
            """, [owner, leaseSeconds, limit])
        var claimed: [ClaimedNotification] = []
        for row in rows {
            let id: Int = try row.decode("id")
            let json: String = try row.decode("content")
            guard var content = try? JSONDecoder().decode(NotificationContent.self, from: Data(json.utf8)) else {
                try await markFailed(id: id, owner: owner, error: "stored content is not readable", statusCode: nil, retryIn: nil)
                continue
            }
            content.notificationID = id
            claimed.append(ClaimedNotification(id: id, channel: try row.decode("channel"), attempts: try row.decode("attempts"),
                                               content: content))
        }
        return claimed
    }

    public func markSent(id: Int, statusCode: Int?) async throws {
        try await pool.query(
            """
            UPDATE notifications SET status = 'sent', sent_at = now(), lease_owner = NULL, lease_expires_at = NULL,
                                     last_status_code = $2, last_error = NULL, updated_at = now()
            WHERE id = $1 AND status = 'pending'
            """, [id, statusCode])
    }

    /// Records a failed attempt: retried after `retryIn` seconds, or dead
    /// when `retryIn` is nil.
    public func markFailed(id: Int, owner: String, error: String, statusCode: Int?, retryIn: Double?) async throws {
        try await pool.query(
            """
            UPDATE notifications
            SET status = CASE WHEN $5::float8 IS NULL THEN 'dead' ELSE 'pending' END,
                next_attempt_at = now() + make_interval(secs => coalesce($5, 0)),
                lease_owner = NULL, lease_expires_at = NULL, last_error = $3, last_status_code = $4, updated_at = now()
            WHERE id = $1 AND lease_owner = $2 AND status = 'pending'
            """, [id, owner, String(error.prefix(500)), statusCode, retryIn])
    }

    /// Gives a claimed row back without counting the attempt (rate limit).
    public func postpone(id: Int, owner: String, seconds: Double) async throws {
        try await pool.query(
            """
            UPDATE notifications SET next_attempt_at = now() + make_interval(secs => $3), attempts = attempts - 1,
                                     lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = $1 AND lease_owner = $2 AND status = 'pending'
            """, [id, owner, seconds])
    }

    /// Holds a claimed row because a silence now matches it.
    public func hold(id: Int, owner: String, silenceID: Int) async throws {
        try await pool.query(
            """
            UPDATE notifications SET status = 'silenced', silence_id = $3, attempts = attempts - 1,
                                     lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = $1 AND lease_owner = $2 AND status = 'pending'
            """, [id, owner, silenceID])
    }

    /// Takes a token from `destination`'s bucket (`rate` a second, up to
    /// `burst`). Returns nil when taken, else the seconds until one is free.
    public func takeToken(destination: String, rate: Double, burst: Int) async throws -> Double? {
        try await pool.withTransaction { connection in
            try connection.query(
                "INSERT INTO notification_rate_limits (destination, tokens) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                [destination, Double(burst)])
            let row = try connection.query(
                """
                SELECT least($3::float8, tokens + extract(epoch FROM now() - updated_at) * $2) AS available
                FROM notification_rate_limits WHERE destination = $1 FOR UPDATE
                """, [destination, rate, Double(burst)])[0]
            let available: Double = try row.decode("available")
            guard available >= 1 else { return (1 - available) / rate }
            try connection.query(
                "UPDATE notification_rate_limits SET tokens = $2, updated_at = now() WHERE destination = $1",
                [destination, available - 1])
            return nil
        }
    }

    // MARK: Repeats and silences

    /// Queues the repeat notifications of alerts still firing. Repeat k of
    /// an alert to a channel is due at fired_at + k × interval; its key is
    /// (alert, repeat, k, channel), so any number of workers queue it once.
    public func queueRepeats(config: NotifyConfig) async throws -> Int {
        try await pool.withTransaction { connection in
            let rows = try connection.query(
                """
                SELECT \(AlertStore.columns), n.channel, extract(epoch FROM now())::float8 AS now
                FROM notifications n
                JOIN alerts a ON a.id = n.alert_id
                JOIN alert_rules r ON r.id = a.rule_id
                WHERE a.status = 'firing' AND n.transition = 'fired' AND n.status = 'sent'
                """)
            var queued = 0
            for row in rows {
                let alert = try AlertStore.decode(row)
                let channelName: String = try row.decode("channel")
                let now: Double = try row.decode("now")
                guard let firedAt = alert.firedAt,
                      let destination = config.destinations(rule: alert.rule, severity: alert.severity, labels: alert.labels,
                                                            transition: .fired).first(where: { $0.channel.name == channelName })
                else { continue }
                let sequence = Int((now - firedAt) / Double(destination.repeatIntervalSeconds))
                guard sequence >= 1 else { continue }
                let content = try Self.contentJSON(NotificationContent(notificationID: 0, kind: .repeated, alert: alert, transitionAt: now))
                let silence = try Self.activeSilence(connection, for: alert)
                queued += try connection.query(
                    """
                    INSERT INTO notifications (alert_id, rule_name, transition, sequence, channel, channel_kind, content, status,
                                               silence_id)
                    VALUES ($1, $2, 'repeat', $3, $4, $5, $6::jsonb, $7, $8)
                    ON CONFLICT (alert_id, transition, sequence, channel) DO NOTHING
                    """,
                    [alert.id, alert.rule, sequence, channelName, destination.channel.kind.rawValue, content,
                     silence == nil ? "pending" : "silenced", silence]).affectedRows
            }
            if queued > 0 { try connection.notify(channel: Self.channel, payload: "") }
            return queued
        }
    }

    /// Releases held rows whose silence has ended: sent if the alert is still
    /// open (or, for a resolution, if its firing was delivered), else dropped.
    public func releaseSilenced() async throws -> (released: Int, dropped: Int) {
        try await pool.withTransaction { connection in
            let rows = try connection.query(
                """
                SELECT n.id AS notification_id, n.transition, n.channel, \(AlertStore.columns),
                       EXISTS (SELECT 1 FROM notifications f WHERE f.alert_id = n.alert_id AND f.channel = n.channel
                               AND f.transition = 'fired' AND f.status = 'sent') AS fired_delivered
                FROM notifications n
                JOIN alerts a ON a.id = n.alert_id
                JOIN alert_rules r ON r.id = a.rule_id
                WHERE n.status = 'silenced'
                FOR UPDATE OF n SKIP LOCKED
                """)
            var released = 0, dropped = 0
            for row in rows {
                let alert = try AlertStore.decode(row)
                if try Self.activeSilence(connection, for: alert) != nil { continue }
                let id: Int = try row.decode("notification_id")
                let transition: String = try row.decode("transition")
                let deliver = transition == "resolved" ? try row.decode("fired_delivered", as: Bool.self) : alert.status.isOpen
                try connection.query(
                    """
                    UPDATE notifications SET status = $2, next_attempt_at = now(), updated_at = now(),
                                             last_error = CASE WHEN $2 = 'dropped' THEN 'the alert resolved while silenced' END
                    WHERE id = $1
                    """, [id, deliver ? "pending" : "dropped"])
                if deliver { released += 1 } else { dropped += 1 }
            }
            if released > 0 { try connection.notify(channel: Self.channel, payload: "") }
            return (released, dropped)
        }
    }

    // MARK: Reads and retries

    static let columns = """
        id, alert_id, rule_name, channel, channel_kind, transition, sequence, status, attempts, last_error,
        last_status_code, extract(epoch FROM created_at)::float8 AS created_at,
        CASE WHEN status = 'pending' THEN extract(epoch FROM next_attempt_at)::float8 END AS next_attempt_at,
        extract(epoch FROM sent_at)::float8 AS sent_at
        """

    static func decode(_ row: PostgresRow) throws -> NotificationRecord {
        NotificationRecord(
            id: try row.decode("id"), alertID: try row.decode("alert_id"), rule: try row.decode("rule_name"),
            channel: try row.decode("channel"), channelKind: try row.decode("channel_kind"),
            transition: try row.decode("transition"), sequence: try row.decode("sequence"), status: try row.decode("status"),
            attempts: try row.decode("attempts"), lastError: try row.decode("last_error"),
            lastStatusCode: try row.decode("last_status_code"), createdAt: try row.decode("created_at"),
            nextAttemptAt: try row.decode("next_attempt_at"), sentAt: try row.decode("sent_at"))
    }

    /// Newest first; `cursor` is the last id of the previous page.
    public func list(status: String?, alertID: Int?, limit: Int, before cursor: Int?) async throws -> [NotificationRecord] {
        try await pool.query(
            """
            SELECT \(Self.columns) FROM notifications
            WHERE ($1::text IS NULL OR status = $1) AND ($2::int8 IS NULL OR alert_id = $2) AND ($3::int8 IS NULL OR id < $3)
            ORDER BY id DESC LIMIT $4
            """, [status, alertID, cursor, limit]).map(Self.decode)
    }

    public func get(id: Int) async throws -> NotificationRecord? {
        try await pool.query("SELECT \(Self.columns) FROM notifications WHERE id = $1", [id]).first.map(Self.decode)
    }

    public enum RetryError: Error, Equatable {
        case notFound
        case notDead(String)
    }

    /// Queues a dead notification again with a fresh attempt budget.
    public func retry(id: Int) async throws -> NotificationRecord {
        try await pool.withTransaction { connection in
            guard let row = try connection.query("SELECT status FROM notifications WHERE id = $1 FOR UPDATE", [id]).first else {
                throw RetryError.notFound
            }
            let status: String = try row.decode("status")
            guard status == "dead" else { throw RetryError.notDead(status) }
            try connection.query(
                """
                UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = now(), lease_owner = NULL,
                                         lease_expires_at = NULL, updated_at = now()
                WHERE id = $1
                """, [id])
            try connection.notify(channel: Self.channel, payload: "")
            return try Self.decode(try connection.query("SELECT \(Self.columns) FROM notifications WHERE id = $1", [id])[0])
        }
    }

    /// The outbox's depth and the age of its oldest due row, for /metrics.
    public func backlog() async throws -> (pending: Int, oldestSeconds: Double) {
        let row = try await pool.query(
            """
            SELECT count(*) AS pending, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest
            FROM notifications WHERE status = 'pending'
            """)[0]
        return (try row.decode("pending"), try row.decode("oldest"))
    }
}
