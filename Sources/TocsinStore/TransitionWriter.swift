import Foundation
import PostgresClient
import TocsinCore

/// Everything that happens in the transaction of an alert transition,
/// whichever process records it (a worker's evaluation, an API's manual
/// action or fallback check): the `alert_events` row with its evidence, the
/// outbox rows routed by the applied notification configuration (the same
/// in every process, so routing never depends on who recorded it), and the
/// announcement for live dashboards. All of it commits or none of it.
struct TransitionWriter: Sendable {
    let config: ConfigRepository

    /// Appends the transition with the alert's current value, threshold and
    /// samples as evidence, then routes and announces it.
    @discardableResult
    func record(
        _ connection: PostgresConnection, alertID: Int, kind: AlertTransition.Kind, from: AlertStatus?, actor: String,
        note: String? = nil, resolution: Resolution? = nil
    ) throws -> (Alert, AlertTransition) {
        let row = try connection.query(
            """
            INSERT INTO alert_events (alert_id, rule_id, transition, from_status, to_status, value, threshold, samples,
                                      actor, note, resolution)
            SELECT id, rule_id, \(kind), \(from), status, value, threshold, samples, \(actor), \(note), \(resolution)
            FROM alerts WHERE id = \(alertID)
            RETURNING \(AlertRepository.transitionColumns)
            """)[0]
        let transition = try AlertRepository.decodeTransition(row)
        let alert = try AlertRepository.fetch(alertID, connection)
        try route(connection, alert: alert, transition: transition)
        try announce(connection, alert: alert, transition: transition)
        return (alert, transition)
    }

    /// One outbox row per routed channel, held when a silence matches.
    /// Resolutions of alerts that never fired notify nobody.
    func route(_ connection: PostgresConnection, alert: Alert, transition: AlertTransition) throws {
        let kind: NotificationTransition
        switch transition.kind {
        case .fired: kind = .fired
        case .resolved where alert.firedAt != nil: kind = .resolved
        default: return
        }
        let notify = try config.activeNotify(connection).config
        let destinations = notify.destinations(rule: alert.rule, severity: alert.severity, labels: alert.labels,
                                               transition: transition.kind)
        guard !destinations.isEmpty else { return }
        let payload = try NotificationPayload(kind: kind == .fired ? .fired : .resolved, alert: alert,
                                              transitionAt: transition.at).encoded()
        let silence = try OutboxRepository.activeSilence(connection, for: alert)
        let status: NotificationStatus = silence == nil ? .pending : .silenced
        for (channel, _) in destinations {
            try connection.query(
                """
                INSERT INTO notifications (alert_id, alert_event_id, rule_name, transition, channel, channel_kind, content,
                                           status, silence_id)
                VALUES (\(alert.id), \(transition.id), \(alert.rule), \(kind), \(channel.name), \(channel.kind),
                        \(payload)::jsonb, \(status), \(silence))
                ON CONFLICT (alert_id, transition, sequence, channel) DO NOTHING
                """)
        }
        if silence == nil { try connection.notify(channel: DatabaseEvents.Topic.outbox.channel) }
    }

    func announce(_ connection: PostgresConnection, alert: Alert, transition: AlertTransition) throws {
        let payload = #"{"type":"alert.\#(transition.kind.rawValue)","alert_id":\#(alert.id)}"#
        try connection.notify(channel: DatabaseEvents.Topic.alerts.channel, payload: payload)
    }
}
