import Foundation
import PostgresClient
import TocsinCore

/// Repeats for alerts still firing, and the release of rows held by
/// silences.
extension OutboxRepository {
    static func activeSilence(_ connection: PostgresConnection, for alert: Alert) throws -> Int? {
        let labels = String(decoding: try JSONEncoder().encode(alert.labels), as: UTF8.self)
        return try connection.query(
            """
            SELECT id FROM silences
            WHERE deleted_at IS NULL AND starts_at <= now() AND ends_at > now()
              AND (rule IS NULL OR rule = \(alert.rule)) AND (platform IS NULL OR platform = \(alert.platform))
              AND (severity IS NULL OR severity = \(alert.severity)) AND labels <@ \(labels)::jsonb
            ORDER BY id LIMIT 1
            """).first?.decode("id")
    }

    /// Queues the repeat notifications of alerts still firing. Repeat k of
    /// an alert to a channel is due at fired_at + k × interval; its key is
    /// (alert, repeat, k, channel), so any number of workers queue it once.
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
                JOIN alert_rules r ON r.id = a.rule_id
                WHERE a.status = 'firing' AND n.transition = 'fired' AND n.status = 'sent'
                """)
            var queued = 0
            for row in rows {
                let alert = try AlertRepository.decode(row)
                let channelName: String = try row.decode("channel")
                let now: Date = try row.decode("now")
                guard let firedAt = alert.firedAt,
                      let destination = notify.destinations(rule: alert.rule, severity: alert.severity, labels: alert.labels,
                                                            transition: .fired).first(where: { $0.channel.name == channelName })
                else { continue }
                let elapsed = max(0, now.timeIntervalSince(firedAt))
                let sequence = Int(min(elapsed / Double(destination.repeatIntervalSeconds), 1e6))
                guard sequence >= 1 else { continue }
                let payload = try NotificationPayload(kind: .repeated, alert: alert, transitionAt: now).encoded()
                let silence = try Self.activeSilence(connection, for: alert)
                let status: NotificationStatus = silence == nil ? .pending : .silenced
                queued += try connection.query(
                    """
                    INSERT INTO notifications (alert_id, rule_name, transition, sequence, channel, channel_kind, content, status,
                                               silence_id)
                    VALUES (\(alert.id), \(alert.rule), 'repeat', \(sequence), \(channelName), \(destination.channel.kind),
                            \(payload)::jsonb, \(status), \(silence))
                    ON CONFLICT (alert_id, transition, sequence, channel) DO NOTHING
                    """).affectedRows
            }
            if queued > 0 { try connection.notify(channel: DatabaseEvents.Topic.outbox.channel) }
            return queued
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
                JOIN alert_rules r ON r.id = a.rule_id
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
                try connection.query(
                    """
                    UPDATE notifications SET status = \(status), next_attempt_at = now(), updated_at = now(),
                                             last_error = CASE WHEN \(status) = 'dropped' THEN 'the alert resolved while silenced' END
                    WHERE id = \(id)
                    """)
                if deliver { released += 1 } else { dropped += 1 }
            }
            if released > 0 { try connection.notify(channel: DatabaseEvents.Topic.outbox.channel) }
            return (released, dropped)
        }
    }
}
