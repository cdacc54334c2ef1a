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
}

/// Which alert transition a notification is about.
public enum NotificationTransition: String, Sendable, Codable, CaseIterable {
    case fired, resolved
    /// A reminder for an alert still firing.
    case repeated = "repeat"
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
