import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TocsinCore
import TocsinStore

/// An HTTP error with Tocsin's body:
/// `{"error": {"code": "...", "message": "...", "details": [...]}}`.
public struct APIError: Error, HTTPResponseError, Sendable {
    /// What is wrong and where: index (of an event in a batch), field, reason.
    public typealias Detail = ValidationIssue

    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var details: [Detail]
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, details: [Detail] = [], headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
    }

    public static func badRequest(_ message: String, details: [Detail] = []) -> APIError {
        APIError(.badRequest, code: "bad_request", message: message, details: details)
    }

    public static func notFound(_ message: String) -> APIError {
        APIError(.notFound, code: "not_found", message: message)
    }

    public static func conflict(_ message: String) -> APIError {
        APIError(.conflict, code: "conflict", message: message)
    }

    private struct Body: Encodable {
        struct Inner: Encodable {
            var code: String
            var message: String
            var details: [Detail]?
        }
        var error: Inner
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    public func response() -> Response {
        let body = Body(error: .init(code: code, message: message, details: details.isEmpty ? nil : details))
        let data = (try? APIJSON.encoder.encode(body)) ?? Data(#"{"error":{"code":"internal_error","message":"error"}}"#.utf8)
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Maps any error to the response a client gets. Unexpected errors are a
    /// 500 that names the request id only; database outages are a 503.
    static func from(_ error: any Error, requestID: String) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as HTTPError:
            return APIError(error.status, code: code(for: error.status),
                             message: error.body ?? message(for: error.status), headers: error.headers)
        case is NIOTooManyBytesError:
            return payloadTooLarge
        case _ where DatabaseFailure(error) == .timeout:
            return APIError(.serviceUnavailable, code: "query_timeout",
                            message: "the query took longer than the read timeout; narrow the request or retry later (request \(requestID))",
                            headers: [.retryAfter: "5"])
        case _ where DatabaseFailure(error) != nil:
            return APIError(.serviceUnavailable, code: "database_unavailable",
                            message: "the database is unavailable; retry later (request \(requestID))",
                            headers: [.retryAfter: "5"])
        default:
            return APIError(.internalServerError, code: "internal_error",
                            message: "internal error; the server log has details under request id \(requestID)")
        }
    }

    static let payloadTooLarge = APIError(.contentTooLarge, code: "payload_too_large", message: "request body is larger than the limit")

    static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "bad_request"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 409: "conflict"
        case 413: "payload_too_large"
        case 415: "unsupported_media_type"
        case 429: "too_many_requests"
        case 503: "unavailable"
        default: status.code >= 500 ? "internal_error" : "error"
        }
    }

    static func message(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: "no such route"
        default: status.reasonPhrase.lowercased()
        }
    }
}

extension Request {
    /// CSV when asked with `format=csv` or `Accept: text/csv`.
    var wantsCSV: Bool {
        if let format = uri.queryParameters.get("format") { return format.lowercased() == "csv" }
        return headers[.accept]?.lowercased().contains("text/csv") == true
    }
}
