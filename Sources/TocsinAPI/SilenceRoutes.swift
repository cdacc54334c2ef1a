import Foundation
import HTTPTypes
import Hummingbird
import TocsinCore
import TocsinStore

/// Silences: listed, created and ended.
struct SilenceRoutes {
    let store: Store

    func register(read: RouterGroup<ReadContext>, admin: RouterGroup<AdminContext>) {
        read.get("silences", use: list)
        admin.post("silences", use: create)
        admin.delete("silences/{id}", use: delete)
    }

    @Sendable func list(_ request: Request, context: ReadContext) async throws -> Response {
        var query = QueryReader(request)
        let all = query.bool("include_expired") ?? false
        try query.check()
        let now = store.clock.now()
        return try APIJSON.response(["silences": try await store.silences.list(includeExpired: all).map { SilenceBody($0, now: now) }])
    }

    @Sendable func create(_ request: Request, context: AdminContext) async throws -> Response {
        var body = try await JSONBody.read(request, context: context,
                                           allowed: ["rule", "platform", "severity", "labels", "starts_at", "ends_at", "comment",
                                                     "recurrence"])
        let rule = body.string("rule", maxLength: 64)
        let platform = body.string("platform", maxLength: 64)
        let severityText = body.string("severity", maxLength: 16)
        let comment = body.string("comment", required: true, maxLength: 2000)
        let starts = body.timestamp("starts_at")
        let ends = body.timestamp("ends_at", required: true)
        let labels = body.stringMap("labels") ?? [:]
        var recurrence: Recurrence?
        if let raw = body.raw("recurrence") {
            let parsed = Recurrence.parse(json: raw)
            recurrence = parsed.recurrence
            body.issues += parsed.problems.map { ValidationIssue(field: $0.field, reason: $0.reason) }
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
        if rule == nil && platform == nil && severity == nil && labels.isEmpty && body.issues.isEmpty {
            body.issues.append(ValidationIssue(field: "rule", reason: "give at least one matcher: rule, platform, severity or labels"))
        }
        let now = store.clock.now()
        if let ends, ends <= max(now, starts ?? now) {
            body.issues.append(ValidationIssue(field: "ends_at", reason: "must be after starts_at and in the future"))
        }
        try body.check()
        guard let comment, let ends else { throw APIError.badRequest("invalid request body") }
        let silence = try await store.silences.create(rule: rule, platform: platform, severity: severity, labels: labels,
                                                      startsAt: starts, endsAt: ends, comment: comment,
                                                      createdBy: context.identity.name, recurrence: recurrence)
        context.logger.info("silence created", metadata: ["silence.id": "\(silence.id)"])
        // Active as of now, after the insert (whose starts_at is the database's now).
        return try APIJSON.response(["silence": SilenceBody(silence, now: max(store.clock.now(), silence.startsAt))], status: .created)
    }

    @Sendable func delete(_ request: Request, context: AdminContext) async throws -> Response {
        let id = try PathParameter.id(context.parameters.get("id"), what: "silence")
        guard try await store.silences.delete(id: id) else {
            throw APIError.notFound("no active silence with id \(id)")
        }
        context.logger.info("silence ended", metadata: ["silence.id": "\(id)"])
        return try APIJSON.response(["deleted": id])
    }
}
