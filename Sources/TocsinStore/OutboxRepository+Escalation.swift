import Foundation
import PostgresClient
import TocsinCore

/// Escalation: a firing alert nobody acknowledged within a level's `after`
/// (counted from when it fired, on the database clock) goes to that
/// level's channels too. Each level is a transition in the alert's history
/// (`escalated`, with the level); the unique index on (alert, level) makes
/// it happen once, whichever worker gets there. Acknowledging or resolving
/// the alert stops it: only status `firing` escalates. An inhibited or
/// silenced alert does not escalate while it is held.
extension OutboxRepository {
    public func queueEscalations() async throws -> Int {
        let config = self.config
        return try await database.transaction { connection in
            let notify = try config.activeNotify(connection).config
            guard let shortest = notify.routes.compactMap({ $0.escalate.first?.afterSeconds }).min() else { return 0 }
            let rows = try connection.query(
                """
                SELECT \(AlertRepository.columns), now() AS now FROM alerts a LEFT JOIN alert_rules r ON r.id = a.rule_id
                WHERE a.status = 'firing' AND a.fired_at <= now() - make_interval(secs => \(Double(shortest)))
                ORDER BY a.fired_at LIMIT 1000
                """)
            var escalated = 0
            let open = Policy.OpenAlerts()
            for row in rows {
                let alert = try AlertRepository.decode(row)
                let now: Date = try row.decode("now")
                guard let firedAt = alert.firedAt else { continue }
                let labels = AlertLabelSet.of(alert)
                // The first matching route with escalation levels decides.
                guard let (index, route) = notify.routes.enumerated().first(where: {
                    !$0.element.escalate.isEmpty && $0.element.matches(rule: alert.rule, severity: alert.severity, labels: labels)
                }) else { continue }
                let routeName = route.displayName(index: index)
                let reached = route.escalate.enumerated().filter { now.timeIntervalSince(firedAt) >= Double($0.element.afterSeconds) }
                guard !reached.isEmpty else { continue }
                let done: Set<Int> = Set(try connection.query(
                    """
                    SELECT escalation_level FROM alert_events WHERE alert_id = \(alert.id) AND transition = 'escalated'
                    """).map { try $0.decode("escalation_level", as: Int.self) })
                let pending = reached.filter { !done.contains($0.offset + 1) }
                guard !pending.isEmpty else { continue }
                let alertHold = try Policy.hold(connection, config: notify, alert: alert, route: nil, now: now, inhibitable: true,
                                                open: open)
                if alertHold.status != .pending { continue }
                for (offset, level) in pending {
                    let number = offset + 1
                    let event = try connection.query(
                        """
                        INSERT INTO alert_events (alert_id, rule_id, transition, from_status, to_status, value, threshold, samples,
                                                  actor, note, escalation_level)
                        SELECT id, rule_id, 'escalated', status, status, value, threshold, samples, 'escalation',
                               \("\(routeName) level \(number): \(level.channels.joined(separator: ", "))"), \(number)
                        FROM alerts WHERE id = \(alert.id) AND status = 'firing'
                        ON CONFLICT (alert_id, escalation_level) WHERE transition = 'escalated' DO NOTHING
                        RETURNING id
                        """)
                    guard let eventID: Int = try event.first?.decode("id") else { continue }
                    escalated += 1
                    let payload = try NotificationPayload(escalationLevel: number, alert: alert, transitionAt: now).encoded()
                    for name in level.channels {
                        guard let channel = notify.channel(named: name) else { continue }
                        let hold = notify.heldBy(route: route, at: now).map { Hold(status: .muted, mutedBy: $0) } ?? .none
                        let inserted = try connection.query(
                            """
                            INSERT INTO notifications (alert_id, alert_event_id, rule_name, transition, sequence, channel,
                                                       channel_kind, content, status, route, muted_by, escalation_level)
                            VALUES (\(alert.id), \(eventID), \(alert.rule), 'escalated', \(number), \(name), \(channel.kind),
                                    \(payload)::jsonb, \(hold.status), \(routeName), \(hold.mutedBy), \(number))
                            ON CONFLICT (alert_id, transition, sequence, channel) DO NOTHING
                            RETURNING id
                            """)
                        let id: Int? = try inserted.first?.decode("id")
                        let entry = Ledger.Entry(alertID: alert.id, notificationID: id, route: routeName, channel: name,
                                                 event: .escalated, transition: .escalated, level: number,
                                                 detail: "not acknowledged \(DurationText.format(level.afterSeconds)) after firing")
                        try Ledger.write(connection, entry)
                        if let held = entry.held(by: hold) { try Ledger.write(connection, held) }
                    }
                    try connection.notify(channel: DatabaseEvents.Topic.alerts.channel,
                                          payload: #"{"type":"alert.escalated","alert_id":\#(alert.id)}"#)
                }
            }
            if escalated > 0 { try connection.notify(channel: DatabaseEvents.Topic.outbox.channel) }
            return escalated
        }
    }
}
