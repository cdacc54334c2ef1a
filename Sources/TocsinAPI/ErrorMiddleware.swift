import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Turns every error into the JSON error body. Errors that are not the
/// client's fault are logged with the request id. A path that exists with
/// other methods answers 405 with `Allow`.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = TocsinRequestContext
    var routes: RouteTable?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var apiError = APIError.from(error, requestID: context.requestID)
            if apiError.status == .notFound, context.endpointPath == "NotFound",
               let allowed = routes?.methods(for: request.uri.path), !allowed.isEmpty {
                apiError = APIError(.methodNotAllowed, code: "method_not_allowed",
                                    message: "\(request.method.rawValue) is not allowed here; use \(allowed.joined(separator: ", "))",
                                    headers: [.allow: allowed.joined(separator: ", ")])
            }
            if apiError.status == .serviceUnavailable {
                // The database is away (a failover, a restart) or a read ran out
                // of time: expected now and then, and answered with Retry-After.
                context.logger.warning("request answered 503", metadata: ["error": "\(error)"])
            } else if apiError.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(error)"])
            }
            return apiError.response()
        }
    }
}
