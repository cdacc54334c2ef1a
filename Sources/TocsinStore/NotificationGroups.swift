import Foundation
import PostgresClient
import TocsinCore

/// Alert groups of routes with `group_by`: a transition changes its
/// group's row (in the transition's transaction); when the group is due —
/// `group_wait` after it was created, then at most once per
/// `group_interval`, and every `repeat_interval` while it fires — one
/// worker locks it (FOR UPDATE SKIP LOCKED) and writes the group's next
/// message as one outbox row, update number sequence + 1, under a unique
/// key. The group's state lives here, so a restart loses nothing.
enum NotificationGroups {
    /// Records `alert`'s new state in its group for `delivery`'s route and
    /// channel, creating the group when it is new.
    static func add(_ connection: PostgresConnection, alert: Alert, delivery: NotifyConfig.Delivery,
                    state: GroupAlertState) throws {
        guard let groupBy = delivery.route.groupBy else { return }
        let (key, labels) = NotifyConfig.groupKey(groupBy, labels: AlertLabelSet.of(alert))
        let labelsJSON = String(decoding: try JSONEncoder().encode(labels), as: UTF8.self)
        let wait = Double(delivery.route.groupWaitSeconds)
        let interval = Double(delivery.route.groupIntervalSeconds)
        // A new group is due group_wait from now; a group with no pending
        // change is due one group_interval after its last message (or now).
        let group = try connection.query(
            """
            INSERT INTO notification_groups (route, channel, group_key, labels, next_flush_at)
            VALUES (\(delivery.routeName), \(delivery.channel.name), \(key), \(labelsJSON)::jsonb,
                    now() + make_interval(secs => \(wait)))
            ON CONFLICT (route, channel, group_key) DO UPDATE SET next_flush_at = CASE
                WHEN notification_groups.next_flush_at IS NOT NULL AND EXISTS (
                    SELECT 1 FROM notification_group_alerts m WHERE m.group_id = notification_groups.id
                      AND m.state IS DISTINCT FROM m.notified_state)
                THEN notification_groups.next_flush_at
                ELSE greatest(now(), coalesce(notification_groups.last_flush_at + make_interval(secs => \(interval)), now()))
                END
            RETURNING id
            """)[0]
        let groupID: Int = try group.decode("id")
        try connection.query(
            """
            INSERT INTO notification_group_alerts (group_id, alert_id, state) VALUES (\(groupID), \(alert.id), \(state))
            ON CONFLICT (group_id, alert_id) DO UPDATE SET state = EXCLUDED.state, changed_at = now()
            """)
        try Ledger.write(connection, Ledger.Entry(
            alertID: alert.id, route: delivery.routeName, channel: delivery.channel.name, event: .grouped,
            transition: state == .firing ? .fired : .resolved, detail: "group \(groupID) (\(key))"))
    }

    struct Member {
        var alert: Alert
        var state: GroupAlertState
        var notified: GroupAlertState?
        var heldBy: String?
        var changed: Bool { state != notified }
    }

    /// Writes the messages of up to `limit` due groups; returns how many.
    static func flushDue(_ connection: PostgresConnection, config: NotifyConfig, limit: Int) throws -> Int {
        let due = try connection.query(
            """
            SELECT id, route, channel, group_key, labels::text AS labels, sequence, muted_by, last_flush_at, now() AS now
            FROM notification_groups WHERE next_flush_at <= now()
            ORDER BY next_flush_at, id LIMIT \(limit) FOR UPDATE SKIP LOCKED
            """)
        var written = 0
        for row in due {
            if try flush(connection, row: row, config: config) { written += 1 }
        }
        if written > 0 { try connection.notify(channel: DatabaseEvents.Topic.outbox.channel) }
        return written
    }

