import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TocsinCore
import TocsinCrypto
import TocsinStore

/// `/monitoring`: the page, its assets, and sign-in with an API key.
struct DashboardRoutes {
    let store: Store
    let config: Configuration
    let assets: DashboardAssets
    let signInLimit: SignInLimiter

    static let cookieName = "tocsin_session"

    /// Applied to the page and its assets: only this origin's scripts,
    /// styles, images and API.
    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!:
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
            + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
    ]

    func register(on router: Router<TocsinRequestContext>) {
        router.get("monitoring") { request, _ in try self.serve("index.html", request: request, cache: "no-cache") }
        router.get("monitoring/assets/{file}") { request, context in
            guard let file = context.parameters.get("file") else { throw APIError.notFound("no such file") }
            return try self.serve(file, request: request, cache: file.hasSuffix(".js") ? "no-cache" : "public, max-age=300")
        }
        router.get("monitoring/session", use: currentSession)
        router.post("monitoring/session", use: signIn)
        router.delete("monitoring/session", use: signOut)
    }

    /// The page itself is revalidated every time; its modules too, so a
    /// deploy never mixes new and old modules in one page.
    func serve(_ name: String, request: Request, cache: String) throws -> Response {
        guard let asset = assets.assets[name] else { throw APIError.notFound("no such file") }
        var headers = Self.securityHeaders
        headers[.cacheControl] = cache
        headers[.eTag] = asset.etag
        if request.headers[.ifNoneMatch] == asset.etag {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = asset.contentType
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
    }

    func body(_ session: SessionRepository.Session) -> SessionBody {
        SessionBody(name: session.key.name, scopes: session.key.scopes, csrfToken: session.csrfToken,
                    expiresAt: session.expiresAt)
    }

    var secureCookie: Bool { config.publicURL?.lowercased().hasPrefix("https://") == true }

    func cookie(_ value: String, maxAge: Int) -> Cookie {
        Cookie(name: Self.cookieName, value: value, maxAge: maxAge, path: "/", secure: secureCookie, httpOnly: true,
               sameSite: .strict)
    }

    @Sendable func currentSession(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        guard let id = request.cookies[Self.cookieName]?.value, let session = try await store.sessions.find(id: id) else {
            throw APIError(.unauthorized, code: "unauthorized", message: "not signed in")
        }
        return try APIJSON.response(body(session))
    }

    @Sendable func signIn(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try await signInLimit.check(request, context: context)
        var body = try await JSONBody.read(request, context: context, allowed: ["key"])
        let key = body.string("key", required: true, maxLength: 200)
        try body.check()
        guard let key else { throw APIError.badRequest("invalid request body") }
        let record: ApiKeyRecord
        switch try await store.apiKeys.authenticate(key: key.trimmingCharacters(in: .whitespacesAndNewlines)) {
        case .valid(let found): record = found
        case .revoked: throw APIError(.unauthorized, code: "unauthorized", message: "this API key has been revoked")
        case .unknown: throw APIError(.unauthorized, code: "unauthorized", message: "invalid API key")
        }
        guard record.scopes.grants(.read) else {
            throw APIError(.forbidden, code: "forbidden", message: "this key cannot read the dashboard: it needs the read or admin scope")
        }
        let session = try await store.sessions.create(for: record, ttlSeconds: config.sessionTTLSeconds)
        context.logger.info("dashboard session opened", metadata: ["api_key": .string(record.name)])
        var response = try APIJSON.response(self.body(session))
        response.setCookie(cookie(session.id, maxAge: config.sessionTTLSeconds))
        return response
    }

    /// Sign-out needs the CSRF token: another site cannot sign you out.
    @Sendable func signOut(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        if let id = request.cookies[Self.cookieName]?.value, let session = try await store.sessions.find(id: id) {
            guard let token = request.headers[.csrfToken], Crypto.constantTimeEquals(token, session.csrfToken) else {
                throw APIError(.forbidden, code: "csrf_failed", message: "missing or wrong X-CSRF-Token")
            }
            try await store.sessions.delete(id: id)
        }
        var response = try APIJSON.response(["signed_out": true])
        response.setCookie(cookie("", maxAge: 0))
        return response
    }
}

extension HTTPField.Name {
    static let csrfToken = Self("X-CSRF-Token")!
}
