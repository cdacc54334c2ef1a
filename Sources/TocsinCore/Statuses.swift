/// The statuses and outcomes stored in PostgreSQL, one definition each.
/// Every enum here matches a CHECK constraint of the migrations; a test
/// reads the migrations and compares the lists, so the two cannot drift.

/// Where an alert is in its life.
public enum AlertStatus: String, Sendable, Codable, CaseIterable {
    /// The condition holds but not yet for the rule's `for` duration.
    case pending
    case firing
    /// Firing, and someone has said they are on it.
    case acknowledged
    case resolved

    public var isOpen: Bool { self != .resolved }
}

/// How an alert was resolved.
public enum Resolution: String, Sendable, Codable, CaseIterable {
    /// The value crossed the recovery threshold.
    case auto
    /// Someone resolved it.
    case manual
    /// The rule's `no_data: resolve` policy closed it.
    case noData = "no_data"
    /// An external alert that its sender stopped re-posting: its `ends_at`
    /// (given, or `resolve_timeout` after it was last received) passed.
    case expired
}

/// Where an alert comes from.
public enum AlertSource: String, Sendable, Codable, CaseIterable {
    /// Evaluated by a worker from one of Tocsin's rules.
    case rule
    /// Posted by a client of the Alertmanager API (`POST /api/v2/alerts`):
    /// Prometheus, Grafana, amtool.
    case external
}

/// A notification row's state in the outbox.
public enum NotificationStatus: String, Sendable, Codable, CaseIterable {
    /// Waiting to be sent (or being sent under a lease).
    case pending
    case sent
    /// Given up: a permanent failure or the last attempt failed.
    case dead
    /// Held by a silence until it ends.
    case silenced
    /// Never to be sent: the alert resolved while it was held.
    case dropped
    /// Held while an inhibiting alert is open (`inhibited_by`).
    case inhibited
    /// Held while a route's time interval holds it (`muted_by`).
    case muted
}

/// Which alert transition a notification is about.
public enum NotificationTransition: String, Sendable, Codable, CaseIterable {
    case fired, resolved
    /// A reminder for an alert still firing.
    case repeated = "repeat"
    /// An escalation level of an alert left unacknowledged.
    case escalated
    /// A group's message (`group_id`, sequence: the group's update number).
    case group
}

/// What the delivery ledger records for an alert, a route and a channel.
public enum DeliveryEvent: String, Sendable, Codable, CaseIterable {
    /// A route sends the alert's transition to the channel.
    case routed
    /// The transition joined a group; with the message once it is built.
    case grouped
    /// Not notified: an open alert inhibits it.
    case inhibited
    case silenced
    /// Held by a route's time interval.
    case muted
    /// Held by the channel's rate limit until `until`.
    case rateLimited = "rate_limited"
    /// A held notification was let go (its silence, window or inhibitor ended).
    case released
    /// A reminder was queued for an alert still firing.
    case repeated
    /// An escalation level was reached.
    case escalated
    case sent
    /// An attempt failed; retried later.
    case retried
    /// Given up.
    case dead
    /// Never to be sent (the alert resolved while held).
    case dropped
}

/// Why a rule's next evaluation is when it is.
public enum DueReason: String, Sendable, Codable, CaseIterable {
    /// The start of the next interval.
    case schedule
    /// Pulled forward because events arrived for a metric it reads.
    case event
}

/// What started an evaluation.
public enum EvaluationTrigger: String, Sendable, Codable, CaseIterable {
    case schedule, event, manual
}

/// What one evaluation found for one group.
public enum EvaluationOutcome: String, Sendable, Codable, CaseIterable {
    case ok, pending, firing, acknowledged, resolved
    case noData = "no_data"
    /// The evaluation failed; nothing of it was written (see the rule's last error).
    case error
}

/// An alert's state within a notification group.
public enum GroupAlertState: String, Sendable, Codable, CaseIterable {
    case firing, resolved
}

/// Why a rule's last evaluation failed (`alert_rules.last_error_code`).
public enum RuleErrorCode: String, Sendable, Codable, CaseIterable {
    /// More groups than the rule's max_groups: nothing was opened.
    case tooManyGroups = "too_many_groups"
    /// Anything else: the database refused or timed out a statement.
    case evaluationFailed = "evaluation_failed"
}

/// An evaluation that found more groups than the rule allows: it fails
/// (and changes nothing) rather than open an alert for each.
public struct TooManyGroups: Error, Sendable, Equatable, CustomStringConvertible {
    public var limit: Int
    public init(limit: Int) { self.limit = limit }
    public var description: String {
        "too_many_groups: more than \(limit) groups (max_groups); narrow the rule with where: or group by fewer labels"
    }
}
