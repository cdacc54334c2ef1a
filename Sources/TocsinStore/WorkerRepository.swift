import Foundation
import PostgresClient
import TocsinCore
import TocsinCrypto

/// A worker instance as the API shows it.
public struct WorkerInfo: Sendable, Equatable {
    public var id: String
    public var host: String
    public var pid: Int
    public var roles: [String]
    public var startedAt: Date
    public var lastHeartbeat: Date
    public var lastCheckAt: Date?
    public var lastCheckDurationMs: Double?
    public var evaluations: Int
    public var alertsFired: Int
    public var stopped: Bool
    public var stale: Bool
}

/// What a worker did since its last heartbeat.
public struct WorkerCounts: Sendable, Equatable {
    public var evaluations = 0
    public var alertsFired = 0
    public var lastCheckAt: Date?
    public var lastCheckDurationMs: Double?
    public init() {}
}

/// The `workers` table: registration, heartbeats, listing.
public struct WorkerRepository: Sendable {
    let database: Database

    /// A new id for this process: host, pid and a random suffix.
    public static func makeID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        return "\(host)-\(getpid())-\(Crypto.hex(Crypto.randomBytes(3)))"
    }

    public func register(id: String, roles: [String]) async throws {
        let host = ProcessInfo.processInfo.hostName
        try await database.write(
            """
            INSERT INTO workers (id, host, pid, roles) VALUES (\(id), \(host), \(Int(getpid())), \(roles)::text[])
            ON CONFLICT (id) DO UPDATE SET last_heartbeat = now(), stopped_at = NULL
            """)
    }

    /// Records that the worker is alive, with what it did since last time.
    public func heartbeat(id: String, counts: WorkerCounts = .init()) async throws {
        try await database.write(
            """
            UPDATE workers SET last_heartbeat = now(), stopped_at = NULL,
                               evaluations = evaluations + \(counts.evaluations), alerts_fired = alerts_fired + \(counts.alertsFired),
                               last_check_at = coalesce(\(counts.lastCheckAt)::timestamptz, last_check_at),
                               last_check_duration_ms = coalesce(\(counts.lastCheckDurationMs), last_check_duration_ms)
            WHERE id = \(id)
            """)
    }

    public func stopped(id: String) async throws {
        try await database.write("UPDATE workers SET stopped_at = now() WHERE id = \(id)")
    }

    /// True when a worker has beaten within the last `seconds`: the API
    /// uses it to decide whether to wait for one to answer a check.
    public func anyAlive(withinSeconds seconds: Int) async throws -> Bool {
        try await database.read(
            """
            SELECT 1 FROM workers WHERE stopped_at IS NULL AND 'worker' = ANY(roles)
              AND last_heartbeat > now() - make_interval(secs => \(seconds)) LIMIT 1
            """).count == 1
    }

    /// Instances seen in the last day; stale when silent for 3 intervals.
    public func list(intervalSeconds: Int) async throws -> [WorkerInfo] {
        try await database.read(
            """
            SELECT id, host, pid, roles, started_at, last_heartbeat, last_check_at, last_check_duration_ms, evaluations,
                   alerts_fired, stopped_at IS NOT NULL AS stopped,
                   last_heartbeat < now() - make_interval(secs => 3 * \(intervalSeconds)) AS stale
            FROM workers WHERE last_heartbeat > now() - interval '1 day'
            ORDER BY started_at, id
            """
        ).map { row in
            WorkerInfo(
                id: try row.decode("id"), host: try row.decode("host"), pid: try row.decode("pid"),
                roles: try row.decode("roles"), startedAt: try row.decode("started_at"),
                lastHeartbeat: try row.decode("last_heartbeat"), lastCheckAt: try row.decode("last_check_at"),
                lastCheckDurationMs: try row.decode("last_check_duration_ms"), evaluations: try row.decode("evaluations"),
                alertsFired: try row.decode("alerts_fired"), stopped: try row.decode("stopped"), stale: try row.decode("stale"))
        }
    }
}
