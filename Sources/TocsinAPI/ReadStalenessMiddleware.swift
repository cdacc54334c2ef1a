import HTTPTypes
import Hummingbird
import TocsinStore

/// Tells a client how stale a response may be: when any of its reads ran on
/// a standby (DATABASE_READ_URL), `X-Tocsin-Read-Lag` carries that standby's
/// replay lag in seconds (the largest, if several). Absent when everything
/// came from the primary. The dashboard shows "data as of …" beyond a few
/// seconds.
struct ReadStalenessMiddleware: RouterMiddleware {
    typealias Context = TocsinRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let recorder = ReadStaleness.Recorder()
        var response = try await ReadStaleness.$recorder.withValue(recorder) { try await next(request, context) }
        if let lag = recorder.seconds {
            response.headers[.tocsinReadLag] = Self.format(lag)
        }
        return response
    }

    /// Seconds with millisecond precision, never negative or non-finite.
    static func format(_ seconds: Double) -> String {
        let clamped = seconds.isFinite ? min(max(seconds, 0), 1e9) : 0
        return String(format: "%.3f", clamped)
    }
}

extension HTTPField.Name {
    static let tocsinReadLag = Self("X-Tocsin-Read-Lag")!
}
