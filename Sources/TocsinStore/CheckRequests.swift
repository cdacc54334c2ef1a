import Foundation
import PostgresClient
import TocsinCore

/// "Run checks now": a request row that exactly one process claims
/// (`FOR UPDATE SKIP LOCKED`) and answers with the evaluation results.
public struct CheckRequests: Sendable {
    public let pool: PostgresPool
    public init(pool: PostgresPool) { self.pool = pool }

    public static let channel = "tocsin_checks"

    public struct Request: Sendable, Equatable {
        public var id: Int
        public var ruleName: String?
        public var claimedBy: String?
        public var completed: Bool
        public var results: [RuleEvaluator.GroupResult]?
        public var error: String?
    }

    /// Records a request and tells the workers.
    public func create(ruleName: String?, requestedBy: String) async throws -> Int {
        try await pool.withTransaction { connection in
            let id: Int = try connection.query(
                "INSERT INTO check_requests (rule_name, requested_by) VALUES ($1, $2) RETURNING id",
                [ruleName, requestedBy])[0].decode("id")
            try connection.notify(channel: Self.channel, payload: String(id))
            return id
        }
    }

    /// Claims request `id`, or the oldest unclaimed one, for `claimer`.
    public func claim(id: Int? = nil, by claimer: String) async throws -> Request? {
        try await pool.query(
            """
            UPDATE check_requests SET claimed_by = $2, claimed_at = now()
            WHERE id = (SELECT id FROM check_requests
                        WHERE claimed_by IS NULL AND ($1::int8 IS NULL OR id = $1)
                        ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING id, rule_name, claimed_by, false AS completed, NULL::text AS results, NULL::text AS error
            """, [id, claimer]
        ).first.map(Self.decode)
    }

    public func complete(id: Int, results: [RuleEvaluator.GroupResult], error: String?) async throws {
        let json = String(decoding: try JSONEncoder().encode(results), as: UTF8.self)
        try await pool.query(
            "UPDATE check_requests SET completed_at = now(), results = $2::jsonb, error = $3 WHERE id = $1",
            [id, json, error])
    }

    public func get(id: Int) async throws -> Request? {
        try await pool.query(
            """
            SELECT id, rule_name, claimed_by, completed_at IS NOT NULL AS completed, results::text AS results, error
            FROM check_requests WHERE id = $1
            """, [id]
        ).first.map(Self.decode)
    }

    static func decode(_ row: PostgresRow) throws -> Request {
        let results: String? = try row.decode("results")
        return Request(
            id: try row.decode("id"), ruleName: try row.decode("rule_name"), claimedBy: try row.decode("claimed_by"),
            completed: try row.decode("completed"),
            results: results.flatMap { try? JSONDecoder().decode([RuleEvaluator.GroupResult].self, from: Data($0.utf8)) },
            error: try row.decode("error"))
    }

    /// Evaluates what the request asks for (every enabled rule, or one) and
    /// records the results.
    public func run(_ request: Request, evaluator: RuleEvaluator, rules: RuleStore) async {
        var results: [RuleEvaluator.GroupResult] = []
        var failure: String?
        do {
            let targets = try await rules.list().filter { request.ruleName == nil || $0.rule.name == request.ruleName }
            if let name = request.ruleName, targets.isEmpty {
                failure = "no enabled rule named \(name)"
            }
            for target in targets {
                if case .evaluated(let groups) = try await evaluator.evaluate(ruleID: target.id, trigger: .manual, force: true) {
                    results += groups
                }
            }
        } catch {
            failure = "\(error)"
        }
        try? await complete(id: request.id, results: results, error: failure)
    }
}
