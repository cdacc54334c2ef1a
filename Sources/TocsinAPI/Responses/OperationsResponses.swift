import Foundation
import TocsinCore
import TocsinStore

/// A worker instance.
struct WorkerBody: Encodable, Sendable {
    var id: String
    var host: String
    var pid: Int
    var roles: [String]
    var startedAt: Date
    var lastHeartbeat: Date
    @NullEncoded var lastCheckAt: Date?
    @NullEncoded var lastCheckDurationMs: Double?
    var evaluations: Int
    var alertsFired: Int
    var stopped: Bool
    var stale: Bool

    enum CodingKeys: String, CodingKey {
        case id, host, pid, roles, evaluations, stopped, stale
        case startedAt = "started_at", lastHeartbeat = "last_heartbeat", lastCheckAt = "last_check_at"
        case lastCheckDurationMs = "last_check_duration_ms", alertsFired = "alerts_fired"
    }

    init(_ w: WorkerInfo) {
        id = w.id
        host = w.host
        pid = w.pid
        roles = w.roles
        startedAt = w.startedAt
        lastHeartbeat = w.lastHeartbeat
        lastCheckAt = w.lastCheckAt
        lastCheckDurationMs = w.lastCheckDurationMs
        evaluations = w.evaluations
        alertsFired = w.alertsFired
        stopped = w.stopped
        stale = w.stale
    }
}

/// The answer to "run checks now" with `wait=true`.
struct CheckResultBody: Encodable, Sendable {
    var id: Int
    @NullEncoded var evaluatedBy: String?
    var evaluated: Int
    var results: [GroupResultBody]
    enum CodingKeys: String, CodingKey {
        case id, evaluated, results
        case evaluatedBy = "evaluated_by"
    }
}

/// A notification row of the outbox.
struct NotificationBody: Encodable, Sendable {
    var id: Int
    var alertID: Int
    var rule: String
    var channel: String
    var channelKind: NotifyConfig.Channel.Kind
    var transition: NotificationTransition
    var sequence: Int
    var status: NotificationStatus
    var attempts: Int
    @NullEncoded var lastError: String?
    @NullEncoded var lastStatusCode: Int?
    var createdAt: Date
    @NullEncoded var nextAttemptAt: Date?
    @NullEncoded var sentAt: Date?
    @NullEncoded var groupID: Int?

    enum CodingKeys: String, CodingKey {
        case id, rule, channel, transition, sequence, status, attempts
        case alertID = "alert_id", channelKind = "channel_kind", lastError = "last_error", groupID = "group_id"
        case lastStatusCode = "last_status_code", createdAt = "created_at", nextAttemptAt = "next_attempt_at"
        case sentAt = "sent_at"
    }

    init(_ n: NotificationRecord) {
        id = n.id
        alertID = n.alertID
        rule = n.rule
        channel = n.channel
        channelKind = n.channelKind
        transition = n.transition
        sequence = n.sequence
        status = n.status
        attempts = n.attempts
        lastError = n.lastError
        lastStatusCode = n.lastStatusCode
        createdAt = n.createdAt
        nextAttemptAt = n.nextAttemptAt
        sentAt = n.sentAt
        groupID = n.groupID
    }
}

struct NotificationPageBody: Encodable, Sendable {
    var notifications: [NotificationBody]
    @NullEncoded var nextCursor: String?
    enum CodingKeys: String, CodingKey {
        case notifications
        case nextCursor = "next_cursor"
    }
}

/// A channel, redacted: never a secret.
struct ChannelBody: Encodable, Sendable {
    var name: String
    var kind: NotifyConfig.Channel.Kind
    var destination: String
    var ratePerSecond: Double
    var burst: Int
    enum CodingKeys: String, CodingKey {
        case name, kind, destination, burst
        case ratePerSecond = "rate_per_second"
    }
}

/// A silence.
struct SilenceBody: Encodable, Sendable {
    var id: Int
    @NullEncoded var rule: String?
    @NullEncoded var platform: String?
    @NullEncoded var severity: Rule.Severity?
    var labels: [String: String]
    var startsAt: Date
    var endsAt: Date
    var comment: String
    var createdBy: String
    var deleted: Bool
    var active: Bool
    @NullEncoded var recurrence: RecurrenceBody?
    /// Alertmanager matchers of a silence made through /api/v2/silences.
    var matchers: [SilenceMatcher]

