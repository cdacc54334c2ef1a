import Foundation
import HTTPTypes
import Hummingbird
import TocsinCore
import TocsinStore

/// The outbox (dead letters and retries), channels (redacted) and silences.
struct NotificationRoutes {
    let store: Store
    let notify: NotifyConfig

    func register(on api: RouterGroup<TocsinRequestContext>) {
        api.get("notifications", use: list)
        api.get("notifications/channels", use: channels)
        api.post("notifications/{id}/retry", use: retry)
        api.get("silences", use: listSilences)
        api.post("silences", use: createSilence)
        api.delete("silences/{id}", use: deleteSilence)
    }

    static let statuses = ["pending", "sent", "dead", "silenced", "dropped"]

    @Sendable func list(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        let query = request.uri.queryParameters
        var issues: [ValidationIssue] = []
        let status = query.get("status")
        if let status, !Self.statuses.contains(status) {
            issues.append(ValidationIssue(field: "status", reason: "must be one of \(Self.statuses.joined(separator: ", "))"))
        }
        var alertID: Int?
        if let text = query.get("alert_id") {
            alertID = Int(text)
            if alertID == nil { issues.append(ValidationIssue(field: "alert_id", reason: "must be an integer")) }
        }
        var limit = 100
        if let text = query.get("limit") {
            if let value = Int(text), (1...1000).contains(value) { limit = value } else {
                issues.append(ValidationIssue(field: "limit", reason: "must be an integer from 1 to 1000"))
            }
        }
        var cursor: Int?
        if let text = query.get("cursor") {
            cursor = Int(text)
            if cursor == nil { issues.append(ValidationIssue(field: "cursor", reason: "is not a cursor returned by this endpoint")) }
        }
        if !issues.isEmpty { throw APIError.badRequest("invalid query", details: issues) }
        let records = try await store.notifications.list(status: status, alertID: alertID, limit: limit + 1, before: cursor)
        struct Body: Encodable {
            var notifications: [NotificationRecord]
            var nextCursor: String?
            enum CodingKeys: String, CodingKey {
                case notifications
                case nextCursor = "next_cursor"
            }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(notifications, forKey: .notifications)
                try c.encode(nextCursor, forKey: .nextCursor)
            }
        }
        let page = Array(records.prefix(limit))
        return try APIJSON.response(Body(notifications: page,
                                         nextCursor: records.count > limit ? page.last.map { String($0.id) } : nil))
    }

    @Sendable func channels(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        struct Channel: Encodable {
            var name: String
            var kind: String
            var destination: String
            var rate_per_second: Double
            var burst: Int
        }
        return try APIJSON.response(["channels": notify.channels.map {
            Channel(name: $0.name, kind: $0.kind.rawValue, destination: $0.redactedDestination,
                    rate_per_second: $0.ratePerSecond, burst: $0.burst)
        }])
    }

    @Sendable func retry(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.admin)
        guard let id = context.parameters.get("id").flatMap(Int.init) else {
            throw APIError.badRequest("the notification id must be an integer")
        }
        do {
            let record = try await store.notifications.retry(id: id)
            context.logger.info("notification queued again", metadata: ["notification.id": "\(id)"])
            return try APIJSON.response(["notification": record])
        } catch NotificationStore.RetryError.notFound {
            throw APIError.notFound("no notification with id \(id)")
        } catch NotificationStore.RetryError.notDead(let status) {
            throw APIError.conflict("only dead notifications can be retried; this one is \(status)")
        }
    }

    // MARK: Silences

    struct SilenceView: Encodable {
        var silence: Silence
        var now: Double
        enum Keys: String, CodingKey {
            case id, rule, platform, severity, labels, comment, active
            case startsAt = "starts_at", endsAt = "ends_at", createdBy = "created_by", deleted
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(silence.id, forKey: .id)
            try c.encode(silence.rule, forKey: .rule)
            try c.encode(silence.platform, forKey: .platform)
            try c.encode(silence.severity?.rawValue, forKey: .severity)
            try c.encode(silence.labels, forKey: .labels)
            try c.encode(RFC3339.format(silence.startsAt), forKey: .startsAt)
            try c.encode(RFC3339.format(silence.endsAt), forKey: .endsAt)
            try c.encode(silence.comment, forKey: .comment)
            try c.encode(silence.createdBy, forKey: .createdBy)
            try c.encode(silence.deleted, forKey: .deleted)
            try c.encode(silence.isActive(at: now), forKey: .active)
        }
    }

    @Sendable func listSilences(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        let all = request.uri.queryParameters.get("include_expired") == "true"
        let now = store.clock.now()
        return try APIJSON.response(["silences": try await store.silences.list(includeExpired: all).map { SilenceView(silence: $0, now: now) }])
    }

    @Sendable func createSilence(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        let identity = try context.require(.admin)
        var body = try await JSONBody.read(request, context: context,
                                           allowed: ["rule", "platform", "severity", "labels", "starts_at", "ends_at", "comment"])
        let rule = body.string("rule", maxLength: 64)
        let platform = body.string("platform", maxLength: 64)
        let severityText = body.string("severity")
        let comment = body.string("comment", required: true, maxLength: 2000)
        let startsText = body.string("starts_at")
        let endsText = body.string("ends_at", required: true)
        var labels: [String: String] = [:]
        if let raw = body.fields["labels"], !(raw is NSNull) {
            if let map = raw as? [String: String] {
                labels = map
                if map.count > 32 {
                    body.issues.append(ValidationIssue(field: "labels", reason: "at most 32 label matchers"))
                } else if map.contains(where: { $0.key.isEmpty || $0.key.count > 256 || $0.value.count > 256 }) {
                    body.issues.append(ValidationIssue(field: "labels", reason: "label names are 1 to 256 characters, values at most 256"))
                } else if map.contains(where: { $0.key.utf8.contains(0) || $0.value.utf8.contains(0) }) {
                    body.issues.append(ValidationIssue(field: "labels", reason: "must not contain NUL (U+0000)"))
                }
            } else {
                body.issues.append(ValidationIssue(field: "labels", reason: "must be an object of string values"))
            }
        }
        var severity: Rule.Severity?
        if let severityText {
            severity = Rule.Severity(rawValue: severityText)
            if severity == nil { body.issues.append(ValidationIssue(field: "severity", reason: "must be warning, error or critical")) }
        }
        if let platform, !PlatformName.isValid(platform) {
            body.issues.append(ValidationIssue(field: "platform", reason: "is not a valid platform label"))
        }
        if let comment, comment.trimmingCharacters(in: .whitespaces).isEmpty {
            body.issues.append(ValidationIssue(field: "comment", reason: "must say why"))
        }
        if rule == nil && platform == nil && severity == nil && labels.isEmpty {
            body.issues.append(ValidationIssue(field: "rule", reason: "give at least one matcher: rule, platform, severity or labels"))
        }
        let now = store.clock.now()
        var starts: Double?
        if let startsText {
            starts = RFC3339.parse(startsText)
            if starts == nil { body.issues.append(ValidationIssue(field: "starts_at", reason: "must be an RFC 3339 timestamp")) }
        }
        var ends: Double?
        if let endsText {
            ends = RFC3339.parse(endsText)
            if ends == nil {
                body.issues.append(ValidationIssue(field: "ends_at", reason: "must be an RFC 3339 timestamp"))
            } else if ends! <= max(now, starts ?? now) {
                body.issues.append(ValidationIssue(field: "ends_at", reason: "must be after starts_at and in the future"))
            }
        }
        try body.check()
        guard let comment, let ends else { throw APIError.badRequest("invalid request body") }
        let silence = try await store.silences.create(rule: rule, platform: platform, severity: severity, labels: labels,
                                                      startsAt: starts, endsAt: ends, comment: comment, createdBy: identity.name)
        context.logger.info("silence created", metadata: ["silence.id": "\(silence.id)"])
        return try APIJSON.response(["silence": SilenceView(silence: silence, now: now)], status: .created)
    }

    @Sendable func deleteSilence(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.admin)
        guard let id = context.parameters.get("id").flatMap(Int.init) else {
            throw APIError.badRequest("the silence id must be an integer")
        }
        guard try await store.silences.delete(id: id) else {
            throw APIError.notFound("no active silence with id \(id)")
        }
        context.logger.info("silence ended", metadata: ["silence.id": "\(id)"])
        return try APIJSON.response(["deleted": id])
    }
}
