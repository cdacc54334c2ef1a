import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// One log line per request: method, route, status, duration. With
/// `quiet` (`ACCESS_LOG=errors`), only requests that did not succeed.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = TocsinRequestContext
    var quiet = false

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        if quiet && response.status.code < 400 { return response }
        context.logger.info("request", metadata: [
            "http.method": .string(request.method.rawValue),
            "http.route": .string(context.endpointPath ?? "NotFound"),
            "http.status": .stringConvertible(response.status.code),
            "duration_ms": .string(String(format: "%.2f", ms)),
        ])
        return response
    }
}