    enum CodingKeys: String, CodingKey {
        case id, rule, platform, severity, labels, comment, deleted, active, recurrence, matchers
        case startsAt = "starts_at", endsAt = "ends_at", createdBy = "created_by"
    }

    init(_ s: Silence, now: Date) {
        id = s.id
        rule = s.rule
        platform = s.platform
        severity = s.severity
        labels = s.labels
        startsAt = s.startsAt
        endsAt = s.endsAt
        comment = s.comment
        createdBy = s.createdBy
        deleted = s.deleted
        active = s.isActive(at: now)
        recurrence = s.recurrence.map(RecurrenceBody.init)
        matchers = s.matchers
    }
}

/// A recurring window in the forms a request gives it: weekdays and
/// months by name ranges ("monday:friday"), times as HH:MM:SS.
struct RecurrenceBody: Encodable, Sendable {
    struct Times: Encodable, Sendable {
        var start: String
        var end: String
    }

    var timeZone: String
    var weekdays: [String]
    var times: [Times]
    var daysOfMonth: [String]
    var months: [String]
    var years: [String]

    enum CodingKeys: String, CodingKey {
        case weekdays, times, months, years
        case timeZone = "time_zone", daysOfMonth = "days_of_month"
    }

    init(_ r: Recurrence) {
        func clock(_ seconds: Int) -> String { String(format: "%02d:%02d:%02d", seconds / 3600, seconds % 3600 / 60, seconds % 60) }
        func spans(_ spans: [Recurrence.Span], names: [String]) -> [String] {
            spans.map { span in
                let name = { (n: Int) in names.isEmpty ? String(n) : names[n - 1] }
                return span.from == span.to ? name(span.from) : "\(name(span.from)):\(name(span.to))"
            }
        }
        timeZone = r.timeZone
        weekdays = spans(r.weekdays, names: ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])
        times = r.times.map { Times(start: clock($0.start), end: clock($0.end)) }
        daysOfMonth = spans(r.daysOfMonth, names: [])
        months = spans(r.months, names: ["january", "february", "march", "april", "may", "june", "july", "august",
                                         "september", "october", "november", "december"])
        years = spans(r.years, names: [])
    }
}

/// One entry of an alert's delivery ledger.
struct DeliveryBody: Encodable, Sendable {
    var id: Int
    var at: Date
    @NullEncoded var route: String?
    var channel: String
    var event: DeliveryEvent
    @NullEncoded var transition: NotificationTransition?
    @NullEncoded var notificationID: Int?
    @NullEncoded var groupID: Int?
    @NullEncoded var inhibitedBy: Int?
    @NullEncoded var silenceID: Int?
    @NullEncoded var timeInterval: String?
    @NullEncoded var until: Date?
    @NullEncoded var escalationLevel: Int?
    @NullEncoded var statusCode: Int?
    @NullEncoded var detail: String?

    enum CodingKeys: String, CodingKey {
        case id, at, route, channel, event, transition, until, detail
        case notificationID = "notification_id", groupID = "group_id", inhibitedBy = "inhibited_by", silenceID = "silence_id"
        case timeInterval = "time_interval", escalationLevel = "escalation_level", statusCode = "status_code"
    }

    init(_ d: DeliveryRecord) {
        id = d.id
        at = d.at
        route = d.route
        channel = d.channel
        event = d.event
        transition = d.transition
        notificationID = d.notificationID
        groupID = d.groupID
        inhibitedBy = d.inhibitedBy
        silenceID = d.silenceID
        timeInterval = d.timeInterval
        until = d.until
        escalationLevel = d.escalationLevel
        statusCode = d.statusCode
        detail = d.detail
    }
}

/// A dashboard session.
struct SessionBody: Encodable, Sendable {
    var name: String
    var scopes: [Scope]
    var csrfToken: String
    var expiresAt: Date
    enum CodingKeys: String, CodingKey {
        case name, scopes
        case csrfToken = "csrf_token", expiresAt = "expires_at"
    }
}
