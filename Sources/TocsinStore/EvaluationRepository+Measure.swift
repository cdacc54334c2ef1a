import Foundation
import PostgresClient
import TocsinCore

/// The SQL of rule measurements.
extension EvaluationRepository {
    /// Measures every group with data, by the database clock (`now()`).
    /// Only fixed SQL fragments vary with the rule; names and numbers are
    /// parameters.
    ///
    /// The window's bounds are parameters computed from the transaction's
    /// `now()`: with literal bounds the planner prunes partitions at plan
    /// time instead of planning every one.
    static func measure(_ rule: Rule, _ connection: PostgresConnection, now: Date) throws -> [String: RuleMeasurement] {
        let until = now
        let since = now.addingTimeInterval(-Double(rule.lastEvents != nil ? rule.lookbackSeconds : (rule.windowSeconds ?? 900)))
        let group = rule.groupBy == .platform ? "coalesce(platform, '')" : "''::text"
        let metric = rule.metric ?? ""
        var out: [String: RuleMeasurement] = [:]
        switch rule.kind {
        case .count:
            let rows = try connection.query(
                """
                SELECT \(unescaped: group) AS g, count(*) AS n FROM metric_events
                WHERE name = \(metric) AND occurred_at >= \(since) AND occurred_at < \(until)
                GROUP BY 1
                """)
            for row in rows {
                let n: Int = try row.decode("n")
                out[try row.decode("g")] = RuleMeasurement(value: Double(n), samples: n)
            }
        case .ratio:
            let rows = try connection.query(
                """
                SELECT \(unescaped: group) AS g,
                       count(*) FILTER (WHERE name = ANY(\(rule.numerator)::text[])) AS top,
                       count(*) FILTER (WHERE name = ANY(\(rule.denominator)::text[])) AS bottom
                FROM metric_events
                WHERE name = ANY(\(rule.metricNames)::text[]) AND occurred_at >= \(since) AND occurred_at < \(until)
                GROUP BY 1
                """)
            for row in rows {
                out[try row.decode("g")] = RuleMath.ratio(numerator: try row.decode("top"), denominator: try row.decode("bottom"),
                                                          minSamples: rule.minSamples)
            }
        case .aggregate:
            for row in try connection.query(aggregateQuery(rule, group: group, since: since, until: until)) {
                let n: Int = try row.decode("n")
                let value: Double? = try row.decode("v")
                out[try row.decode("g")] = n >= rule.minSamples ? RuleMeasurement(value: value, samples: n)
                    : RuleMeasurement(value: nil, samples: n)
            }
        }
        return out
    }

    static func aggregateFunction(_ function: Rule.Function) -> String {
        switch function {
        case .avg: "avg(value)"
        case .sum: "sum(value)"
        case .max: "max(value)"
        case .min: "min(value)"
        case .p95: "percentile_cont(0.95) WITHIN GROUP (ORDER BY value)"
        }
    }

    /// Over the window, or over the last N events (of the rule, or of each
    /// group).
    static func aggregateQuery(_ rule: Rule, group: String, since: Date, until: Date) -> PostgresQuery {
        let function = aggregateFunction(rule.function ?? .avg)
        let metric = rule.metric ?? ""
        guard let last = rule.lastEvents else {
            return """
                SELECT \(unescaped: group) AS g, count(*) AS n, \(unescaped: function) AS v FROM metric_events
                WHERE name = \(metric) AND occurred_at >= \(since) AND occurred_at < \(until)
                GROUP BY 1
                """
        }
        if rule.groupBy == .none {
            return """
                SELECT ''::text AS g, count(*) AS n, \(unescaped: function) AS v FROM (
                    SELECT value FROM metric_events
                    WHERE name = \(metric) AND occurred_at >= \(since) AND occurred_at < \(until)
                    ORDER BY occurred_at DESC LIMIT \(last)) recent
                HAVING count(*) > 0
                """
        }
        return """
            SELECT g, count(*) AS n, \(unescaped: function) AS v FROM (
                SELECT \(unescaped: group) AS g, value,
                       row_number() OVER (PARTITION BY \(unescaped: group) ORDER BY occurred_at DESC) AS rn
                FROM metric_events
                WHERE name = \(metric) AND occurred_at >= \(since) AND occurred_at < \(until)) recent
            WHERE rn <= \(last) GROUP BY g
            """
    }
}
