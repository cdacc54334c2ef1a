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

/// What the evaluator knows of the open alert of a rule and group.
public struct OpenAlert: Sendable, Equatable {
    public var id: Int
    public var status: AlertStatus
    /// When the condition started to hold (pending or firing start).
    public var startedAt: Double

    public init(id: Int, status: AlertStatus, startedAt: Double) {
        self.id = id
        self.status = status
        self.startedAt = startedAt
    }
}

/// The decision for one rule and group after a measurement.
public enum AlertDecision: Sendable, Equatable {
    /// No alert, none needed.
    case none
    /// The open alert stays as it is (its value is refreshed).
    case keep
    /// Open a new alert, pending (the rule has a `for` duration) or firing.
    case open(AlertStatus)
    /// The pending alert has held long enough: it fires.
    case fire
    /// The open alert closes.
    case resolve(Resolution)
}

/// The alert state machine, pure: ok → pending → firing (→ acknowledged) →
/// resolved, with `for`, hysteresis (`recovery_threshold`) and the no-data
/// policy. A manually resolved alert is no longer open, so if the condition
/// still holds the next evaluation opens a new one.
public enum AlertStateMachine {
    public static func decide(rule: Rule, open: OpenAlert?, measurement: RuleMeasurement, now: Double) -> AlertDecision {
        guard let value = measurement.value else {
            switch rule.noData {
            case .keep:
                return open == nil ? .none : .keep
            case .resolve:
                return open == nil ? .none : .resolve(.noData)
            case .alert:
                guard let open else { return .open(rule.forSeconds > 0 ? .pending : .firing) }
                if open.status == .pending && now - open.startedAt >= Double(rule.forSeconds) { return .fire }
                return .keep
            }
        }
        guard let open else {
            guard rule.breaches(value) else { return .none }
            return .open(rule.forSeconds > 0 ? .pending : .firing)
        }
        guard rule.stillBreaches(value) else { return .resolve(.auto) }
        if open.status == .pending {
            if rule.breaches(value) && now - open.startedAt >= Double(rule.forSeconds) { return .fire }
        }
        return .keep
    }
}
