import Foundation
import HTTPTypes
import NIOCore
import Hummingbird
import PostgresClient
import TocsinStore

/// `/healthz` (the process is alive) and `/readyz` (it can serve: the
/// database answers and its schema is current).
struct HealthRoutes {
    let store: Store

    func register(on router: Router<TocsinRequestContext>) {
        router.get("healthz") { _, _ -> Response in
            try APIJSON.response(["status": "ok"])
        }
        router.get("readyz") { _, _ -> Response in
            let status: MigrationStatus
            do {
                status = try await store.migrator.status(pool: store.pool)
            } catch {
                throw APIError(.serviceUnavailable, code: "not_ready", message: "database unavailable: \(error)")
            }
            if let reason = Migrator.notCurrentMessage(status) {
                throw APIError(.serviceUnavailable, code: "not_ready", message: reason)
            }
            return try APIJSON.response(["status": "ready"])
        }
    }
}
