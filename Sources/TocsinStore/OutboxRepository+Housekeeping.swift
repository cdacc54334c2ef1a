import Foundation
import PostgresClient
import TocsinCore

/// Repeats for alerts still firing, and the release of rows held by
/// silences.
extension OutboxRepository {
    /// The first silence that holds `alert` now (the database's now():
    /// recurring silences are evaluated on that clock).
    static func activeSilence(_ connection: PostgresConnection, for alert: Alert) throws -> Int? {
        let rows = try connection.query(
            """
            SELECT \(SilenceRepository.columns), now() AS now FROM silences
            WHERE deleted_at IS NULL AND starts_at <= now() AND ends_at > now()
              AND (rule IS NULL OR rule = \(alert.rule)) AND (platform IS NULL OR platform = \(alert.platform))
              AND (severity IS NULL OR severity = \(alert.severity))
            ORDER BY id LIMIT 1000
            """)
        for row in rows {
            let silence = try SilenceRepository.decode(row)
            if silence.isActive(at: try row.decode("now")) && silence.matches(alert) { return silence.id }
        }
        return nil
    }

    /// Queues the repeat notifications of alerts still firing. Repeat k of
    /// an alert to a channel is due at fired_at + k × interval; its key is
    /// (alert, repeat, k, channel), so any number of workers queue it once.
    /// Routes with `group_by` repeat their groups instead.
    public func queueRepeats() async throws -> Int {
        let config = self.config
        return try await database.transaction { connection in
            let notify = try config.activeNotify(connection).config
            guard !notify.channels.isEmpty else { return 0 }
            let rows = try connection.query(
                """
                SELECT \(AlertRepository.columns), n.channel, now() AS now
                FROM notifications n
                JOIN alerts a ON a.id = n.alert_id
                LEFT JOIN alert_rules r ON r.id = a.rule_id
                WHERE a.status = 'firing' AND n.transition = 'fired' AND n.status = 'sent'
                """)
            var queued = 0
            let open = Policy.OpenAlerts()
            for row in rows {
                let alert = try AlertRepository.decode(row)
                let channelName: String = try row.decode("channel")
                let now: Date = try row.decode("now")
                guard let firedAt = alert.firedAt,
                      let delivery = notify.deliveries(for: alert, transition: .fired).first(where: { $0.channel.name == channelName }),
                      delivery.route.groupBy == nil
                else { continue }
                let elapsed = max(0, now.timeIntervalSince(firedAt))
                let sequence = Int(min(elapsed / Double(delivery.repeatIntervalSeconds), 1e6))
                guard sequence >= 1 else { continue }
                let payload = try NotificationPayload(kind: .repeated, alert: alert, transitionAt: now).encoded()
                let hold = try Policy.hold(connection, config: notify, alert: alert, route: delivery.route, now: now,
                                           inhibitable: true, open: open)
                let inserted = try connection.query(
                    """
                    INSERT INTO notifications (alert_id, rule_name, transition, sequence, channel, channel_kind, content, status,
                                               silence_id, route, inhibited_by, muted_by)
                    VALUES (\(alert.id), \(alert.rule), 'repeat', \(sequence), \(channelName), \(delivery.channel.kind),
                            \(payload)::jsonb, \(hold.status), \(hold.silenceID), \(delivery.routeName), \(hold.inhibitedBy),
                            \(hold.mutedBy))
                    ON CONFLICT (alert_id, transition, sequence, channel) DO NOTHING
                    RETURNING id
                    """)
                guard let id: Int = try inserted.first?.decode("id") else { continue }
                queued += 1
                let entry = Ledger.Entry(alertID: alert.id, notificationID: id, route: delivery.routeName, channel: channelName,
                                         event: .repeated, transition: .repeated, detail: "repeat \(sequence)")
                try Ledger.write(connection, entry)
                if let held = entry.held(by: hold) { try Ledger.write(connection, held) }
            }
            if queued > 0 { try connection.notify(channel: DatabaseEvents.Topic.outbox.channel) }
            return queued
        }
    }

    /// Writes the messages of the notification groups that are due.
    public func flushGroups(limit: Int = 100) async throws -> Int {
        let config = self.config
        return try await database.transaction { connection in
            let notify = try config.activeNotify(connection).config
            return try NotificationGroups.flushDue(connection, config: notify, limit: limit)
        }
    }

