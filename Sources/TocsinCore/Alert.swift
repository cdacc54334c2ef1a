/// An alert as the API shows it and the notifications describe it.
public struct Alert: Sendable, Equatable, Codable {
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
    public var startedAt: Double
    public var firedAt: Double?
    public var lastEvaluatedAt: Double?
    public var acknowledgedAt: Double?
    public var acknowledgedBy: String?
    public var acknowledgeNote: String?
    public var resolvedAt: Double?
    public var resolvedBy: String?
    public var resolution: Resolution?
    public var resolveNote: String?
    public var labels: [String: String]

    public init(
        id: Int, rule: String, severity: Rule.Severity, status: AlertStatus, groupKey: String, platform: String?,
        value: Double?, threshold: Double, comparison: String, samples: Int, description: String, runbookURL: String?,
        startedAt: Double, firedAt: Double?, lastEvaluatedAt: Double?, acknowledgedAt: Double?, acknowledgedBy: String?,
        acknowledgeNote: String?, resolvedAt: Double?, resolvedBy: String?, resolution: Resolution?, resolveNote: String?,
        labels: [String: String]
    ) {
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
    }

    enum CodingKeys: String, CodingKey {
        case id, rule, severity, status, platform, value, threshold, comparison, samples, description, resolution, labels
        case groupKey = "group_key"
        case runbookURL = "runbook_url"
        case startedAt = "started_at"
        case firedAt = "fired_at"
        case lastEvaluatedAt = "last_evaluated_at"
        case acknowledgedAt = "acknowledged_at"
        case acknowledgedBy = "acknowledged_by"
        case acknowledgeNote = "acknowledge_note"
        case resolvedAt = "resolved_at"
        case resolvedBy = "resolved_by"
        case resolveNote = "resolve_note"
    }

    /// Timestamps as RFC 3339; absent values as explicit nulls.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(rule, forKey: .rule)
        try c.encode(severity, forKey: .severity)
        try c.encode(status, forKey: .status)
        try c.encode(groupKey, forKey: .groupKey)
        try c.encode(platform, forKey: .platform)
        try c.encode(value, forKey: .value)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(comparison, forKey: .comparison)
        try c.encode(samples, forKey: .samples)
        try c.encode(description, forKey: .description)
        try c.encode(runbookURL, forKey: .runbookURL)
        try c.encode(RFC3339.format(startedAt), forKey: .startedAt)
        try c.encode(firedAt.map(RFC3339.format), forKey: .firedAt)
        try c.encode(lastEvaluatedAt.map(RFC3339.format), forKey: .lastEvaluatedAt)
        try c.encode(acknowledgedAt.map(RFC3339.format), forKey: .acknowledgedAt)
        try c.encode(acknowledgedBy, forKey: .acknowledgedBy)
        try c.encode(acknowledgeNote, forKey: .acknowledgeNote)
        try c.encode(resolvedAt.map(RFC3339.format), forKey: .resolvedAt)
        try c.encode(resolvedBy, forKey: .resolvedBy)
        try c.encode(resolution, forKey: .resolution)
        try c.encode(resolveNote, forKey: .resolveNote)
        try c.encode(labels, forKey: .labels)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func time(_ key: CodingKeys) throws -> Double? {
            try c.decodeIfPresent(String.self, forKey: key).flatMap(RFC3339.parse)
        }
        id = try c.decode(Int.self, forKey: .id)
        rule = try c.decode(String.self, forKey: .rule)
        severity = try c.decode(Rule.Severity.self, forKey: .severity)
        status = try c.decode(AlertStatus.self, forKey: .status)
        groupKey = try c.decode(String.self, forKey: .groupKey)
        platform = try c.decodeIfPresent(String.self, forKey: .platform)
        value = try c.decodeIfPresent(Double.self, forKey: .value)
        threshold = try c.decode(Double.self, forKey: .threshold)
        comparison = try c.decode(String.self, forKey: .comparison)
        samples = try c.decode(Int.self, forKey: .samples)
        description = try c.decode(String.self, forKey: .description)
        runbookURL = try c.decodeIfPresent(String.self, forKey: .runbookURL)
        startedAt = try time(.startedAt) ?? 0
        firedAt = try time(.firedAt)
        lastEvaluatedAt = try time(.lastEvaluatedAt)
        acknowledgedAt = try time(.acknowledgedAt)
        acknowledgedBy = try c.decodeIfPresent(String.self, forKey: .acknowledgedBy)
        acknowledgeNote = try c.decodeIfPresent(String.self, forKey: .acknowledgeNote)
        resolvedAt = try time(.resolvedAt)
        resolvedBy = try c.decodeIfPresent(String.self, forKey: .resolvedBy)
        resolution = try c.decodeIfPresent(Resolution.self, forKey: .resolution)
        resolveNote = try c.decodeIfPresent(String.self, forKey: .resolveNote)
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
    }
}

/// One step in an alert's life, as recorded in `alert_events`.
public struct AlertTransition: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case pending, fired, acknowledged, resolved
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
    public var at: Double

    public init(id: Int, alertID: Int, kind: Kind, from: AlertStatus?, to: AlertStatus, value: Double?, threshold: Double,
                samples: Int, actor: String, note: String?, resolution: Resolution?, at: Double) {
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
    }

    enum CodingKeys: String, CodingKey {
        case id, from, to, value, threshold, samples, actor, note, resolution, at
        case alertID = "alert_id"
        case kind = "transition"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(alertID, forKey: .alertID)
        try c.encode(kind, forKey: .kind)
        try c.encode(from, forKey: .from)
        try c.encode(to, forKey: .to)
        try c.encode(value, forKey: .value)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(samples, forKey: .samples)
        try c.encode(actor, forKey: .actor)
        try c.encode(note, forKey: .note)
        try c.encode(resolution, forKey: .resolution)
        try c.encode(RFC3339.format(at), forKey: .at)
    }
}
