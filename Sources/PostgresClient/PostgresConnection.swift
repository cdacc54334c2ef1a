import CLibPQ
import Foundation

/// One libpq connection. Every method blocks the calling thread: call them
/// only from the pool's database threads (inside `PostgresPool.withConnection`
/// and friends) or from a thread of your own, never from Swift's cooperative
/// pool or a NIO event loop.
///
/// `@unchecked Sendable`: the pool hands a connection to exactly one task at
/// a time (checkout/checkin under its lock), and that task uses it on one
/// database thread; the connection is never touched concurrently.
public final class PostgresConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    let conninfo: String
    /// Statements sent since the pool last handed this connection out.
    var statementsSinceCheckout = 0
    /// Set once a COMMIT has been sent in the current unit of work: from
    /// then on a lost connection leaves the outcome unknown.
    var commitSent = false
    /// Set when this unit of work opened a transaction (BEGIN sent).
    var explicitTransaction = false
    /// libpq's cancel object for this connection (usable from any thread).
    private(set) var canceller: Canceller?
    /// This connection's prepared statements by SQL text, or nil when
    /// statements are not prepared (a pooler that cannot keep them).
    private var prepared: [String: String]?

    /// Statements prepared per connection at most; beyond, statements run
    /// unprepared (the hot ones were prepared first).
    static let maxPrepared = 256

    private init(handle: OpaquePointer, conninfo: String, prepareStatements: Bool) {
        self.handle = handle
        self.conninfo = conninfo
        self.canceller = Canceller(handle)
        self.prepared = prepareStatements ? [:] : nil
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    /// Sends a cancel request for whatever the connection's server process
    /// is running. Thread-safe: libpq's `PGcancel` is made for this, and it
    /// is freed only with the connection.
    final class Canceller: @unchecked Sendable {
        private let cancel: OpaquePointer?
        init(_ handle: OpaquePointer) { cancel = PQgetCancel(handle) }
        deinit { if let cancel { PQfreeCancel(cancel) } }

        /// True when the server accepted the request (the query, if still
        /// running, ends with SQLSTATE 57014).
        @discardableResult
        func send() -> Bool {
            guard let cancel else { return false }
            var buffer = [CChar](repeating: 0, count: 256)
            return PQcancel(cancel, &buffer, Int32(buffer.count)) == 1
        }
    }

    /// Checks a `DATABASE_URL` (URI or `key=value` conninfo) without
    /// connecting.
    public static func validate(conninfo: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorMessage) else {
            var message = "not a libpq URI or key=value string"
            if let errorMessage {
                message = PostgresError.oneLine(String(cString: errorMessage))
                PQfreemem(errorMessage)
            }
            throw PostgresError(kind: .invalidConnectionString, message: message)
        }
        PQconninfoFree(options)
    }

    /// Defaults that make a dead server noticed in seconds rather than after
    /// TCP's minutes: a 5 s connect timeout per host, keepalives after 5 s
    /// of silence (every 2 s, 3 probes) and a 10 s TCP user timeout, so an
    /// unacknowledged send fails too. The connection string overrides any
    /// of them.
    static let defaults: [(String, String)] = [
        ("connect_timeout", "5"), ("keepalives", "1"), ("keepalives_idle", "5"), ("keepalives_interval", "2"),
        ("keepalives_count", "3"), ("tcp_user_timeout", "10000"), ("fallback_application_name", "tocsin"),
    ]

    /// Opens a connection. `conninfo` is passed to libpq unchanged (hosts,
    /// sslmode, target_session_attrs and the rest apply), over `defaults`.
    /// With `prepareStatements`, each statement is prepared the first time
    /// this connection runs it and executed by name after that, so
    /// PostgreSQL parses and plans it once per connection.
    public static func connect(_ conninfo: String, prepareStatements: Bool = false) throws -> PostgresConnection {
        try validate(conninfo: conninfo)
        let handle = openHandle(conninfo)
        guard let handle else {
            throw PostgresError(kind: .connection, message: "out of memory")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = PostgresError.oneLine(String(cString: PQerrorMessage(handle)))
            PQfinish(handle)
            throw PostgresError(kind: .connection, message: message)
        }
        silenceNotices(handle)
        return PostgresConnection(handle: handle, conninfo: conninfo, prepareStatements: prepareStatements)
    }

    private static func openHandle(_ conninfo: String) -> OpaquePointer? {
        // Keywords before "dbname" are defaults: the expanded string wins.
        let keywords = defaults.map(\.0) + ["dbname"]
        let values = defaults.map(\.1) + [conninfo]
        let cKeywords = keywords.map { strdup($0) } + [nil]
        let cValues = values.map { strdup($0) } + [nil]
        defer {
            cKeywords.forEach { free($0) }
            cValues.forEach { free($0) }
        }
        return cKeywords.withUnsafeBufferPointer { k in
            cValues.withUnsafeBufferPointer { v in
                k.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: k.count) { kp in
                    v.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: v.count) { vp in
                        PQconnectdbParams(kp, vp, 1)
                    }
                }
            }
        }
    }

    /// NOTICE messages ("relation already exists, skipping") would go to
    /// stderr by default.
    private static func silenceNotices(_ handle: OpaquePointer) {
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
    }

    /// Replaces a dead connection with a new one (to whichever host of the
    /// connection string now qualifies).
    func reconnect() throws {
        close()
        let fresh = try PostgresConnection.connect(conninfo)
        handle = fresh.handle
        canceller = fresh.canceller
        // A new server session has none of the old one's statements.
        if prepared != nil { prepared = [:] }
        fresh.handle = nil
    }

    public func close() {
        canceller = nil
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// The server this connection is on, `host:port` (for logs and for
    /// noticing a failover).
    public var server: String {
        guard let handle else { return "closed" }
        let host = PQhost(handle).map { String(cString: $0) } ?? "?"
        let port = PQport(handle).map { String(cString: $0) } ?? "?"
        return "\(host):\(port)"
    }

    /// True when libpq knows the connection is unusable.
    public var isBroken: Bool {
        guard let handle else { return true }
        return PQstatus(handle) != CONNECTION_OK
    }

    /// True inside a transaction block (also a failed one).
    public var isInTransaction: Bool {
        guard let handle else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// Detects, without a round trip, a connection the server has closed
    /// while it sat idle (server restart, failover, idle timeout). An idle
    /// pool connection LISTENs for nothing, so anything arriving on it is the
    /// server saying goodbye (a FATAL error, then the end of the stream):
    /// readable means dead, even if the end has not arrived yet.
    func probeIdle() -> Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        let fd = PQsocket(handle)
        guard fd >= 0 else { return false }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, 0) == 0
    }

    private func liveHandle() throws -> OpaquePointer {
        guard let handle else {
            throw PostgresError(kind: .connection, message: "connection is closed")
        }
        return handle
    }

    // MARK: - Statements

    /// Runs one statement and returns its rows. Every value interpolated
    /// into `query` travels as a parameter.
    @discardableResult
    public func query(_ query: PostgresQuery) throws -> PostgresRows {
        let handle = try liveHandle()
        statementsSinceCheckout += 1
        let texts = try query.bindings.map { binding -> String? in
            guard let text = binding.postgresText else { return nil }
            // libpq takes parameters as C strings: a NUL would silently cut
            // the value short.
            guard !text.utf8.contains(0) else {
                throw PostgresError(kind: .client, message: "a parameter contains a NUL character, which PostgreSQL text cannot hold")
            }
            return text
        }
        let cValues: [UnsafeMutablePointer<CChar>?] = texts.map { $0.map { strdup($0) } ?? nil }
        defer { cValues.forEach { free($0) } }
        let name = try preparedName(for: query.sql, parameters: cValues.count, handle)
        let sent = cValues.withUnsafeBufferPointer { buffer -> Int32 in
            let count = Int32(buffer.count)
            return buffer.baseAddress.map { base in
                base.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { values in
                    name.map { PQsendQueryPrepared(handle, $0, count, values, nil, nil, 0) }
                        ?? PQsendQueryParams(handle, query.sql, count, nil, values, nil, nil, 0)
                }
            } ?? (name.map { PQsendQueryPrepared(handle, $0, 0, nil, nil, nil, 0) }
                ?? PQsendQueryParams(handle, query.sql, 0, nil, nil, nil, nil, 0))
        }
        guard sent == 1 else {
            // The statement never left: nothing of it reached the server.
            var error = connectionError()
            error.notSent = true
            throw error
        }
        do {
            return try consume(firstResult(handle))
        } catch let error as PostgresError where name != nil && error.isStalePreparedStatement {
            // The server lost the statement (a pooler moved us to another
            // session) or its plan no longer fits (a migration changed a
            // table): forget every statement. Nothing of this one ran, so
            // the pool may run the work again (see safeToRunAgain).
            prepared = [:]
            throw error
        }
    }

    /// The name `sql` is prepared under on this connection, preparing it
    /// now if it is new; nil when statements are not prepared here (or the
    /// cache is full).
    private func preparedName(for sql: String, parameters: Int, _ handle: OpaquePointer) throws -> String? {
        guard let known = prepared else { return nil }
        if let name = known[sql] { return name }
        guard known.count < Self.maxPrepared else { return nil }
        let name = "tocsin_\(known.count + 1)"
        guard PQsendPrepare(handle, name, sql, Int32(parameters), nil) == 1 else {
            var error = connectionError()
            error.notSent = true
            throw error
        }
        _ = try consume(firstResult(handle))
        prepared?[sql] = name
        return name
    }

    /// The statement's result; any further results (there are none for one
    /// statement) are read and dropped so the connection is ready again.
    private func firstResult(_ handle: OpaquePointer) -> OpaquePointer? {
        let first = PQgetResult(handle)
        while let more = PQgetResult(handle) { PQclear(more) }
        return first
    }

    /// Runs one or more statements without parameters (migration files,
    /// BEGIN/COMMIT). Never use it with values in the text.
    public func execute(script sql: String) throws {
        let handle = try liveHandle()
        statementsSinceCheckout += 1
        _ = try consume(PQexec(handle, sql))
    }

    /// COMMIT: once sent, a lost reply means the outcome is unknown, and the
    /// error says so (`PostgresError.outcomeUnknown`).
    func commit() throws {
        commitSent = true
        do {
            try execute(script: "COMMIT")
        } catch var error as PostgresError where error.isConnectionFailure {
            error.outcomeUnknown = true
            throw error
        }
    }

    private func consume(_ result: OpaquePointer?) throws -> PostgresRows {
        guard let result else {
            throw connectionError()
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
            let rowCount = Int(PQntuples(result))
            let columnCount = Int(PQnfields(result))
            var columns: [String] = []
            columns.reserveCapacity(columnCount)
            for c in 0..<columnCount {
                columns.append(String(cString: PQfname(result, Int32(c))))
            }
            var values: [String?] = []
            values.reserveCapacity(rowCount * columnCount)
            for r in 0..<rowCount {
                for c in 0..<columnCount {
                    if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                        values.append(nil)
                    } else {
                        values.append(String(cString: PQgetvalue(result, Int32(r), Int32(c))))
                    }
                }
            }
            return PostgresRows(columns: columns, values: values, affectedRows: rowCount)
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresRows(columns: [], values: [], affectedRows: affectedRows(result))
        default:
            throw error(from: result)
        }
    }

    private func affectedRows(_ result: OpaquePointer) -> Int {
        Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    private func connectionError() -> PostgresError {
        let message = handle.map { PostgresError.oneLine(String(cString: PQerrorMessage($0))) } ?? "connection is closed"
        return PostgresError(kind: .connection, message: message.isEmpty ? "connection lost" : message)
    }

    private func error(from result: OpaquePointer) -> PostgresError {
        if isBroken { return connectionError() }
        func field(_ code: Character) -> String? {
            guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let sqlState = field("C")
        var message = field("M") ?? PostgresError.oneLine(String(cString: PQresultErrorMessage(result)))
        message = PostgresError.scrubbed(message: message, sqlState: sqlState)
        // Class 08 is "connection exception"; 57P01..57P03 are shutdowns.
        if let sqlState, sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState) {
            return PostgresError(kind: .connection, message: message, sqlState: sqlState)
        }
        if sqlState == "57014" {
            return PostgresError(kind: .cancelled, message: message, sqlState: sqlState)
        }
        return PostgresError(kind: .server, message: message, sqlState: sqlState, constraint: field("n"))
    }

    // MARK: - COPY

    /// Runs `COPY … FROM STDIN` with the given data (text format unless the
    /// statement says otherwise) and returns the number of rows copied.
    @discardableResult
    public func copyIn(_ statement: PostgresQuery, data: [UInt8]) throws -> Int {
        let handle = try liveHandle()
        statementsSinceCheckout += 1
        guard statement.bindings.isEmpty else {
            throw PostgresError(kind: .client, message: "COPY takes no parameters")
        }
        guard let start = PQexec(handle, statement.sql) else { throw connectionError() }
        let startStatus = PQresultStatus(start)
        if startStatus != PGRES_COPY_IN {
            defer { PQclear(start) }
            if startStatus == PGRES_FATAL_ERROR { throw error(from: start) }
            throw PostgresError(kind: .client, message: "statement did not start COPY FROM STDIN")
        }
        PQclear(start)
        var failed: PostgresError?
        data.withUnsafeBufferPointer { buffer in
            let chunk = 1 << 16
            var offset = 0
            while offset < buffer.count {
                let length = min(chunk, buffer.count - offset)
                let sent = buffer.baseAddress!.advanced(by: offset).withMemoryRebound(to: CChar.self, capacity: length) {
                    PQputCopyData(handle, $0, Int32(length))
                }
                if sent != 1 {
                    failed = connectionError()
                    return
                }
                offset += length
            }
        }
        if let failed {
            _ = PQputCopyEnd(handle, "client failed to send data")
            drainResults(handle)
            throw failed
        }
        guard PQputCopyEnd(handle, nil) == 1 else { throw connectionError() }
        var rows = 0
        var firstError: PostgresError?
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                rows = affectedRows(result)
            } else if firstError == nil {
                firstError = error(from: result)
            }
            PQclear(result)
        }
        if let firstError { throw firstError }
        if isBroken { throw connectionError() }
        return rows
    }

    private func drainResults(_ handle: OpaquePointer) {
        while let result = PQgetResult(handle) { PQclear(result) }
    }

    // MARK: - Transactions and locks

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it
    /// throws (the error is rethrown).
    public func transaction<T>(
        isolation: IsolationLevel = .readCommitted,
        _ body: (PostgresConnection) throws -> T
    ) throws -> T {
        // From here until COMMIT is sent, a lost connection means the server
        // rolls back: the pool may run the whole transaction again.
        explicitTransaction = true
        try execute(script: isolation == .readCommitted ? "BEGIN" : "BEGIN ISOLATION LEVEL \(isolation.rawValue)")
        let value: T
        do {
            value = try body(self)
        } catch {
            if !isBroken { try? execute(script: "ROLLBACK") }
            throw error
        }
        try commit()
        return value
    }

    public enum IsolationLevel: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// `pg_try_advisory_xact_lock(namespace, id)`: true when this
    /// transaction now holds the lock. Released at COMMIT or ROLLBACK; must be
    /// called inside a transaction.
    public func tryAdvisoryTransactionLock(namespace: Int32, id: Int32) throws -> Bool {
        let rows = try query("SELECT pg_try_advisory_xact_lock(\(namespace)::int4, \(id)::int4) AS locked")
        return try rows[0].decode("locked", as: Bool.self)
    }

    /// `pg_advisory_xact_lock(namespace, id)`: waits for the lock.
    public func advisoryTransactionLock(namespace: Int32, id: Int32) throws {
        try query("SELECT pg_advisory_xact_lock(\(namespace)::int4, \(id)::int4)")
    }

    /// `pg_notify(channel, payload)`: delivered when the transaction commits.
    public func notify(channel: String, payload: String = "") throws {
        try query("SELECT pg_notify(\(channel), \(payload))")
    }

    // MARK: - LISTEN support (used by PostgresListener)

    func listen(_ channel: String) throws {
        let handle = try liveHandle()
        guard let escaped = PQescapeIdentifier(handle, channel, channel.utf8.count) else {
            throw connectionError()
        }
        defer { PQfreemem(escaped) }
        try execute(script: "LISTEN " + String(cString: escaped))
    }

    var socket: Int32 {
        guard let handle else { return -1 }
        return PQsocket(handle)
    }

    /// Reads what the socket has and returns the notifications received.
    func consumeNotifications() throws -> [PostgresNotification] {
        let handle = try liveHandle()
        guard PQconsumeInput(handle) == 1 else { throw connectionError() }
        var out: [PostgresNotification] = []
        while let raw = PQnotifies(handle) {
            let n = raw.pointee
            out.append(PostgresNotification(
                channel: String(cString: n.relname),
                payload: String(cString: n.extra),
                processID: n.be_pid
            ))
            PQfreemem(raw)
        }
        if isBroken { throw connectionError() }
        return out
    }
}

/// A notification received on a LISTEN channel.
public struct PostgresNotification: Sendable, Equatable {
    public var channel: String
    public var payload: String
    public var processID: Int32
}
