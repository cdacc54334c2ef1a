import Foundation

/// A silence: notifications of matching alerts are held between `startsAt`
/// and `endsAt`. Every matcher that is set must match.
public struct Silence: Sendable, Equatable {
    public var id: Int
    public var rule: String?
    public var platform: String?
    public var severity: Rule.Severity?
    public var labels: [String: String]
    public var startsAt: Date
    public var endsAt: Date
    public var comment: String
    public var createdBy: String
    public var deleted: Bool
    /// A recurring silence holds only inside this window (and between
    /// `startsAt` and `endsAt`): a weekly maintenance window.
    public var recurrence: Recurrence?
    /// Alertmanager matchers (`=`, `!=`, `=~`, `!~`) of a silence made
    /// through its API; they must all match too.
    public var matchers: [SilenceMatcher]
    /// The API key that created it (`createdBy` is what its client said).
    public var createdByKey: String?

    public init(id: Int, rule: String?, platform: String?, severity: Rule.Severity?, labels: [String: String],
                startsAt: Date, endsAt: Date, comment: String, createdBy: String, deleted: Bool = false,
                recurrence: Recurrence? = nil, matchers: [SilenceMatcher] = [], createdByKey: String? = nil) {
        self.matchers = matchers
        self.createdByKey = createdByKey
        self.recurrence = recurrence
        self.id = id
        self.rule = rule
        self.platform = platform
        self.severity = severity
        self.labels = labels
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.comment = comment
        self.createdBy = createdBy
        self.deleted = deleted
    }

    public func isActive(at now: Date) -> Bool {
        !deleted && startsAt <= now && now < endsAt && recurrence?.contains(now) != false
    }

    public func matches(_ alert: Alert) -> Bool {
        if let rule, rule != alert.rule { return false }
        if let platform, platform != alert.platform { return false }
        if let severity, severity != alert.severity { return false }
        let set = AlertLabelSet.of(alert)
        return labels.allSatisfy { set[$0.key] == $0.value } && matchers.matchAll(set)
    }
}
