import Foundation
import TocsinCore
import TocsinStore

/// An alert as the API shows it.
struct AlertBody: Encodable, Sendable {
    var id: Int
    var rule: String
    var severity: Rule.Severity
    var status: AlertStatus
    var groupKey: String
    @NullEncoded var platform: String?
    @NullEncoded var value: Double?
    var threshold: Double
    var comparison: String
    var samples: Int
    var description: String
    @NullEncoded var runbookURL: String?
    var startedAt: Date
    @NullEncoded var firedAt: Date?
    @NullEncoded var lastEvaluatedAt: Date?
    @NullEncoded var acknowledgedAt: Date?
    @NullEncoded var acknowledgedBy: String?
    @NullEncoded var acknowledgeNote: String?
    @NullEncoded var resolvedAt: Date?
    @NullEncoded var resolvedBy: String?
    @NullEncoded var resolution: Resolution?
    @NullEncoded var resolveNote: String?
    var labels: [String: String]
    /// The open alert whose inhibit rule holds this one's notifications.
    @NullEncoded var inhibitedBy: Int?
    var groupLabels: [String: String]
    var source: AlertSource
    /// An external alert's fingerprint, annotations, generator URL, ends_at
    /// and last_received_at; null for a rule's alert.
    @NullEncoded var external: ExternalBody?

    struct ExternalBody: Encodable, Sendable {
        var fingerprint: String
        var annotations: [String: String]
        @NullEncoded var generatorURL: String?
        var endsAt: Date
        var lastReceivedAt: Date
        enum CodingKeys: String, CodingKey {
            case fingerprint, annotations
            case generatorURL = "generator_url", endsAt = "ends_at", lastReceivedAt = "last_received_at"
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, rule, severity, status, platform, value, threshold, comparison, samples, description, resolution, labels
        case source, external
        case inhibitedBy = "inhibited_by", groupLabels = "group_labels"
        case groupKey = "group_key", runbookURL = "runbook_url", startedAt = "started_at", firedAt = "fired_at"
        case lastEvaluatedAt = "last_evaluated_at", acknowledgedAt = "acknowledged_at", acknowledgedBy = "acknowledged_by"
        case acknowledgeNote = "acknowledge_note", resolvedAt = "resolved_at", resolvedBy = "resolved_by"
        case resolveNote = "resolve_note"
    }

    init(_ alert: Alert, inhibitedBy: Int? = nil) {
        self.inhibitedBy = inhibitedBy
        id = alert.id
        rule = alert.rule
        severity = alert.severity
        status = alert.status
        groupKey = alert.groupKey
        platform = alert.platform
        value = alert.value
        threshold = alert.threshold
        comparison = alert.comparison
        samples = alert.samples
        description = alert.description
        runbookURL = alert.runbookURL
        startedAt = alert.startedAt
        firedAt = alert.firedAt
        lastEvaluatedAt = alert.lastEvaluatedAt
        acknowledgedAt = alert.acknowledgedAt
        acknowledgedBy = alert.acknowledgedBy
        acknowledgeNote = alert.acknowledgeNote
        resolvedAt = alert.resolvedAt
        resolvedBy = alert.resolvedBy
        resolution = alert.resolution
        resolveNote = alert.resolveNote
        labels = alert.labels
        groupLabels = alert.groupLabels ?? [:]
        source = alert.source
        external = alert.external.map {
            ExternalBody(fingerprint: $0.fingerprint, annotations: $0.annotations, generatorURL: $0.generatorURL,
                         endsAt: $0.endsAt, lastReceivedAt: $0.lastReceivedAt)
        }
    }
}

/// One step of an alert's history.
struct TransitionBody: Encodable, Sendable {
    var id: Int
    var alertID: Int
    var transition: AlertTransition.Kind
    @NullEncoded var from: AlertStatus?
    var to: AlertStatus
    @NullEncoded var value: Double?
    var threshold: Double
    var samples: Int
    var actor: String
    @NullEncoded var note: String?
    @NullEncoded var resolution: Resolution?
    var at: Date
    @NullEncoded var escalationLevel: Int?
    @NullEncoded var evidence: Evidence?
    /// An external alert's evidence: its labels and annotations then.
    @NullEncoded var labels: [String: String]?
    @NullEncoded var annotations: [String: String]?

    enum CodingKeys: String, CodingKey {
        case id, transition, from, to, value, threshold, samples, actor, note, resolution, at, evidence, labels, annotations
        case alertID = "alert_id", escalationLevel = "escalation_level"
    }

    init(_ t: AlertTransition) {
        id = t.id
        alertID = t.alertID
        transition = t.kind
        from = t.from
        to = t.to
        value = t.value
        threshold = t.threshold
        samples = t.samples
        actor = t.actor
        note = t.note
        resolution = t.resolution
        at = t.at
        escalationLevel = t.escalationLevel
        evidence = t.evidence
        labels = t.labels
        annotations = t.annotations
    }
}

struct AlertPageBody: Encodable, Sendable {
    var alerts: [AlertBody]
    @NullEncoded var nextCursor: String?
    enum CodingKeys: String, CodingKey {
        case alerts
        case nextCursor = "next_cursor"
    }
}

struct DeliveriesBody: Encodable, Sendable {
    var alertID: Int
    var deliveries: [DeliveryBody]
    enum CodingKeys: String, CodingKey {
        case deliveries
        case alertID = "alert_id"
    }
}

struct AlertDetailBody: Encodable, Sendable {
    var alert: AlertBody
    var transitions: [TransitionBody]
}

/// One group of an evaluation.
struct GroupResultBody: Encodable, Sendable {
    var rule: String
    @NullEncoded var groupKey: String?
    @NullEncoded var value: Double?
    var samples: Int
    var outcome: EvaluationOutcome
    @NullEncoded var labels: [String: String]?
    @NullEncoded var evidence: Evidence?

    enum CodingKeys: String, CodingKey {
        case rule, value, samples, outcome, labels, evidence
        case groupKey = "group_key"
    }

    init(_ result: GroupResult) {
        rule = result.rule
        groupKey = result.groupKey
        value = result.value
        samples = result.samples
        outcome = result.outcome
        labels = result.labels
        evidence = result.evidence
    }
}
