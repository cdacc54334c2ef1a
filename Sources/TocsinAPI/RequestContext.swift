import Foundation
import Hummingbird
import Logging
import TocsinCore

/// Who made a request: the API key (or dashboard session) and its scopes.
public struct Identity: Sendable, Equatable {
    public var keyID: Int
    public var name: String
    public var scopes: [Scope]
    /// The SHA-256 of the session id, when the request came with a dashboard
    /// session cookie.
    public var sessionID: String?
}

/// The per-request context of every route: request id, body limit, and the
/// identity the authentication middleware found. Routes never read the
/// identity from here: they run with a `ScopedContext`, which can only be
/// made when the identity has the scope the route needs.
public struct TocsinRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String = ""
    public var bodyLimit: Int = 10 * 1024 * 1024
    /// Set by `AuthMiddleware`; read by `ScopedContext.init` only.
    var authenticated: Identity?
    /// Set by `AuthMiddleware`; `ScopedContext.init` takes a token.
    var rateLimiter: KeyRateLimiter?
    /// The peer's IP address.
    let remoteAddress: String?
    /// The local address the request arrived on (which of the server's
    /// addresses the client connected to).
    let localAddress: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
        self.localAddress = source.channel.localAddress?.ipAddress
    }

    public var maxUploadSize: Int { bodyLimit }
    public var requestDecoder: JSONDecoder { JSONDecoder() }
    public var responseEncoder: JSONEncoder { APIJSON.encoder }
}

/// The scope a group of routes requires, as a type; nil: any valid key.
public protocol RequiredScope: Sendable {
    static var scope: Scope? { get }
}

public enum IngestScope: RequiredScope { public static let scope: Scope? = .ingest }
public enum ReadScope: RequiredScope { public static let scope: Scope? = .read }
public enum AdminScope: RequiredScope { public static let scope: Scope? = .admin }
public enum AlertsScope: RequiredScope { public static let scope: Scope? = .alerts }
public enum AnyScope: RequiredScope { public static let scope: Scope? = nil }

/// The context of a route that needs `Required.scope`: it exists only for
/// a request whose identity grants that scope (401 without an identity, 403
/// without the scope), so a handler that needs the caller cannot be
/// registered where nobody checked.
public struct ScopedContext<Required: RequiredScope>: ChildRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let requestID: String
    public let bodyLimit: Int
    /// The caller: present by construction.
    public let identity: Identity

    public init(context: TocsinRequestContext) throws {
        guard let identity = context.authenticated else {
            throw APIError(.unauthorized, code: "unauthorized", message: "missing API key: send Authorization: Bearer <key>",
                           headers: [.wwwAuthenticate: "Bearer"])
        }
        if let scope = Required.scope {
            guard identity.scopes.grants(scope) else {
                throw APIError(.forbidden, code: "forbidden", message: "this API key lacks the '\(scope.rawValue)' scope")
            }
            try context.rateLimiter?.check(keyID: identity.keyID, scope: scope)
        }
        self.coreContext = context.coreContext
        self.requestID = context.requestID
        self.bodyLimit = context.bodyLimit
        self.identity = identity
    }

    public var maxUploadSize: Int { bodyLimit }
    public var requestDecoder: JSONDecoder { JSONDecoder() }
    public var responseEncoder: JSONEncoder { APIJSON.encoder }
}

public typealias IngestContext = ScopedContext<IngestScope>
public typealias ReadContext = ScopedContext<ReadScope>
public typealias AdminContext = ScopedContext<AdminScope>
public typealias AlertsContext = ScopedContext<AlertsScope>
public typealias AuthenticatedContext = ScopedContext<AnyScope>

/// What every route handler's context offers, whichever its scope.
public protocol APIRequestContext: RequestContext {
    var requestID: String { get }
    var bodyLimit: Int { get }
}

extension TocsinRequestContext: APIRequestContext {}
extension ScopedContext: APIRequestContext {}
