import Foundation
import PostgresClient
import TocsinCore

/// A notification row as the API shows it.
public struct NotificationRecord: Sendable, Equatable {
    public var id: Int
    /// The alert; for a group's message, the first alert it tells of.
    public var alertID: Int
    /// The notification group of a group's message.
    public var groupID: Int?
    public var rule: String
    public var channel: String
    public var channelKind: NotifyConfig.Channel.Kind
    public var transition: NotificationTransition
    public var sequence: Int
    public var status: NotificationStatus
    public var attempts: Int
    public var lastError: String?
    public var lastStatusCode: Int?
    public var createdAt: Date
    public var nextAttemptAt: Date?
    public var sentAt: Date?
}

/// A row a dispatcher has claimed (leased) and must now send.
public struct ClaimedNotification: Sendable, Equatable {
    public var id: Int
    public var channel: String
    public var attempts: Int
    public var payload: NotificationPayload
}

/// The notification outbox: rows written with each transition, claimed by
/// dispatchers under a lease, marked when delivered or given up.
public struct OutboxRepository: Sendable {
    let database: Database
    let config: ConfigRepository

    // MARK: Dispatching

    /// Leases up to `limit` due rows of `channels` (the ones this dispatcher
    /// can deliver to) to `owner` for `leaseSeconds`. Each claim counts as an
    /// attempt. A row whose payload this version cannot read goes dead.
    public func claim(owner: String, channels: [String], limit: Int, leaseSeconds: Double) async throws -> [ClaimedNotification] {
        let rows = try await database.write(
            """
            UPDATE notifications
            SET lease_owner = \(owner), lease_expires_at = now() + make_interval(secs => \(leaseSeconds)),
                attempts = attempts + 1, updated_at = now()
            WHERE id IN (SELECT id FROM notifications
                         WHERE status = 'pending' AND next_attempt_at <= now() AND channel = ANY(\(channels)::text[])
                           AND (lease_expires_at IS NULL OR lease_expires_at < now())
                         ORDER BY next_attempt_at, id LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING id, channel, attempts, content::text AS content
            """)
        var claimed: [ClaimedNotification] = []
        for row in rows {
            let id: Int = try row.decode("id")
            do {
                claimed.append(ClaimedNotification(
                    id: id, channel: try row.decode("channel"), attempts: try row.decode("attempts"),
                    payload: try NotificationPayload.decode(try row.decode("content"))))
            } catch let error as NotificationPayload.UnreadableError {
                try await markFailed(id: id, owner: owner, error: error.description, statusCode: nil, retryIn: nil)
            }
        }
        return claimed
    }

    /// True while `owner` holds the row's lease with at least `margin`
    /// seconds left: checked right before sending, so a dispatcher whose
    /// lease ran out (a long pause) never sends a row another may have.
    public func holdsLease(id: Int, owner: String, margin: Double) async throws -> Bool {
        try await database.write(
            """
            SELECT 1 FROM notifications
            WHERE id = \(id) AND status = 'pending' AND lease_owner = \(owner)
              AND lease_expires_at > now() + make_interval(secs => \(margin))
            """).count == 1
    }

    /// Marks a delivered row sent. Only the lease owner can: false when the
    /// lease was lost (another dispatcher may be sending it).
    @discardableResult
    public func markSent(id: Int, owner: String, statusCode: Int?) async throws -> Bool {
        try await database.write(Ledger.changing(
            """
            UPDATE notifications SET status = 'sent', sent_at = now(), lease_owner = NULL, lease_expires_at = NULL,
                                     last_status_code = \(statusCode), last_error = NULL, updated_at = now()
            WHERE id = \(id) AND status = 'pending' AND lease_owner = \(owner)
            RETURNING id
            """, event: .sent, statusCode: statusCode))[0].decode("n", as: Int.self) == 1
    }

