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
        note: String? = nil, resolution: Resolution? = nil, evidence: String? = nil
    ) throws -> (Alert, AlertTransition) {
        let row = try connection.query(
            """
            INSERT INTO alert_events (alert_id, rule_id, transition, from_status, to_status, value, threshold, samples,
                                      actor, note, resolution, evidence, labels, annotations)
            SELECT id, rule_id, \(kind), \(from), status, value, threshold, samples, \(actor), \(note), \(resolution),
                   \(evidence)::jsonb, CASE WHEN source = 'external' THEN labels END,
                   CASE WHEN source = 'external' THEN annotations END
            FROM alerts WHERE id = \(alertID)
            RETURNING \(AlertRepository.transitionColumns)
            """)[0]
        let transition = try AlertRepository.decodeTransition(row)
        let alert = try AlertRepository.fetch(alertID, connection)
        try route(connection, alert: alert, transition: transition)
        try announce(connection, alert: alert, transition: transition)
        return (alert, transition)
    }

    /// One outbox row per routed channel (or, on a route with `group_by`,
    /// a change to the channel's alert group), held when an inhibiting
    /// alert, a silence or a time interval says so; each decision is in the
    /// delivery ledger. Resolutions of alerts that never fired notify nobody.
    func route(_ connection: PostgresConnection, alert: Alert, transition: AlertTransition) throws {
        let kind: NotificationTransition
        switch transition.kind {
        case .fired: kind = .fired
        case .resolved where alert.firedAt != nil: kind = .resolved
        default: return
        }
        let notify = try config.activeNotify(connection).config
        var deliveries = notify.deliveries(for: alert, transition: transition.kind)
        if kind == .resolved {
            // A group must learn of every resolution, told or not (send_resolved
            // decides whether its message says so), or it would repeat forever.
            for delivery in notify.deliveries(for: alert, transition: .fired) where delivery.route.groupBy != nil
                && !deliveries.contains(where: { $0.channel.name == delivery.channel.name }) {
                deliveries.append(delivery)
            }
        }
        guard !deliveries.isEmpty else { return }
        let payload = try NotificationPayload(kind: kind == .fired ? .fired : .resolved, alert: alert,
                                              transitionAt: transition.at).encoded()
        // transition.at is the transaction's now(): the database clock.
        let now = transition.at
        var wake = false
        var alertHold: Hold?
        for delivery in deliveries {
            let entry = Ledger.Entry(alertID: alert.id, route: delivery.routeName, channel: delivery.channel.name, event: .routed,
                                     transition: kind)
            try Ledger.write(connection, entry)
            if delivery.route.groupBy != nil {
                try NotificationGroups.add(connection, alert: alert, delivery: delivery, state: kind == .fired ? .firing : .resolved)
                wake = true
                continue
            }
            if kind == .resolved, try dropHeldFiring(connection, alert: alert, delivery: delivery) { continue }
            // Inhibition and silences are the alert's; a time interval is the route's.
            if alertHold == nil {
                alertHold = try Policy.hold(connection, config: notify, alert: alert, route: nil, now: now,
                                            inhibitable: kind == .fired)
            }
            var hold = alertHold!
            if hold.status == .pending, let window = notify.heldBy(route: delivery.route, at: now) {
                hold = Hold(status: .muted, mutedBy: window)
            }
            let inserted = try connection.query(
                """
                INSERT INTO notifications (alert_id, alert_event_id, rule_name, transition, channel, channel_kind, content,
                                           status, silence_id, route, inhibited_by, muted_by)
                VALUES (\(alert.id), \(transition.id), \(alert.rule), \(kind), \(delivery.channel.name), \(delivery.channel.kind),
                        \(payload)::jsonb, \(hold.status), \(hold.silenceID), \(delivery.routeName), \(hold.inhibitedBy), \(hold.mutedBy))
                ON CONFLICT (alert_id, transition, sequence, channel) DO NOTHING
                RETURNING id
                """)
            if let id: Int = try inserted.first?.decode("id"), var held = entry.held(by: hold) {
                held.notificationID = id
                try Ledger.write(connection, held)
            }
            if hold.status == .pending { wake = true }
        }
        if wake { try connection.notify(channel: DatabaseEvents.Topic.outbox.channel) }
    }

    /// A resolution whose firing is still held by inhibition or a time
    /// interval was never told: the firing is dropped and nothing is sent.
    func dropHeldFiring(_ connection: PostgresConnection, alert: Alert, delivery: NotifyConfig.Delivery) throws -> Bool {
        let dropped = try connection.query(
            Ledger.changing(
                """
                UPDATE notifications SET status = 'dropped', last_error = 'the alert resolved while held', updated_at = now()
                WHERE alert_id = \(alert.id) AND channel = \(delivery.channel.name) AND status IN ('inhibited', 'muted')
                  AND transition IN ('fired', 'repeat', 'escalated')
                RETURNING id
                """, event: .dropped, detail: "the alert resolved while held; its resolution is not sent either"))
        let count: Int = try dropped[0].decode("n")
        guard count > 0 else { return false }
        let told = try connection.query(
            """
            SELECT 1 FROM notifications WHERE alert_id = \(alert.id) AND channel = \(delivery.channel.name)
              AND transition = 'fired' AND status IN ('sent', 'pending')
            """)
        return told.isEmpty
    }

    func announce(_ connection: PostgresConnection, alert: Alert, transition: AlertTransition) throws {
        let payload = #"{"type":"alert.\#(transition.kind.rawValue)","alert_id":\#(alert.id)}"#
        try connection.notify(channel: DatabaseEvents.Topic.alerts.channel, payload: payload)
    }
}
