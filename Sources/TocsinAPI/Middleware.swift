import Foundation
import HTTPTypes
import NIOCore
import Foundation
import Hummingbird
import Logging
import Synchronization
import TocsinStore

/// Takes the request id from `X-Request-Id` (when it is a sane token) or
/// makes one, puts it in every log line of the request and in the response.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = TocsinRequestContext
    let bodyLimit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = request.headers[.xRequestID].flatMap(Self.acceptable) ?? Crypto.hex(Crypto.randomBytes(8))
        context.requestID = id
        context.bodyLimit = bodyLimit
        context.logger[metadataKey: "hb.request.id"] = nil
        context.logger[metadataKey: "request.id"] = .string(id)
        var response = try await next(request, context)
        response.headers[.xRequestID] = id
        return response
    }

    static func acceptable(_ value: String) -> String? {
        guard (1...128).contains(value.utf8.count),
              value.utf8.allSatisfy({ byte in
                  (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                      || byte == 0x2D || byte == 0x5F || byte == 0x2E || byte == 0x3A
              })
        else { return nil }
        return value
    }
}

/// One log line per request: method, route, status, duration.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = TocsinRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.info("request", metadata: [
            "http.method": .string(request.method.rawValue),
            "http.route": .string(context.endpointPath ?? "NotFound"),
            "http.status": .stringConvertible(response.status.code),
            "duration_ms": .string(String(format: "%.2f", ms)),
        ])
        return response
    }
}

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
            if apiError.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(error)"])
            }
            return apiError.response()
        }
    }
}

/// The router's routes, filled in once every route is registered.
final class RouteTable: Sendable {
    private let entries = Mutex<[(segments: [String], method: String)]>([])

    func load(_ routes: [(path: String, method: String)]) {
        entries.withLock { $0 = routes.map { (Self.segments($0.path), $0.method) } }
    }

    static func segments(_ path: String) -> [String] { path.split(separator: "/").map(String.init) }

    /// The methods registered for paths matching `path` ("{x}" matches any segment).
    func methods(for path: String) -> [String] {
        let parts = Self.segments(path)
        return entries.withLock { entries in
            entries.filter { entry in
                entry.segments.count == parts.count
                    && zip(entry.segments, parts).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
            }.map(\.method)
        }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }.sorted()
    }
}

/// Refuses a declared body over the limit before reading it. Bodies without
/// a length are limited where they are collected.
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = TocsinRequestContext
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            if request.uri.path == "/api/metrics" { Telemetry.ingestRejected(reason: "too_large") }
            throw APIError(.contentTooLarge, code: "payload_too_large",
                           message: "request body of \(length) bytes is larger than the limit of \(limit) bytes")
        }
        return try await next(request, context)
    }
}

/// Authenticates `/api/…` requests: `Authorization: Bearer <key>`, or the
/// dashboard's session cookie — then every request that changes something
/// must carry the session's `X-CSRF-Token`. Scope checks happen in each
/// route (`context.require(.read)`).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = TocsinRequestContext
    let keys: ApiKeyStore
    let sessions: SessionStore

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw Self.unauthorized("malformed Authorization header: expected Bearer <key>")
            }
            let key = parts[1].trimmingCharacters(in: .whitespaces)
            switch try await keys.authenticate(key: key) {
            case .valid(let record):
                context.identity = Identity(keyID: record.id, name: record.name, scopes: record.scopes)
            case .revoked:
                throw Self.unauthorized("this API key has been revoked")
            case .unknown:
                throw Self.unauthorized("invalid API key")
            }
        } else if let id = request.cookies[DashboardRoutes.cookieName]?.value {
            guard let session = try await sessions.find(id: id) else {
                throw Self.unauthorized("the dashboard session has expired; sign in again")
            }
            if ![.get, .head, .options].contains(request.method) {
                guard let token = request.headers[.csrfToken], Crypto.constantTimeEquals(token, session.csrfToken) else {
                    throw APIError(.forbidden, code: "csrf_failed", message: "missing or wrong X-CSRF-Token")
                }
            }
            context.identity = Identity(keyID: session.key.id, name: session.key.name, scopes: session.key.scopes,
                                        sessionID: Crypto.sha256Hex(id))
        } else {
            throw Self.unauthorized("missing API key: send Authorization: Bearer <key>")
        }
        context.logger[metadataKey: "api_key"] = .string(context.identity!.name)
        return try await next(request, context)
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(.unauthorized, code: "unauthorized", message: message, headers: [.wwwAuthenticate: "Bearer"])
    }
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-Id")!
}
