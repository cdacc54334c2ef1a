import HTTPTypes
import Hummingbird

/// The usual protective headers on every response (errors included), unless
/// the route set its own (the dashboard's pages carry their CSP):
/// no MIME sniffing, no framing, no referrer, and a CSP that lets a JSON
/// answer opened in a browser run nothing. With an https `PUBLIC_URL`,
/// browsers are told to keep to https.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = TocsinRequestContext
    let https: Bool

    static let defaults: [(HTTPField.Name, String)] = [
        (.xContentTypeOptions, "nosniff"),
        (.xFrameOptions, "DENY"),
        (.referrerPolicy, "no-referrer"),
        (.contentSecurityPolicy, "default-src 'none'; frame-ancestors 'none'"),
        (.crossOriginResourcePolicy, "same-origin"),
    ]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        for (name, value) in Self.defaults where response.headers[name] == nil {
            response.headers[name] = value
        }
        if https, response.headers[.strictTransportSecurity] == nil {
            response.headers[.strictTransportSecurity] = "max-age=31536000"
        }
        return response
    }
}

extension HTTPField.Name {
    static let xFrameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
}
