import Foundation
import HTTPTypes
import Hummingbird
import Logging
import TocsinCrypto

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

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-Id")!
}