    /// Lets go of rows held by inhibition or a time interval once nothing
    /// holds them: sent if the alert is still open (a resolution only if
    /// its firing was delivered), else dropped. A row whose hold changed
    /// (inhibited, then silenced) takes the new one.
    public func releaseHeld() async throws -> (released: Int, dropped: Int) {
        let config = self.config
        return try await database.transaction { connection in
            let rows = try connection.query(
                """
                SELECT n.id AS notification_id, n.transition, n.channel, n.route, n.status AS held_status, n.inhibited_by AS held_by_alert,
                       n.muted_by AS held_by_window, now() AS now, \(AlertRepository.columns),
                       EXISTS (SELECT 1 FROM notifications f WHERE f.alert_id = n.alert_id AND f.channel = n.channel
                               AND f.transition = 'fired' AND f.status = 'sent') AS fired_delivered
                FROM notifications n
                JOIN alerts a ON a.id = n.alert_id
                LEFT JOIN alert_rules r ON r.id = a.rule_id
                WHERE n.status IN ('inhibited', 'muted')
                ORDER BY n.id LIMIT 1000
                FOR UPDATE OF n SKIP LOCKED
                """)
            guard !rows.isEmpty else { return (0, 0) }
            let notify = try config.activeNotify(connection).config
            let open = Policy.OpenAlerts()
            var released = 0, dropped = 0
            for row in rows {
                let alert = try AlertRepository.decode(row)
                let id: Int = try row.decode("notification_id")
                let transition: NotificationTransition = try row.decode("transition")
                let current: NotificationStatus = try row.decode("held_status")
                let now: Date = try row.decode("now")
                let route = Policy.route(named: try row.decode("route"), in: notify)
                let hold = try Policy.hold(connection, config: notify, alert: alert, route: route, now: now,
                                           inhibitable: transition != .resolved, open: open)
                // A reminder or an escalation is for an alert nobody has acknowledged.
                let stillOpen = switch transition {
                case .resolved: try row.decode("fired_delivered", as: Bool.self)
                case .repeated, .escalated: alert.status == .firing
                default: alert.status.isOpen
                }
                if !stillOpen {
                    try connection.query(Ledger.changing(
                        """
                        UPDATE notifications SET status = 'dropped', updated_at = now(), last_error = 'the alert resolved while held'
                        WHERE id = \(id) RETURNING id
                        """, event: .dropped, detail: alert.status.isOpen ? "acknowledged while held" : "the alert resolved while held"))
                    dropped += 1
                    continue
                }
                let heldByAlert: Int? = try row.decode("held_by_alert")
                let heldByWindow: String? = try row.decode("held_by_window")
                if hold.status == current && hold.inhibitedBy == heldByAlert && hold.mutedBy == heldByWindow { continue }
                try connection.query(Ledger.changing(
                    """
                    UPDATE notifications SET status = \(hold.status), inhibited_by = \(hold.inhibitedBy), muted_by = \(hold.mutedBy),
                                             silence_id = coalesce(\(hold.silenceID), silence_id), next_attempt_at = now(),
                                             updated_at = now()
                    WHERE id = \(id) RETURNING id
                    """, event: hold.event ?? .released,
                    detail: hold.detail ?? (current == .inhibited ? "the inhibiting alert \(heldByAlert.map(String.init) ?? "") is no longer open"
                                                                  : "the time interval \(heldByWindow ?? "") no longer holds it")))
                if hold.status == .pending { released += 1 }
            }
            if released > 0 { try connection.notify(channel: DatabaseEvents.Topic.outbox.channel) }
            return (released, dropped)
        }
    }

    /// Releases held rows whose silence has ended: sent if the alert is still
    /// open (or, for a resolution, if its firing was delivered), else dropped.
    public func releaseSilenced() async throws -> (released: Int, dropped: Int) {
        try await database.transaction { connection in
            let rows = try connection.query(
                """
                SELECT n.id AS notification_id, n.transition, n.channel, \(AlertRepository.columns),
                       EXISTS (SELECT 1 FROM notifications f WHERE f.alert_id = n.alert_id AND f.channel = n.channel
                               AND f.transition = 'fired' AND f.status = 'sent') AS fired_delivered
                FROM notifications n
                JOIN alerts a ON a.id = n.alert_id
                LEFT JOIN alert_rules r ON r.id = a.rule_id
                WHERE n.status = 'silenced'
                ORDER BY n.id LIMIT 1000
                FOR UPDATE OF n SKIP LOCKED
                """)
            var released = 0, dropped = 0
            for row in rows {
                let alert = try AlertRepository.decode(row)
                if try Self.activeSilence(connection, for: alert) != nil { continue }
                let id: Int = try row.decode("notification_id")
                let transition: NotificationTransition = try row.decode("transition")
                let deliver = transition == .resolved ? try row.decode("fired_delivered", as: Bool.self) : alert.status.isOpen
                let status: NotificationStatus = deliver ? .pending : .dropped
                try connection.query(Ledger.changing(
                    """
                    UPDATE notifications SET status = \(status), next_attempt_at = now(), updated_at = now(),
                                             last_error = CASE WHEN \(status) = 'dropped' THEN 'the alert resolved while silenced' END
                    WHERE id = \(id) RETURNING id
                    """, event: deliver ? .released : .dropped,
                    detail: deliver ? "the silence ended" : "the alert resolved while silenced"))
                if deliver { released += 1 } else { dropped += 1 }
            }
            if released > 0 { try connection.notify(channel: DatabaseEvents.Topic.outbox.channel) }
            return (released, dropped)
        }
    }
}
