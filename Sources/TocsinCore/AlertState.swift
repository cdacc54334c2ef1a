import Foundation

/// What the evaluator knows of the open alert of a rule and group.
public struct OpenAlert: Sendable, Equatable {
    public var id: Int
    public var status: AlertStatus
    /// When the condition started to hold (pending or firing start).
    public var startedAt: Date

    public init(id: Int, status: AlertStatus, startedAt: Date) {
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
    public static func decide(rule: Rule, open: OpenAlert?, measurement: RuleMeasurement, now: Date) -> AlertDecision {
        guard let value = measurement.value else {
            switch rule.noData {
            case .keep:
                return open == nil ? .none : .keep
            case .resolve:
                return open == nil ? .none : .resolve(.noData)
            case .alert:
                guard let open else { return .open(rule.forSeconds > 0 ? .pending : .firing) }
                if open.status == .pending && now.timeIntervalSince(open.startedAt) >= Double(rule.forSeconds) { return .fire }
                return .keep
            }
        }
        guard let open else {
            guard rule.breaches(value) else { return .none }
            return .open(rule.forSeconds > 0 ? .pending : .firing)
        }
        guard rule.stillBreaches(value) else { return .resolve(.auto) }
        if open.status == .pending {
            if rule.breaches(value) && now.timeIntervalSince(open.startedAt) >= Double(rule.forSeconds) { return .fire }
        }
        return .keep
    }
}