    /// Records a failed attempt: retried after `retryIn` seconds, or dead
    /// when `retryIn` is nil.
    public func markFailed(id: Int, owner: String, error: String, statusCode: Int?, retryIn: Double?) async throws {
        let status: NotificationStatus = retryIn == nil ? .dead : .pending
        try await database.write(Ledger.changing(
            """
            UPDATE notifications
            SET status = \(status), next_attempt_at = now() + make_interval(secs => \(retryIn ?? 0)),
                lease_owner = NULL, lease_expires_at = NULL, last_error = \(String(error.prefix(500))),
                last_status_code = \(statusCode), updated_at = now()
            WHERE id = \(id) AND lease_owner = \(owner) AND status = 'pending'
            RETURNING id
            """, event: retryIn == nil ? .dead : .retried, statusCode: statusCode, untilSeconds: retryIn, detail: error))
    }

    /// Gives a claimed row back without counting the attempt (rate limit).
    public func postpone(id: Int, owner: String, seconds: Double) async throws {
        try await database.write(Ledger.changing(
            """
            UPDATE notifications SET next_attempt_at = now() + make_interval(secs => \(seconds)), attempts = attempts - 1,
                                     lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = \(id) AND lease_owner = \(owner) AND status = 'pending'
            RETURNING id
            """, event: .rateLimited, untilSeconds: seconds))
    }

    /// Gives back rows `owner` claimed but will not send now (beyond a
    /// channel's share of the delivery slots): unleased, the claim not
    /// counted as an attempt, due as before.
    public func release(ids: [Int], owner: String) async throws {
        try await database.write(
            """
            UPDATE notifications SET attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = ANY(\(ids)::bigint[]) AND lease_owner = \(owner) AND status = 'pending'
            """)
    }

    /// Holds a claimed row because a silence now matches it.
    public func hold(id: Int, owner: String, silenceID: Int) async throws {
        try await database.write(Ledger.changing(
            """
            UPDATE notifications SET status = 'silenced', silence_id = \(silenceID), attempts = attempts - 1,
                                     lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = \(id) AND lease_owner = \(owner) AND status = 'pending'
            RETURNING id
            """, event: .silenced, detail: "silence \(silenceID) began before it was sent"))
    }

    /// Takes a token from `destination`'s bucket (`rate` a second, up to
    /// `burst`). Returns nil when taken, else the seconds until one is free.
    public func takeToken(destination: String, rate: Double, burst: Int) async throws -> Double? {
        try await database.transaction { connection in
            try TokenBucket.take(connection, table: "notification_rate_limits", key: destination, rate: rate, burst: burst)
        }
    }

    /// Seconds until this dispatcher may have something to do (at most 1),
    /// or nil when nothing is pending: the next row of `channels` it could
    /// claim (a row leased to another becomes claimable when the lease
    /// runs out, not before) or the next group flush. Counting rows it
    /// cannot claim would make an idle dispatcher poll without pause while
    /// another holds a lease, or while rows wait for a channel it cannot
    /// deliver to.
    public func secondsUntilNextDue(channels: [String]) async throws -> Double? {
        try await database.write(
            """
            SELECT least(1, greatest(0, extract(epoch FROM next - now())))::float8 AS wait
            FROM (SELECT least(
                      (SELECT min(greatest(next_attempt_at, coalesce(lease_expires_at, next_attempt_at))) FROM notifications
                       WHERE status = 'pending' AND channel = ANY(\(channels)::text[])),
                      (SELECT min(next_flush_at) FROM notification_groups)) AS next) AS due
            WHERE next IS NOT NULL
            """).first?.decode("wait")
    }

    // MARK: Reads and retries

    static let columns: PostgresQuery = """
        id, coalesce(alert_id, (SELECT min(na.alert_id) FROM notification_alerts na WHERE na.notification_id = notifications.id), 0)
        AS alert_id, group_id, rule_name, channel, channel_kind, transition, sequence, status, attempts, last_error,
        last_status_code, created_at, CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, sent_at
        """

