import Foundation
import HTTPTypes
import Hummingbird
import Logging
import TocsinCrypto
import TocsinStore

/// Authenticates `/api/…` requests: `Authorization: Bearer <key>`, or the
/// dashboard's session cookie — then every request that changes something
/// must carry the session's `X-CSRF-Token`. Scopes are checked by the
/// routes' context types (`ScopedContext`).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = TocsinRequestContext
    let keys: APIKeyRepository
    let sessions: SessionRepository
    let rateLimiter: KeyRateLimiter
    /// Local addresses on which `POST /api/v2/alerts` needs no key
    /// (ALERTS_UNAUTHENTICATED_ADDRESSES): such a request gets an identity
    /// with the `alerts` scope only.
    var unauthenticatedAlertAddresses: Set<String> = []

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.rateLimiter = rateLimiter
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw Self.unauthorized("malformed Authorization header: expected Bearer <key>")
            }
            let key = parts[1].trimmingCharacters(in: .whitespaces)
            switch try await keys.authenticate(key: key) {
            case .valid(let record):
                context.authenticated = Identity(keyID: record.id, name: record.name, scopes: record.scopes)
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
            context.authenticated = Identity(keyID: session.key.id, name: session.key.name, scopes: session.key.scopes,
                                        sessionID: Crypto.sha256Hex(id))
        } else if request.method == .post, request.uri.path == "/api/v2/alerts",
                  let local = context.localAddress, unauthenticatedAlertAddresses.contains(local) {
            context.authenticated = Identity(keyID: 0, name: "unauthenticated@\(local)", scopes: [.alerts])
        } else {
            throw Self.unauthorized("missing API key: send Authorization: Bearer <key>")
        }
        context.logger[metadataKey: "api_key"] = .string(context.authenticated!.name)
        return try await next(request, context)
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(.unauthorized, code: "unauthorized", message: message, headers: [.wwwAuthenticate: "Bearer"])
    }
}
