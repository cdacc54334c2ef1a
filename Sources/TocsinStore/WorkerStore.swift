import Foundation
import PostgresClient
import TocsinCore

/// A worker instance as the API shows it.
public struct WorkerInfo: Sendable, Equatable, Encodable {
    public var id: String
    public var host: String
    public var pid: Int
    public var roles: [String]
    public var startedAt: Double
    public var lastHeartbeat: Double
    public var lastCheckAt: Double?
    public var lastCheckDurationMs: Double?
    public var evaluations: Int
    public var alertsFired: Int
    public var stopped: Bool
    public var stale: Bool

    enum CodingKeys: String, CodingKey {
        case id, host, pid, roles, evaluations, stopped, stale
        case startedAt = "started_at"
        case lastHeartbeat = "last_heartbeat"
        case lastCheckAt = "last_check_at"
        case lastCheckDurationMs = "last_check_duration_ms"
        case alertsFired = "alerts_fired"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(host, forKey: .host)
        try c.encode(pid, forKey: .pid)
        try c.encode(roles, forKey: .roles)
        try c.encode(RFC3339.format(startedAt), forKey: .startedAt)
        try c.encode(RFC3339.format(lastHeartbeat), forKey: .lastHeartbeat)
        try c.encode(lastCheckAt.map(RFC3339.format), forKey: .lastCheckAt)
        try c.encode(lastCheckDurationMs, forKey: .lastCheckDurationMs)
        try c.encode(evaluations, forKey: .evaluations)
        try c.encode(alertsFired, forKey: .alertsFired)
        try c.encode(stopped, forKey: .stopped)
        try c.encode(stale, forKey: .stale)
    }
}

/// The `workers` table: registration, heartbeats, listing.
public struct WorkerStore: Sendable {
    public let pool: PostgresPool
    public init(pool: PostgresPool) { self.pool = pool }

    /// A new id for this process: host, pid and a random suffix.
    public static func makeID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        return "\(host)-\(getpid())-\(Crypto.hex(Crypto.randomBytes(3)))"
    }

    public func register(id: String, roles: [String]) async throws {
        let host = ProcessInfo.processInfo.hostName
        try await pool.query(
            """
            INSERT INTO workers (id, host, pid, roles) VALUES ($1, $2, $3, $4::text[])
            ON CONFLICT (id) DO UPDATE SET last_heartbeat = now(), stopped_at = NULL
            """, [id, host, Int(getpid()), roles])
    }

    /// Records that the worker is alive, with what it did since last time.
    public func heartbeat(id: String, counts: EvaluationCounters.Snapshot = .init()) async throws {
        try await pool.query(
            """
            UPDATE workers SET last_heartbeat = now(), stopped_at = NULL,
                               evaluations = evaluations + $2, alerts_fired = alerts_fired + $3,
                               last_check_at = coalesce(to_timestamp($4::float8), last_check_at),
                               last_check_duration_ms = coalesce($5, last_check_duration_ms)
            WHERE id = $1
            """, [id, counts.evaluations, counts.alertsFired, counts.lastCheckAt, counts.lastCheckDurationMs])
    }

    public func stopped(id: String) async throws {
        try await pool.query("UPDATE workers SET stopped_at = now() WHERE id = $1", [id])
    }

    /// Instances seen in the last day; stale when silent for 3 intervals.
    public func list(intervalSeconds: Int) async throws -> [WorkerInfo] {
        try await pool.query(
            """
            SELECT id, host, pid, roles, extract(epoch FROM started_at)::float8 AS started_at,
                   extract(epoch FROM last_heartbeat)::float8 AS last_heartbeat,
                   extract(epoch FROM last_check_at)::float8 AS last_check_at, last_check_duration_ms, evaluations,
                   alerts_fired, stopped_at IS NOT NULL AS stopped,
                   last_heartbeat < now() - make_interval(secs => 3 * $1) AS stale
            FROM workers WHERE last_heartbeat > now() - interval '1 day'
            ORDER BY started_at, id
            """, [intervalSeconds]
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