    static func decode(_ row: PostgresRow) throws -> NotificationRecord {
        NotificationRecord(
            id: try row.decode("id"), alertID: try row.decode("alert_id"), groupID: try row.decode("group_id"),
            rule: try row.decode("rule_name"),
            channel: try row.decode("channel"), channelKind: try row.decode("channel_kind"),
            transition: try row.decode("transition"), sequence: try row.decode("sequence"), status: try row.decode("status"),
            attempts: try row.decode("attempts"), lastError: try row.decode("last_error"),
            lastStatusCode: try row.decode("last_status_code"), createdAt: try row.decode("created_at"),
            nextAttemptAt: try row.decode("next_attempt_at"), sentAt: try row.decode("sent_at"))
    }

    /// Newest first; `cursor` is the last id of the previous page.
    public func list(status: NotificationStatus?, alertID: Int?, limit: Int, before cursor: Int?) async throws -> [NotificationRecord] {
        try await database.read(
            """
            SELECT \(Self.columns) FROM notifications
            WHERE (\(status)::text IS NULL OR status = \(status)) AND (\(alertID)::int8 IS NULL OR alert_id = \(alertID) OR alert_id IS NULL)
              AND (\(cursor)::int8 IS NULL OR id < \(cursor))
              AND (\(alertID)::int8 IS NULL OR alert_id IS NOT NULL
                   OR EXISTS (SELECT 1 FROM notification_alerts na WHERE na.notification_id = notifications.id
                              AND na.alert_id = \(alertID)))
            ORDER BY id DESC LIMIT \(limit)
            """).map(Self.decode)
    }

    public enum RetryError: Error, Equatable {
        case notFound
        case notDead(NotificationStatus)
    }

    /// Queues a dead notification again with a fresh attempt budget.
    public func retry(id: Int) async throws -> NotificationRecord {
        try await database.transaction { connection in
            guard let row = try connection.query("SELECT status FROM notifications WHERE id = \(id) FOR UPDATE").first else {
                throw RetryError.notFound
            }
            let status: NotificationStatus = try row.decode("status")
            guard status == .dead else { throw RetryError.notDead(status) }
            try connection.query(
                """
                UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = now(), lease_owner = NULL,
                                         lease_expires_at = NULL, updated_at = now()
                WHERE id = \(id)
                """)
            try connection.notify(channel: DatabaseEvents.Topic.outbox.channel)
            return try Self.decode(try connection.query("SELECT \(Self.columns) FROM notifications WHERE id = \(id)")[0])
        }
    }

    /// The outbox's depth and the age of its oldest due row, for /metrics.
    public func backlog() async throws -> (pending: Int, oldestSeconds: Double) {
        let row = try await database.read(
            """
            SELECT count(*) AS pending, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest
            FROM notifications WHERE status = 'pending'
            """)[0]
        return (try row.decode("pending"), try row.decode("oldest"))
    }
}

/// Token buckets in PostgreSQL, shared by every process: one row per key.
enum TokenBucket {
    /// Takes a token from `key`'s bucket (`rate` a second, up to `burst`).
    /// Returns nil when taken, else the seconds until one is free.
    static func take(_ connection: PostgresConnection, table: String, key: String, rate: Double, burst: Int) throws -> Double? {
        try connection.query(
            "INSERT INTO \(unescaped: table) (destination, tokens) VALUES (\(key), \(Double(burst))) ON CONFLICT DO NOTHING")
        let row = try connection.query(
            """
            SELECT least(\(Double(burst))::float8, tokens + extract(epoch FROM now() - updated_at) * \(rate)) AS available
            FROM \(unescaped: table) WHERE destination = \(key) FOR UPDATE
            """)[0]
        let available: Double = try row.decode("available")
        guard available >= 1 else { return (1 - available) / rate }
        try connection.query(
            "UPDATE \(unescaped: table) SET tokens = \(available - 1), updated_at = now() WHERE destination = \(key)")
        return nil
    }
}
