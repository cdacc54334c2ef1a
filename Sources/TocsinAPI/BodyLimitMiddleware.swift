import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Refuses a declared body over the limit before reading it. Bodies without
/// a length are limited where they are collected.
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = TocsinRequestContext
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            if request.uri.path == "/api/metrics" { IngestMetrics.rejected(reason: "too_large") }
            throw APIError(.contentTooLarge, code: "payload_too_large",
                           message: "request body of \(length) bytes is larger than the limit of \(limit) bytes")
        }
        return try await next(request, context)
    }
}
