import Synchronization
import TocsinCore
import TocsinStore

/// Metrics summaries this process computed in the last `ttl` (at most one
/// second, `SUMMARY_CACHE_MS`), by the query that asked for them: a
/// dashboard wall or a load balancer's worth of clients asking for the same
/// 24-hour summary cost one query a second, not one each.
///
/// - Concurrent requests for the same summary wait for the one computation
///   in flight instead of starting their own.
/// - A summary is fresh for `ttl` from the moment its query started, so no
///   answer is older than that (plus the query's own time). Its replica lag
///   is reported again by every request that reuses it.
/// - Failures are not kept: the next request tries again.
/// - `Cache-Control: no-cache` on a request bypasses the cache (that request
///   computes its own summary and leaves the cache alone).
/// - At most `maxEntries` summaries are kept; when full of fresh ones a new
///   query is computed without being kept.
///
/// Only the summary is cached: alert state, rules and events never are.
final class SummaryCache: Sendable {
    struct Value: Sendable {
        var summary: MetricsSummary
        /// The replica lag of the read that computed it, if it ran on a standby.
        var lag: Double?
    }

    static let maxEntries = 256

    private enum Entry: Sendable {
        case loading(Task<Value, any Error>)
        case ready(Value, started: ContinuousClock.Instant)
    }

    let ttl: Duration
    private let entries = Mutex<[String: Entry]>([:])

    init(ttl: Duration) {
        self.ttl = ttl
    }

    /// The summary for `key` (the request's normalized query): reused when
    /// fresh, else computed once by `compute` for every concurrent caller.
    func summary(
        key: String,
        bypass: Bool,
        compute: @escaping @Sendable () async throws -> MetricsSummary
    ) async throws -> MetricsSummary {
        let value: Value
        if bypass || ttl <= .zero {
            value = try await Self.measured(compute)
        } else {
            value = try await cached(key: key, compute: compute)
        }
        if let lag = value.lag { ReadStaleness.record(lag) }
        return value.summary
    }

    private enum Lookup {
        case hit(Value)
        case wait(Task<Value, any Error>)
        case full
    }

    private func cached(key: String, compute: @escaping @Sendable () async throws -> MetricsSummary) async throws -> Value {
        let now = ContinuousClock.now
        let lookup: Lookup = entries.withLock { entries in
            switch entries[key] {
            case .ready(let value, let started) where now - started < ttl:
                return .hit(value)
            case .loading(let task):
                return .wait(task)
            default:
                if entries.count >= Self.maxEntries {
                    entries = entries.filter { _, entry in
                        if case .ready(_, let started) = entry { return now - started < ttl }
                        return true
                    }
                    if entries.count >= Self.maxEntries { return .full }
                }
                // Not a child task: the requests waiting for it may go away
                // one by one; it still ends within READ_TIMEOUT.
                let task = Task { [self] in
                    do {
                        let value = try await Self.measured(compute)
                        store(key, .ready(value, started: now))
                        return value
                    } catch {
                        store(key, nil)
                        throw error
                    }
                }
                entries[key] = .loading(task)
                return .wait(task)
            }
        }
        switch lookup {
        case .hit(let value): return value
        case .wait(let task): return try await task.value
        case .full: return try await Self.measured(compute)
        }
    }

    private func store(_ key: String, _ entry: Entry?) {
        entries.withLock { $0[key] = entry }
    }

    /// Runs `compute` with a recorder of its own, so that the lag belongs to
    /// the summary and can be reported by every request that reuses it.
    private static func measured(_ compute: @Sendable () async throws -> MetricsSummary) async throws -> Value {
        let recorder = ReadStaleness.Recorder()
        let summary = try await ReadStaleness.$recorder.withValue(recorder) { try await compute() }
        return Value(summary: summary, lag: recorder.seconds)
    }

    /// Entries held now (fresh or not), for the tests.
    var count: Int { entries.withLock { $0.count } }
}
