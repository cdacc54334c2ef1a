import Foundation
import HTTPTypes
import Hummingbird
import TocsinCore
import TocsinStore

/// The outbox (dead letters and retries), the applied channels (redacted)
/// and their versions.
struct NotificationRoutes {
    let store: Store

    func register(read: RouterGroup<ReadContext>, admin: RouterGroup<AdminContext>) {
        read.get("notifications", use: list)
        read.get("notifications/channels", use: channels)
        read.get("notifications/versions", use: versions)
        admin.post("notifications/{id}/retry", use: retry)
    }

    @Sendable func list(_ request: Request, context: ReadContext) async throws -> Response {
        var query = QueryReader(request)
        var status: NotificationStatus?
        if let text = query.raw("status") {
            status = NotificationStatus(rawValue: text)
            if status == nil {
                query.issue("status", "must be one of \(NotificationStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        let alertID = query.integer("alert_id", 1...Int(Int64.max))
        let limit = query.integer("limit", 1...1000) ?? 100
        var cursor: Int?
        if let text = query.raw("cursor") {
            cursor = Int(text)
            if cursor == nil || cursor! < 1 { query.issue("cursor", "is not a cursor returned by this endpoint") }
        }
        try query.check()
        let records = try await store.outbox.list(status: status, alertID: alertID, limit: limit + 1, before: cursor)
        let page = Array(records.prefix(limit))
        return try APIJSON.response(NotificationPageBody(
            notifications: page.map(NotificationBody.init),
            nextCursor: records.count > limit ? page.last.map { String($0.id) } : nil))
    }

    @Sendable func channels(_ request: Request, context: ReadContext) async throws -> Response {
        let config = try await store.config.activeNotify().config
        return try APIJSON.response(["channels": config.channels.map {
            ChannelBody(name: $0.name, kind: $0.kind, destination: $0.destination, ratePerSecond: $0.ratePerSecond,
                        burst: $0.burst)
        }])
    }

    @Sendable func versions(_ request: Request, context: ReadContext) async throws -> Response {
        var query = QueryReader(request)
        let limit = query.integer("limit", 1...1000) ?? 100
        try query.check()
        let versions = try await store.config.versions(.notify, limit: limit)
        return try APIJSON.response(["versions": versions.map(ConfigVersionBody.init)])
    }

    @Sendable func retry(_ request: Request, context: AdminContext) async throws -> Response {
        let id = try PathParameter.id(context.parameters.get("id"), what: "notification")
        do {
            let record = try await store.outbox.retry(id: id)
            context.logger.info("notification queued again", metadata: ["notification.id": "\(id)"])
            return try APIJSON.response(["notification": NotificationBody(record)])
        } catch OutboxRepository.RetryError.notFound {
            throw APIError.notFound("no notification with id \(id)")
        } catch OutboxRepository.RetryError.notDead(let status) {
            throw APIError.conflict("only dead notifications can be retried; this one is \(status.rawValue)")
        }
    }
}
