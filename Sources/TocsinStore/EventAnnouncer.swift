import Logging
import PostgresClient
import Synchronization

/// Tells the workers which metrics just received events (the `events`
/// topic), so they evaluate those metrics' rules early.
///
/// The notification is sent after the batch has committed, not inside its
/// transaction: PostgreSQL serializes the commits of every transaction that
/// sent a NOTIFY (one database-wide lock, held through the commit's WAL
/// flush), which made concurrent ingestion commit one at a time instead of
/// together. Announcements coalesce: while one is being sent, and for
/// `spacing` after it started, the names of batches committed meanwhile are
/// collected and go out together in the next, so a process sends at most one
/// at a time and at most one per `spacing` (the first after a quiet spell
/// goes at once). Each is its own tiny transaction with `synchronous_commit`
/// off (a notification is not durable anyway; nothing waits for a disk
/// flush). Without the spacing, a busy ingest stream made one announcement
/// — a transaction here and an early-evaluation update in every worker —
/// per batch.
///
/// What this gives up: a process killed between a batch's commit and its
/// announcement (or a database unreachable at that moment) loses the early
/// evaluation of those metrics' rules; they are evaluated at their next
/// scheduled time (within one interval), and the events themselves are
/// stored. Names beyond one payload's 8000-byte limit go in further
/// notifications of the same statement, never dropped.
final class EventAnnouncer: Sendable {
    private struct State {
        var pending: [String] = []
        var seen: Set<String> = []
        var sending = false
    }

    private let state = Mutex(State())
    private let send: @Sendable ([String]) async throws -> Void
    private let logger: Logger
    let spacing: Duration

    /// The least time between two announcements' starts.
    static let defaultSpacing: Duration = .milliseconds(10)

    /// `send` delivers one statement's payloads (tests observe it).
    init(logger: Logger, spacing: Duration = defaultSpacing, send: @escaping @Sendable ([String]) async throws -> Void) {
        self.logger = logger
        self.spacing = spacing
        self.send = send
    }

    convenience init(pool: PostgresPool, logger: Logger) {
        self.init(logger: logger) { payloads in
            try await pool.query(
                """
                SELECT set_config('synchronous_commit', 'off', true), pg_notify(\(DatabaseEvents.Topic.events.channel), p)
                FROM unnest(\(payloads)::text[]) AS p
                """)
        }
    }

    /// The largest payload (PostgreSQL refuses 8000 bytes and more).
    static let payloadLimit = 7900

    /// Announces `names` (metric names of a committed batch): sent now when
    /// nothing is in flight, else with the next announcement.
    func announce(_ names: some Sequence<String>) {
        let start = state.withLock { state -> Bool in
            for name in names where state.seen.insert(name).inserted { state.pending.append(name) }
            guard !state.sending, !state.pending.isEmpty else { return false }
            state.sending = true
            return true
        }
        if start { Task { await drain() } }
    }

    private func drain() async {
        var started: ContinuousClock.Instant?
        while true {
            if let started, ContinuousClock.now < started + spacing {
                try? await Task.sleep(until: started + spacing, clock: .continuous)
            }
            let names = state.withLock { state -> [String] in
                let names = state.pending
                state.pending = []
                state.seen = []
                if names.isEmpty { state.sending = false }
                return names
            }
            guard !names.isEmpty else { return }
            started = ContinuousClock.now
            do {
                try await send(Self.payloads(names))
            } catch {
                logger.debug("events not announced; their rules are evaluated on schedule",
                             metadata: ["error": "\(error)", "names": "\(names.count)"])
            }
        }
    }

    /// `names` comma-separated in payloads of at most `payloadLimit` bytes.
    static func payloads(_ names: [String]) -> [String] {
        var out: [String] = []
        var current = ""
        for name in names {
            if !current.isEmpty, current.utf8.count + 1 + name.utf8.count > payloadLimit {
                out.append(current)
                current = ""
            }
            if !current.isEmpty { current += "," }
            current += name
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
