import Foundation
import HTTPTypes
import NIOCore
import Hummingbird
import Logging
import TocsinCore
import TocsinStore

/// Who made a request: the API key (or dashboard session) and its scopes.
public struct Identity: Sendable, Equatable {
    public var keyID: Int
    public var name: String
    public var scopes: [Scope]
    /// Set when the request came with a dashboard session cookie.
    public var sessionID: String?
}

/// The per-request context: request id, identity, body limit.
public struct TocsinRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String = ""
    public var identity: Identity?
    public var bodyLimit: Int = 10 * 1024 * 1024

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    public var maxUploadSize: Int { bodyLimit }

    public var requestDecoder: JSONDecoder { JSONDecoder() }
    public var responseEncoder: JSONEncoder { APIJSON.encoder }

    /// The caller, or 401 when the route was reached without one.
    public func requireIdentity() throws -> Identity {
        guard let identity else {
            throw APIError(.unauthorized, code: "unauthorized", message: "missing API key: send Authorization: Bearer <key>")
        }
        return identity
    }

    /// The caller when its scopes grant `scope`, else 403.
    @discardableResult
    public func require(_ scope: Scope) throws -> Identity {
        let identity = try requireIdentity()
        guard identity.scopes.grants(scope) else {
            throw APIError(.forbidden, code: "forbidden",
                           message: "this API key lacks the '\(scope.rawValue)' scope")
        }
        return identity
    }
}
