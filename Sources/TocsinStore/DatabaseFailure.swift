import PostgresClient

/// How a repository call failed when the database, not the request, is the
/// reason: what callers outside this module (which never see the client's
/// error type) decide on — an API answers 503 with Retry-After.
public enum DatabaseFailure: Sendable, Equatable, CustomStringConvertible {
    /// No connection, no primary (a failover in progress), the pool
    /// exhausted or closing, or the server read-only.
    case unavailable
    /// The query ran past its deadline and was cancelled.
    case timeout
    /// The connection was lost after COMMIT was sent: the write may or may
    /// not have happened (an ingest with an Idempotency-Key is safe to
    /// retry; the retry finds out).
    case outcomeUnknown

    public init?(_ error: any Error) {
        guard let error = error as? PostgresError else { return nil }
        if error.outcomeUnknown {
            self = .outcomeUnknown
        } else if error.kind == .cancelled {
            self = .timeout
        } else if error.isUnavailable {
            self = .unavailable
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .unavailable: "the database is unavailable"
        case .timeout: "the query took longer than its deadline"
        case .outcomeUnknown: "the connection was lost after COMMIT was sent; the outcome is unknown"
        }
    }
}
