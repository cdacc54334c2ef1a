import Foundation

/// An error from PostgreSQL or from talking to it.
///
/// The description names what failed and carries the SQLSTATE and the
/// server's primary message when there is one. It never contains bound
/// parameter values, the server's DETAIL (which can quote row data) or the
/// connection password.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Could not connect, or the connection broke while in use.
        case connection
        /// The server rejected a statement; `sqlState` says why.
        case server
        /// A value could not be decoded into the requested Swift type.
        case decoding
        /// The pool is shut down.
        case poolClosed
        /// No connection became free in time.
        case poolTimeout
        /// The connection string could not be parsed.
        case invalidConnectionString
        /// The query was cancelled: its deadline passed or its caller went
        /// away (SQLSTATE 57014).
        case cancelled
        /// Anything else the client itself detected.
        case client
    }

    public var kind: Kind
    /// Five-character SQLSTATE, for `.server` errors.
    public var sqlState: String?
    /// The server's primary message, or the client's own description.
    public var message: String
    /// Name of the violated constraint, when the server reports one.
    public var constraint: String?
    /// The connection was lost after COMMIT was sent: the transaction may or
    /// may not have committed. Never retried automatically.
    public var outcomeUnknown = false
    /// The statement could not be sent at all: nothing of it reached the
    /// server, so running it again is safe.
    public var notSent = false

    public init(kind: Kind, message: String, sqlState: String? = nil, constraint: String? = nil) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.constraint = constraint
    }

    /// The connection was lost or could not be made: retrying on a new
    /// connection may succeed.
    public var isConnectionFailure: Bool { kind == .connection }

    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// The server is read-only: a standby, or a primary that was demoted.
    /// The connection is on the wrong node and must be replaced.
    public var isReadOnly: Bool { sqlState == "25006" }

    /// A prepared statement the server no longer has (26000), or whose
    /// cached plan no longer matches the tables (0A000, "cached plan must
    /// not change result type"): the statement did not run.
    public var isStalePreparedStatement: Bool {
        sqlState == "26000" || (sqlState == "0A000" && message.contains("cached plan"))
    }

    /// The database cannot serve right now (connection lost, no primary,
    /// pool exhausted or closing): the request can be retried later.
    public var isUnavailable: Bool {
        switch kind {
        case .connection, .poolTimeout, .poolClosed: true
        case .server: isReadOnly || sqlState == "57P03" || sqlState?.hasPrefix("08") == true
        default: false
        }
    }

    public var description: String {
        switch kind {
        case .connection:
            return "database connection failed\(outcomeUnknown ? " after COMMIT was sent (the outcome is unknown)" : ""): \(message)"
        case .server:
            var text = "database error \(sqlState ?? "?????"): \(message)"
            if let constraint { text += " (constraint \(constraint))" }
            return text
        case .decoding:
            return "could not decode database value: \(message)"
        case .cancelled:
            return "database query cancelled: \(message)"
        case .poolClosed:
            return "database pool is closed: \(message)"
        case .poolTimeout:
            return "no database connection available: \(message)"
        case .invalidConnectionString:
            return "invalid database connection string: \(message)"
        case .client:
            return "database client error: \(message)"
        }
    }

    /// Reduces a libpq message to one line. libpq ends messages with a
    /// newline and indents hints on following lines.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .joined(separator: "; ")
    }

    /// Server messages of class 22 (data exception) quote the offending
    /// input ("invalid input syntax for type integer: \"x\""); that input is
    /// a bound value, so the quoted part is removed.
    static func scrubbed(message: String, sqlState: String?) -> String {
        guard let sqlState, sqlState.hasPrefix("22"), let colon = message.firstIndex(of: ":") else {
            return message
        }
        return String(message[..<colon])
    }
}
