import Foundation

/// An alert as the API shows it and the notifications describe it.
public struct Alert: Sendable, Equatable {
    public var id: Int
    public var rule: String
    public var severity: Rule.Severity
    public var status: AlertStatus
    public var groupKey: String
    public var platform: String?
    public var value: Double?
    public var threshold: Double
    public var comparison: String
    public var samples: Int
    public var description: String
    public var runbookURL: String?
    public var startedAt: Date
    public var firedAt: Date?
    public var lastEvaluatedAt: Date?
    public var acknowledgedAt: Date?
    public var acknowledgedBy: String?
    public var acknowledgeNote: String?
    public var resolvedAt: Date?
    public var resolvedBy: String?
    public var resolution: Resolution?
    public var resolveNote: String?
    /// The rule's labels and the group's (`alerts.labels`), the rule's
    /// winning where both have a name: what routing, silences and
    /// messages match.
    public var labels: [String: String]
    /// The group's labels alone (`{"platform": "tiktok", "endpoint": …}`);
    /// nil in notifications stored before they were kept.
    public var groupLabels: [String: String]?
    /// Set for an alert posted to the Alertmanager API (its `rule` is its
    /// `alertname`); nil for a rule's alert.
    public var external: ExternalAlertInfo?

    public var source: AlertSource { external == nil ? .rule : .external }

    public init(
        id: Int, rule: String, severity: Rule.Severity, status: AlertStatus, groupKey: String, platform: String?,
        value: Double?, threshold: Double, comparison: String, samples: Int, description: String, runbookURL: String?,
        startedAt: Date, firedAt: Date?, lastEvaluatedAt: Date?, acknowledgedAt: Date?, acknowledgedBy: String?,
        acknowledgeNote: String?, resolvedAt: Date?, resolvedBy: String?, resolution: Resolution?, resolveNote: String?,
        labels: [String: String], groupLabels: [String: String]? = nil, external: ExternalAlertInfo? = nil
    ) {
        self.external = external
        self.id = id
        self.rule = rule
        self.severity = severity
        self.status = status
        self.groupKey = groupKey
        self.platform = platform
        self.value = value
        self.threshold = threshold
        self.comparison = comparison
        self.samples = samples
        self.description = description
        self.runbookURL = runbookURL
        self.startedAt = startedAt
        self.firedAt = firedAt
        self.lastEvaluatedAt = lastEvaluatedAt
        self.acknowledgedAt = acknowledgedAt
        self.acknowledgedBy = acknowledgedBy
        self.acknowledgeNote = acknowledgeNote
        self.resolvedAt = resolvedAt
        self.resolvedBy = resolvedBy
        self.resolution = resolution
        self.resolveNote = resolveNote
        self.labels = labels
        self.groupLabels = groupLabels
    }
}

/// The stored form of an alert inside a notification payload (internal:
/// the API has its own). Codable is synthesized here, beside the type.
extension Alert: Codable {
    enum CodingKeys: String, CodingKey {
        case id, rule, severity, status, platform, value, threshold, comparison, samples, description, resolution, labels
        case external
        case groupKey = "group_key", runbookURL = "runbook_url", startedAt = "started_at", firedAt = "fired_at"
        case lastEvaluatedAt = "last_evaluated_at", acknowledgedAt = "acknowledged_at", acknowledgedBy = "acknowledged_by"
        case acknowledgeNote = "acknowledge_note", resolvedAt = "resolved_at", resolvedBy = "resolved_by"
        case resolveNote = "resolve_note", groupLabels = "group_labels"
    }
}

/// One step in an alert's life, as recorded in `alert_events`.
public struct AlertTransition: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case pending, fired, acknowledged, resolved
        /// A route's escalation level was reached (`escalationLevel`).
        case escalated
    }

    public var id: Int
    public var alertID: Int
    public var kind: Kind
    public var from: AlertStatus?
    public var to: AlertStatus
    public var value: Double?
    public var threshold: Double
    public var samples: Int
    public var actor: String
    public var note: String?
    public var resolution: Resolution?
    public var at: Date
    public var escalationLevel: Int?
    /// What an evaluation decided on (filter, group labels, a composite's
    /// inputs, an SLO's burn rates); nil for manual actions.
    public var evidence: Evidence?
    /// The evidence of an external alert's transition: its label set and
    /// annotations at that moment (nil for a rule's alert).
    public var labels: [String: String]?
    public var annotations: [String: String]?

    public init(id: Int, alertID: Int, kind: Kind, from: AlertStatus?, to: AlertStatus, value: Double?, threshold: Double,
                samples: Int, actor: String, note: String?, resolution: Resolution?, at: Date, escalationLevel: Int? = nil,
                evidence: Evidence? = nil, labels: [String: String]? = nil, annotations: [String: String]? = nil) {
        self.labels = labels
        self.annotations = annotations
        self.id = id
        self.alertID = alertID
        self.kind = kind
        self.from = from
        self.to = to
        self.value = value
        self.threshold = threshold
        self.samples = samples
        self.actor = actor
        self.note = note
        self.resolution = resolution
        self.at = at
        self.escalationLevel = escalationLevel
        self.evidence = evidence
    }
}
