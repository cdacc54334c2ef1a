import Foundation
import Hummingbird
import Logging
import TocsinStore

/// `/healthz` (the process is alive) and `/readyz` (it can serve: the
/// database answers and its schema is current). The reason a process is
/// not ready goes to its log; the answer says only that it is not.
struct HealthRoutes {
    let store: Store

    func register(on router: Router<TocsinRequestContext>) {
        router.get("healthz") { _, _ -> Response in
            try APIJSON.response(["status": "ok"])
        }
        router.get("readyz") { _, context -> Response in
            let reason: String
            do {
                let status = try await store.migrationStatus()
                guard let notCurrent = Migrator.notCurrentMessage(status) else {
                    return try APIJSON.response(["status": "ready"])
                }
                reason = notCurrent
            } catch {
                reason = "database unavailable: \(error)"
            }
            context.logger.warning("not ready", metadata: ["reason": .string(reason)])
            throw APIError(.serviceUnavailable, code: "not_ready", message: "not ready; the server log says why",
                           headers: [.retryAfter: "5"])
        }
    }
}