    static func flush(_ connection: PostgresConnection, row: PostgresRow, config: NotifyConfig) throws -> Bool {
        let id: Int = try row.decode("id")
        let routeName: String = try row.decode("route")
        let channelName: String = try row.decode("channel")
        let now: Date = try row.decode("now")
        let labelsJSON: String = try row.decode("labels")
        let labels = (try? JSONDecoder().decode([String: String].self, from: Data(labelsJSON.utf8))) ?? [:]
        let mutedBefore: String? = try row.decode("muted_by")
        guard let route = Policy.route(named: routeName, in: config), route.groupBy != nil,
              route.channels.contains(channelName), let channel = config.channel(named: channelName)
        else {
            // The route or channel is gone from the applied configuration.
            try connection.query("DELETE FROM notification_groups WHERE id = \(id)")
            return false
        }
        var members = try connection.query(
            """
            SELECT \(AlertRepository.columns), m.state, m.notified_state, m.held_by
            FROM notification_group_alerts m JOIN alerts a ON a.id = m.alert_id LEFT JOIN alert_rules r ON r.id = a.rule_id
            WHERE m.group_id = \(id) ORDER BY a.id
            """).map { row in
            Member(alert: try AlertRepository.decode(row), state: try row.decode("state"),
                   notified: try row.decode("notified_state"), heldBy: try row.decode("held_by"))
        }
        func ledger(_ member: Member, _ event: DeliveryEvent, notificationID: Int? = nil, hold: Hold? = nil,
                    detail: String? = nil) throws {
            try Ledger.write(connection, Ledger.Entry(
                alertID: member.alert.id, notificationID: notificationID, route: routeName, channel: channelName, event: event,
                transition: member.state == .firing ? .fired : .resolved, inhibitedBy: hold?.inhibitedBy,
                silenceID: hold?.silenceID, timeInterval: hold?.mutedBy, detail: detail ?? hold?.detail))
        }
        // A time interval holds the whole group: check again in a second.
        if let window = config.heldBy(route: route, at: now) {
            if mutedBefore != window {
                for member in members where member.changed { try ledger(member, .muted, hold: Hold(status: .muted, mutedBy: window)) }
            }
            try connection.query(
                "UPDATE notification_groups SET muted_by = \(window), next_flush_at = now() + interval '1 second' WHERE id = \(id)")
            return false
        }
        // Each change is told, unless the alert is held (inhibited, silenced)
        // or resolved before any message told of its firing.
        var included: [Member] = []
        var held = 0
        let open = Policy.OpenAlerts()
        for (index, member) in members.enumerated() {
            if !member.changed {
                if member.state == .firing { included.append(member) }
                continue
            }
            if member.state == .resolved && (member.notified == nil || !route.sendResolved) {
                try ledger(member, .dropped, detail: member.notified == nil
                           ? "resolved before the group's next message: nothing to tell"
                           : "resolved; the route does not send resolutions (send_resolved: false)")
                try connection.query("DELETE FROM notification_group_alerts WHERE group_id = \(id) AND alert_id = \(member.alert.id)")
                members[index].notified = .resolved
                continue
            }
            if member.state == .firing {
                let hold = try Policy.hold(connection, config: config, alert: member.alert, route: nil, now: now, inhibitable: true,
                                           open: open)
                if hold.status != .pending {
                    let reason = hold.detail ?? hold.status.rawValue
                    if member.heldBy != reason {
                        try ledger(member, hold.event!, hold: hold)
                        try connection.query(
                            "UPDATE notification_group_alerts SET held_by = \(reason) WHERE group_id = \(id) AND alert_id = \(member.alert.id)")
                    }
                    held += 1
                    continue
                }
                if member.heldBy != nil { try ledger(member, .released) }
            }
            included.append(member)
        }
        let changes = included.filter(\.changed)
        let firing = included.filter { $0.state == .firing }
        let lastFlush: Date? = try row.decode("last_flush_at")
        // Repeats page for what nobody has acknowledged (as for single alerts).
        let unacknowledged = firing.filter { $0.alert.status == .firing }
        let repeatDue = changes.isEmpty && !unacknowledged.isEmpty
            && lastFlush.map { now.timeIntervalSince($0) >= Double(route.repeatIntervalSeconds) - 0.5 } ?? true
        var notificationID: Int?
        if !changes.isEmpty || repeatDue {
            let resolved = changes.filter { $0.state == .resolved }
            let kind: NotificationPayload.Kind = firing.isEmpty ? .resolved : changes.isEmpty ? .repeated : .fired
            let sequence = try row.decode("sequence", as: Int.self) + 1
            let payload = NotificationPayload(
                group: .init(id: id, labels: labels, route: routeName, sequence: sequence, firing: firing.count,
                             resolved: resolved.count, changed: changes.count),
                kind: kind, alerts: (firing + resolved).map(\.alert), transitionAt: now)
            let inserted = try connection.query(
                """
                INSERT INTO notifications (group_id, rule_name, transition, sequence, channel, channel_kind, content, status, route)
                VALUES (\(id), \(payload.alert.rule), 'group', \(sequence), \(channelName), \(channel.kind),
                        \(try payload.encoded())::jsonb, 'pending', \(routeName))
                ON CONFLICT (group_id, sequence, channel) WHERE group_id IS NOT NULL DO NOTHING
                RETURNING id
                """)
            guard let newID: Int = try inserted.first?.decode("id") else { return false }
            notificationID = newID
            let told = (firing + resolved).map(\.alert.id)
            try connection.query(
                """
                INSERT INTO notification_alerts (notification_id, alert_id) SELECT \(newID), unnest(\(told)::int8[])
                ON CONFLICT DO NOTHING
                """)
            for member in changes { try ledger(member, .grouped, notificationID: newID, detail: "group \(id) message \(sequence)") }
            if repeatDue { for member in unacknowledged { try ledger(member, .repeated, notificationID: newID) } }
            try connection.query(
                """
                UPDATE notification_group_alerts SET notified_state = state, held_by = NULL
                WHERE group_id = \(id) AND alert_id = ANY(\(changes.map(\.alert.id))::int8[])
                """)
            try connection.query(
                "DELETE FROM notification_group_alerts WHERE group_id = \(id) AND state = 'resolved' AND notified_state = 'resolved'")
        }
        // Next: the held alerts at the next interval, the firing ones at the
        // repeat interval; a group with nothing left goes.
        let remaining: Int = try connection.query(
            "SELECT count(*) AS n FROM notification_group_alerts WHERE group_id = \(id)")[0].decode("n")
        if remaining == 0 {
            try connection.query("DELETE FROM notification_groups WHERE id = \(id)")
        } else {
            let sinceMessage = notificationID != nil ? 0 : lastFlush.map { max(0, now.timeIntervalSince($0)) } ?? 0
            let repeatIn = unacknowledged.isEmpty ? nil : max(1, Double(route.repeatIntervalSeconds) - sinceMessage)
            let recheckIn = held > 0 ? Double(route.groupIntervalSeconds) : nil
            let next = [repeatIn, recheckIn].compactMap { $0 }.min()
            try connection.query(
                """
                UPDATE notification_groups
                SET sequence = sequence + \(notificationID == nil ? 0 : 1), muted_by = NULL,
                    last_flush_at = CASE WHEN \(notificationID != nil) THEN now() ELSE last_flush_at END,
                    next_flush_at = CASE WHEN \(next)::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => \(next)::float8) END
                WHERE id = \(id)
                """)
        }
        return notificationID != nil
    }
}
