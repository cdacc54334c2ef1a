import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TocsinCore
import TocsinEngine
import TocsinStore

/// Alerts: the list (JSON or CSV), one alert with its history, and the
/// manual actions.
struct AlertRoutes {
    let store: Store

    func register(read: RouterGroup<ReadContext>, admin: RouterGroup<AdminContext>) {
        read.get("monitoring/alerts", use: listAlerts)
        read.get("monitoring/alerts/{id}", use: getAlert)
        read.get("monitoring/alerts/{id}/deliveries", use: deliveries)
        admin.post("monitoring/alerts", use: actOnAlert)
    }

    @Sendable func listAlerts(_ request: Request, context: ReadContext) async throws -> Response {
        var query = QueryReader(request)
        var filter = AlertRepository.Filter()
        filter.statuses = query.list("status", AlertStatus.self)
        filter.severities = query.list("severity", Rule.Severity.self)
        filter.rule = query.string("rule", maxLength: 64)
        filter.platform = query.platform()
        if query.hasTimeRange(), let range = query.timeRange(now: store.clock.now()) {
            filter.since = range.since
            filter.until = range.until
        }
        filter.limit = query.integer("limit", 1...1000) ?? 100
        if let cursor = query.string("cursor", maxLength: 64) {
            if AlertRepository.decodeCursor(cursor) == nil { query.issue("cursor", "is not a cursor returned by this endpoint") }
            filter.cursor = cursor
        }
        try query.check()
        let page = try await store.alerts.list(filter)
        guard request.wantsCSV else {
            let inhibited = try await store.outbox.inhibitions(alertIDs: page.alerts.filter(\.status.isOpen).map(\.id))
            return try APIJSON.response(AlertPageBody(alerts: page.alerts.map { AlertBody($0, inhibitedBy: inhibited[$0.id]) },
                                                      nextCursor: page.nextCursor))
        }
        var text = CSV.row(["id", "rule", "severity", "status", "group_key", "platform", "value", "threshold", "samples",
                            "started_at", "fired_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
                            "resolution"])
        for a in page.alerts {
            text += CSV.row([String(a.id), a.rule, a.severity.rawValue, a.status.rawValue, a.groupKey, a.platform,
                             a.value.map { String($0) }, String(a.threshold), String(a.samples), RFC3339.format(a.startedAt),
                             a.firedAt.map(RFC3339.format), a.acknowledgedAt.map(RFC3339.format), a.acknowledgedBy,
                             a.resolvedAt.map(RFC3339.format), a.resolvedBy, a.resolution?.rawValue])
        }
        var headers: HTTPFields = [.contentType: "text/csv; charset=utf-8", .cacheControl: "no-store",
                                   .contentDisposition: "attachment; filename=\"alerts.csv\""]
        if let next = page.nextCursor { headers[.xNextCursor] = next }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    @Sendable func getAlert(_ request: Request, context: ReadContext) async throws -> Response {
        let id = try PathParameter.id(context.parameters.get("id"), what: "alert")
        guard let (alert, transitions) = try await store.alerts.get(id: id) else {
            throw APIError.notFound("no alert with id \(id)")
        }
        let inhibited = alert.status.isOpen ? try await store.outbox.inhibitions(alertIDs: [id])[id] : nil
        return try APIJSON.response(AlertDetailBody(alert: AlertBody(alert, inhibitedBy: inhibited),
                                                    transitions: transitions.map(TransitionBody.init)))
    }

    /// The alert's delivery ledger: for each route and channel, what
    /// happened and why, oldest first.
    @Sendable func deliveries(_ request: Request, context: ReadContext) async throws -> Response {
        let id = try PathParameter.id(context.parameters.get("id"), what: "alert")
        var query = QueryReader(request)
        let limit = query.integer("limit", 1...5000) ?? 1000
        try query.check()
        guard let entries = try await store.outbox.deliveries(alertID: id, limit: limit) else {
            throw APIError.notFound("no alert with id \(id)")
        }
        return try APIJSON.response(DeliveriesBody(alertID: id, deliveries: entries.map(DeliveryBody.init)))
    }

    @Sendable func actOnAlert(_ request: Request, context: AdminContext) async throws -> Response {
        var body = try await JSONBody.read(request, context: context, allowed: ["id", "action", "note"])
        let id = body.integer("id", required: true, range: 1...JSONBody.maxInteger)
        let actionText = body.string("action", required: true, maxLength: 32)
        let note = body.string("note", maxLength: 2000)
        var action: AlertRepository.Action?
        if let actionText {
            action = AlertRepository.Action(rawValue: actionText)
            if action == nil { body.issues.append(ValidationIssue(field: "action", reason: "must be acknowledge or resolve")) }
        }
        try body.check()
        guard let id, let action else { throw APIError.badRequest("invalid request body") }
        do {
            let alert = try await store.alerts.act(action, alertID: id, actor: context.identity.name, note: note)
            EngineMetrics.transition(action == .acknowledge ? "acknowledged" : "resolved")
            context.logger.info("alert updated", metadata: ["alert.id": "\(id)", "action": .string(action.rawValue)])
            return try APIJSON.response(["alert": AlertBody(alert)])
        } catch AlertRepository.ActionError.notFound {
            throw APIError.notFound("no alert with id \(id)")
        } catch AlertRepository.ActionError.conflict(let reason) {
            throw APIError.conflict(reason)
        }
    }
}

/// Path parameters, checked like query parameters.
enum PathParameter {
    /// A positive integer id: anything else is a 400.
    static func id(_ text: String?, what: String) throws -> Int {
        guard let text, let id = Int(text), id >= 1 else {
            throw APIError.badRequest("the \(what) id must be a positive integer")
        }
        return id
    }

    /// A name, percent-decoded, at most `maxLength` bytes.
    static func name(_ text: String?, maxLength: Int = 64) -> String? {
        guard let text, let decoded = text.removingPercentEncoding, decoded.utf8.count <= maxLength,
              !decoded.utf8.contains(0)
        else { return nil }
        return decoded
    }
}
