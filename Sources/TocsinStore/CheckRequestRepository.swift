import Foundation
import PostgresClient
import TocsinCore

/// "Run checks now": a request row that exactly one process claims
/// (`FOR UPDATE SKIP LOCKED`) and answers with the evaluation results.
public struct CheckRequestRepository: Sendable {
    let database: Database

    public struct Request: Sendable, Equatable {
        public var id: Int
        public var ruleName: String?
        public var claimedBy: String?
        public var completed: Bool
        public var results: [GroupResult]?
        public var error: String?
    }

    /// Records a request and tells the workers.
    public func create(ruleName: String?, requestedBy: String) async throws -> Int {
        try await database.transaction { connection in
            let id: Int = try connection.query(
                "INSERT INTO check_requests (rule_name, requested_by) VALUES (\(ruleName), \(requestedBy)) RETURNING id"
            )[0].decode("id")
            try connection.notify(channel: DatabaseEvents.Topic.checks.channel, payload: String(id))
            return id
        }
    }

    /// Claims request `id`, or the oldest unclaimed one, for `claimer`.
    public func claim(id: Int? = nil, by claimer: String) async throws -> Request? {
        try await database.write(
            """
            UPDATE check_requests SET claimed_by = \(claimer), claimed_at = now()
            WHERE id = (SELECT id FROM check_requests
                        WHERE claimed_by IS NULL AND (\(id)::int8 IS NULL OR id = \(id))
                        ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING id, rule_name, claimed_by, false AS completed, NULL::text AS results, NULL::text AS error
            """
        ).first.map(Self.decode)
    }

    /// Records the answer and tells the requester (which waits on LISTEN,
    /// not by polling).
    public func complete(id: Int, results: [GroupResult], error: String?) async throws {
        let json = String(decoding: try JSONEncoder().encode(results), as: UTF8.self)
        try await database.transaction { connection in
            try connection.query(
                """
                UPDATE check_requests SET completed_at = now(), results = \(json)::jsonb, error = \(error.map { String($0.prefix(2000)) })
                WHERE id = \(id)
                """)
            try connection.notify(channel: DatabaseEvents.Topic.checks.channel, payload: "done:\(id)")
        }
    }

    /// Read from the primary: the requester waits for its own request.
    public func get(id: Int) async throws -> Request? {
        try await database.write(
            """
            SELECT id, rule_name, claimed_by, completed_at IS NOT NULL AS completed, results::text AS results, error
            FROM check_requests WHERE id = \(id)
            """
        ).first.map(Self.decode)
    }

    static func decode(_ row: PostgresRow) throws -> Request {
        let results: String? = try row.decode("results")
        return Request(
            id: try row.decode("id"), ruleName: try row.decode("rule_name"), claimedBy: try row.decode("claimed_by"),
            completed: try row.decode("completed"),
            results: results.flatMap { try? JSONDecoder().decode([GroupResult].self, from: Data($0.utf8)) },
            error: try row.decode("error"))
    }
}
