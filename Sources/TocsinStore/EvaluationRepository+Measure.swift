import Foundation
import PostgresClient
import TocsinCore

/// The SQL of rule measurements.
extension EvaluationRepository {
    /// Measures every group with data, by the database clock (`now()`).
    /// Only fixed SQL fragments vary with the rule; names, label names,
    /// patterns and numbers are parameters.
    ///
    /// The window's bounds are parameters computed from the transaction's
    /// `now()`: with literal bounds the planner prunes partitions at plan
    /// time instead of planning every one.
    /// SLO rules: `periodCounts` are the period's counts of a recent
    /// evaluation (stored JSON), or nil to count them now; the counts made
    /// now are returned (JSON) for the evaluation to store.
    static func measure(_ rule: Rule, _ connection: PostgresConnection, now: Date,
                        periodCounts: String? = nil) throws -> (groups: [String: MeasuredGroup], periodCounts: String?) {
        switch rule.kind {
        case .ratio, .count, .aggregate:
            let (measured, labels) = try measureEvents(rule, connection, now: now)
            return (RuleMath.groups(rule, measured: measured, labels: labels), nil)
        case .slo:
            // (A period that is also a burn rate's window is counted every time.)
            let cacheable = rule.slo.map { !$0.windows.contains($0.periodSeconds) } ?? false
            let cached = cacheable
                ? periodCounts.flatMap { try? JSONDecoder().decode([String: PeriodCounts].self, from: Data($0.utf8)) } : nil
            var (counts, labels) = try sloCounts(rule, connection, now: now, withPeriod: cached == nil)
            var counted: String?
            if let slo = rule.slo, cacheable {
                if let cached {
                    for (key, period) in cached {
                        counts[key, default: [:]][slo.periodSeconds] = RuleMath.Counts(good: period.good, total: period.total)
                        if labels[key] == nil { labels[key] = period.labels }
                    }
                } else {
                    var stored: [String: PeriodCounts] = [:]
                    for (key, windows) in counts {
                        guard let period = windows[slo.periodSeconds] else { continue }
                        stored[key] = PeriodCounts(good: period.good, total: period.total, labels: labels[key] ?? [:])
                    }
                    counted = try ConfigRepository.json(stored)
                }
            }
            guard counts.count <= rule.maxGroups else { throw TooManyGroups(limit: rule.maxGroups) }
            return (RuleMath.sloGroups(rule, counts: counts, labels: labels), counted)
        case .composite:
            return (try measureComposite(rule, connection), nil)
        }
    }

    /// The group columns g0, g1, … of a rule's query (one constant column
    /// without groups), and how many there are.
    static func groupColumns(_ groupBy: Rule.GroupBy, platform: String = "platform") -> (PostgresQuery, Int) {
        guard !groupBy.isEmpty else { return ("''::text AS g0", 1) }
        var columns: PostgresQuery = ""
        for (i, key) in groupBy.keys.enumerated() {
            let value = key == "platform" ? PostgresQuery(unsafeSQL: "coalesce(\(platform), '')") : "coalesce(labels->>\(key), '')"
            columns = i == 0 ? "\(value) AS \(unescaped: "g\(i)")" : "\(columns), \(value) AS \(unescaped: "g\(i)")"
        }
        return (columns, groupBy.keys.count)
    }

    /// `AND …` for each matcher: a label the event does not have reads as
    /// ''; patterns match the whole value. `platform` is the platform
    /// column's expression (NULL for none).
    static func filterSQL(_ matchers: [EventMatcher], platform: String = "platform") -> PostgresQuery {
        var out: PostgresQuery = ""
        for matcher in matchers {
            let column = PostgresQuery(unsafeSQL: platform)
            let value: PostgresQuery = matcher.isPlatform ? "coalesce(\(column), '')" : "coalesce(labels->>\(matcher.label), '')"
            let condition: PostgresQuery
            switch matcher.operation {
            case .equals(let v): condition = "\(value) = \(v)"
            case .notEquals(let v): condition = "\(value) <> \(v)"
            case .matches(let p): condition = "\(value) ~ ('^(?:' || \(p.postgresSource) || ')$')"
            case .notMatches(let p): condition = "\(value) !~ ('^(?:' || \(p.postgresSource) || ')$')"
            case .isIn(let values): condition = "\(value) = ANY(\(values)::text[])"
            case .present(let wanted):
                let present: PostgresQuery = matcher.isPlatform ? "\(column) IS NOT NULL" : "labels ? \(matcher.label)"
                condition = wanted ? present : "NOT (\(present))"
            }
            out = "\(out) AND \(condition)"
        }
        return out
    }

    /// Decodes the group columns of a row: the group key and its labels.
    static func group(_ row: PostgresRow, _ rule: Rule, count: Int) throws -> (String, [String: String]) {
        var values: [String] = []
        for i in 0..<count { values.append(try row.decode("g\(i)")) }
        if rule.groupBy.isEmpty { return ("", [:]) }
        return (rule.groupBy.key(values), rule.groupBy.labels(values))
    }

    /// Ratio, count and aggregate rules.
    static func measureEvents(_ rule: Rule, _ connection: PostgresConnection, now: Date)
        throws -> ([String: RuleMeasurement], [String: [String: String]])
    {
        let until = now
        let since = now.addingTimeInterval(-Double(rule.lastEvents != nil ? rule.lookbackSeconds : (rule.windowSeconds ?? 900)))
        let (columns, count) = groupColumns(rule.groupBy)
        let positions = PostgresQuery(unsafeSQL: (1...count).map(String.init).joined(separator: ", "))
        let filters = filterSQL(rule.filters)
        let limit = rule.maxGroups + 1
        let metric = rule.metric ?? ""
        let rows: PostgresRows
        switch rule.kind {
        case .count:
            rows = try connection.query(
                """
                SELECT \(columns), count(*) AS n FROM metric_events
                WHERE name = \(metric) AND occurred_at >= \(since) AND occurred_at < \(until)\(filters)
                GROUP BY \(positions) LIMIT \(limit)
                """)
        case .ratio:
            rows = try connection.query(
                """
                SELECT \(columns),
                       count(*) FILTER (WHERE name = ANY(\(rule.numerator)::text[])) AS top,
                       count(*) FILTER (WHERE name = ANY(\(rule.denominator)::text[])) AS bottom
                FROM metric_events
                WHERE name = ANY(\(rule.metricNames)::text[]) AND occurred_at >= \(since) AND occurred_at < \(until)\(filters)
                GROUP BY \(positions) LIMIT \(limit)
                """)
        default:
            rows = try connection.query(aggregateQuery(rule, since: since, until: until))
        }
        guard rows.count <= rule.maxGroups else { throw TooManyGroups(limit: rule.maxGroups) }
        var out: [String: RuleMeasurement] = [:]
        var labels: [String: [String: String]] = [:]
        for row in rows {
            let (key, groupLabels) = try group(row, rule, count: count)
            labels[key] = groupLabels
            switch rule.kind {
            case .count:
                let n: Int = try row.decode("n")
                out[key] = RuleMeasurement(value: Double(n), samples: n)
            case .ratio:
                out[key] = RuleMath.ratio(numerator: try row.decode("top"), denominator: try row.decode("bottom"),
                                          minSamples: rule.minSamples)
            default:
                let n: Int = try row.decode("n")
                let value: Double? = try row.decode("v")
                out[key] = n >= rule.minSamples ? RuleMeasurement(value: value, samples: n) : RuleMeasurement(value: nil, samples: n)
            }
        }
        return (out, labels)
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
    static func aggregateQuery(_ rule: Rule, since: Date, until: Date) -> PostgresQuery {
        let function = aggregateFunction(rule.function ?? .avg)
        let metric = rule.metric ?? ""
        let (columns, count) = groupColumns(rule.groupBy)
        let names = (0..<count).map { "g\($0)" }.joined(separator: ", ")
        let positions = PostgresQuery(unsafeSQL: (1...count).map(String.init).joined(separator: ", "))
        let filters = filterSQL(rule.filters)
        let limit = rule.maxGroups + 1
        guard let last = rule.lastEvents else {
            return """
                SELECT \(columns), count(*) AS n, \(unescaped: function) AS v FROM metric_events
                WHERE name = \(metric) AND occurred_at >= \(since) AND occurred_at < \(until)\(filters)
                GROUP BY \(positions) LIMIT \(limit)
                """
        }
        if rule.groupBy.isEmpty {
            return """
                SELECT ''::text AS g0, count(*) AS n, \(unescaped: function) AS v FROM (
                    SELECT value FROM metric_events
                    WHERE name = \(metric) AND occurred_at >= \(since) AND occurred_at < \(until)\(filters)
                    ORDER BY occurred_at DESC LIMIT \(last)) recent
                HAVING count(*) > 0
                """
        }
        // Matchers of labels other than the platform: the rollups cannot say
        // which platforms have matching events, and a scan per platform could
        // read the whole lookback for each; one scan of it is cheaper then.
        if rule.groupBy.keys == ["platform"], rule.filters.allSatisfy(\.isPlatform) {
            return lastPerPlatformQuery(rule, function: function, last: last, since: since, until: until)
        }
        return """
            SELECT \(unescaped: names), count(*) AS n, \(unescaped: function) AS v FROM (
                SELECT \(unescaped: names), value,
                       row_number() OVER (PARTITION BY \(unescaped: names) ORDER BY occurred_at DESC) AS rn
                FROM (SELECT \(columns), value, occurred_at FROM metric_events
                      WHERE name = \(metric) AND occurred_at >= \(since) AND occurred_at < \(until)\(filters)) events) recent
            WHERE rn <= \(last) GROUP BY \(positions) LIMIT \(limit)
            """
    }
}

/// "Last N" per platform, without reading the whole lookback.
///
/// The hourly rollups (written with their events, so exact in any
/// snapshot) name the platforms with events of the metric in the lookback
/// and how many each has per hour. For each platform, the newest
/// complete hours that together hold N events bound where its last N
/// events can start: one backward index scan per platform from `until`,
/// stopped after N events, reads about N events instead of every event of
/// the lookback. Only for rules whose `where:` matchers (if any) test the
/// platform alone, which the rollups record: they apply to the rollups too.
extension EvaluationRepository {
    static func lastPerPlatformQuery(_ rule: Rule, function: String, last: Int, since: Date, until: Date) -> PostgresQuery {
        let metric = rule.metric ?? ""
        let filters = filterSQL(rule.filters)
        let limit = rule.maxGroups + 1
        // Hours before the current one only: the current hour's rollup also
        // counts events stamped ahead of `until`.
        return """
            WITH hours AS (
                SELECT platform, hour, sum(count) AS n FROM metric_rollups
                WHERE name = \(metric) AND hour >= \(hourFloor(since)) AND hour <= \(until)
                      \(filterSQL(rule.filters, platform: "nullif(platform, '')"))
                GROUP BY 1, 2),
            starts AS (
                SELECT platform AS g0, greatest(\(since), max(hour) FILTER (WHERE newer >= \(last))) AS start
                FROM (SELECT platform, hour,
                             sum(n) FILTER (WHERE hour < \(hourFloor(until))) OVER (PARTITION BY platform ORDER BY hour DESC) AS newer
                      FROM hours) h
                GROUP BY 1)
            SELECT starts.g0, count(*) AS n, \(unescaped: function) AS v
            FROM starts, LATERAL (
                SELECT value FROM metric_events
                WHERE name = \(metric) AND coalesce(platform, '') = starts.g0
                  AND occurred_at >= \(since) AND occurred_at >= starts.start AND occurred_at < \(until)\(filters)
                ORDER BY occurred_at DESC LIMIT \(last)) recent
            GROUP BY 1 LIMIT \(limit)
            """
    }
}

/// SLO rules: good and total counts over every window, from the hourly
/// rollups and as few events as exactness allows.
///
/// Rollups are written in the transaction that stores their events, so in
/// any snapshot an hour's rollup counts exactly the events of that hour —
/// the current hour's too. A window [start, now) is therefore its whole
/// hours from the rollups, the current hour included, minus the events
/// of [now, end of the hour) (events may be up to 5 minutes ahead; usually
/// there are none), plus its partial first hour: the events of
/// [start, next hour) or, when that is the longer part, the rollup of
/// start's hour minus the events of [hour, start). No edge reads more
/// than half an hour of events, and the current hour reads none: about a
/// third of the events the plain split (partial hours from the events)
/// reads, for the default burn rates.
extension EvaluationRepository {
    static func hourFloor(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
    }

    static func hourCeiling(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 3600).rounded(.up) * 3600)
    }

    /// How one window is counted: the rollups of the hours from
    /// `rollupsFrom` through the current one (none when nil), and event
    /// ranges [from, to) added (+1) or taken away (-1).
    struct WindowPlan: Equatable {
        var rollupsFrom: Date?
        var events: [(from: Date, to: Date, sign: Int)]

        static func == (a: WindowPlan, b: WindowPlan) -> Bool {
            a.rollupsFrom == b.rollupsFrom && a.events.map { "\($0.from)\($0.to)\($0.sign)" } == b.events.map { "\($0.from)\($0.to)\($0.sign)" }
        }
    }

    /// The plan for the window [start, now), reading the fewest events.
    static func plan(start: Date, now: Date) -> WindowPlan {
        let hour = hourFloor(now), next = hour.addingTimeInterval(3600)
        let future = (from: now, to: next, sign: -1)
        if start >= hour {
            // Within the current hour: its events, or its rollup less what is outside.
            return now.timeIntervalSince(start) <= start.timeIntervalSince(hour)
                ? WindowPlan(rollupsFrom: nil, events: [(start, now, 1)])
                : WindowPlan(rollupsFrom: hour, events: [(hour, start, -1), future])
        }
        let floor = hourFloor(start), ceiling = hourCeiling(start)
        if floor == start { return WindowPlan(rollupsFrom: start, events: [future]) }
        return ceiling.timeIntervalSince(start) <= start.timeIntervalSince(floor)
            ? WindowPlan(rollupsFrom: ceiling, events: [(start, ceiling, 1), future])
            : WindowPlan(rollupsFrom: floor, events: [(floor, start, -1), future])
    }

    /// The ranges of events an evaluation reads: those of the plans,
    /// merged where they touch or overlap, oldest first.
    static func mergedRanges(_ plans: [WindowPlan]) -> [(Date, Date)] {
        let ranges = plans.flatMap { $0.events.map { ($0.from, $0.to) } }.filter { $0.0 < $0.1 }.sorted { $0.0 < $1.0 }
        var merged: [(Date, Date)] = []
        for (from, to) in ranges {
            if let last = merged.last, from <= last.1 {
                merged[merged.count - 1].1 = max(last.1, to)
            } else {
                merged.append((from, to))
            }
        }
        return merged
    }

    /// One group's good and total events over an SLO's period, as stored.
    struct PeriodCounts: Codable {
        var good: Int
        var total: Int
        var labels: [String: String]
    }

    /// Counts over every window of the rule's burn rates, and over its
    /// period when `withPeriod`.
    static func sloCounts(_ rule: Rule, _ connection: PostgresConnection, now: Date, withPeriod: Bool = true)
        throws -> ([String: [Int: RuleMath.Counts]], [String: [String: String]])
    {
        guard let slo = rule.slo else { return ([:], [:]) }
        let windows = Array(Set(slo.windows + (withPeriod ? [slo.periodSeconds] : []))).sorted()
        let hour = hourFloor(now)
        let plans = windows.map { plan(start: now.addingTimeInterval(-Double($0)), now: now) }
        // The events read: the plans' ranges merged, each a plain range
        // (pruned to its partition at plan time).
        let (rawGroup, _) = groupColumns(rule.groupBy)
        let filters = filterSQL(rule.filters)
        let ranges = mergedRanges(plans)
        var pieces: PostgresQuery = ""
        for (i, (from, to)) in ranges.enumerated() {
            let piece: PostgresQuery = """
                SELECT \(rawGroup), name, occurred_at FROM metric_events
                WHERE name = ANY(\(slo.total)::text[]) AND occurred_at >= \(from) AND occurred_at < \(to)\(filters)
                """
            pieces = i == 0 ? piece : "\(pieces) UNION ALL \(piece)"
        }
        // Whether an event or a rollup hour counts in a window changes only
        // at the plans' bounds: counting per interval between them
        // (width_bucket) keeps the aggregate to a handful of rows, and the
        // windows' sums are made from them here.
        let bounds = Array(Set(plans.flatMap { $0.events.flatMap { [$0.from, $0.to] } })).sorted()
        let hourBounds = Array(Set(plans.compactMap(\.rollupsFrom))).sorted()
        let (rolledGroup, _) = groupColumns(rule.groupBy, platform: "nullif(platform, '')")
        var parts: [PostgresQuery] = []
        if !ranges.isEmpty {
            parts.append("""
                SELECT g0, false AS rolled, name = ANY(\(slo.good)::text[]) AS good,
                       width_bucket(occurred_at, \(bounds)::timestamptz[]) AS b, count(*) AS n
                FROM (\(pieces)) events
                GROUP BY 1, 2, 3, 4
                """)
        }
        if let earliest = hourBounds.first {
            parts.append("""
                SELECT \(rolledGroup), true, name = ANY(\(slo.good)::text[]), width_bucket(hour, \(hourBounds)::timestamptz[]),
                       sum(count)::bigint
                FROM metric_rollups
                WHERE name = ANY(\(slo.total)::text[]) AND hour >= \(earliest) AND hour <= \(hour)
                      \(filterSQL(rule.filters, platform: "nullif(platform, '')"))
                GROUP BY 1, 2, 3, 4
                """)
        }
        var query: PostgresQuery = ""
        for (i, part) in parts.enumerated() { query = i == 0 ? part : "\(query) UNION ALL \(part)" }
        var sums: [String: [Int: (good: Int, total: Int)]] = [:]
        var labels: [String: [String: String]] = [:]
        let rows = parts.isEmpty ? [] : Array(try connection.query(query))
        for row in rows {
            let (key, groupLabels) = try group(row, rule, count: 1)
            labels[key] = groupLabels
            let rolled: Bool = try row.decode("rolled")
            let bucket: Int = try row.decode("b")
            let n: Int = try row.decode("n")
            let good: Bool = try row.decode("good")
            let edges = rolled ? hourBounds : bounds
            guard bucket >= 1, bucket <= edges.count else { continue }
            let lower = edges[bucket - 1]
            for (i, window) in windows.enumerated() {
                let sign: Int
                if rolled {
                    sign = plans[i].rollupsFrom.map { lower >= $0 } == true ? 1 : 0
                } else {
                    // Bounds hold every range's ends, so an interval lies wholly inside a range or outside it.
                    sign = plans[i].events.first { lower >= $0.from && lower < $0.to }?.sign ?? 0
                }
                guard sign != 0 else { continue }
                let sum = sums[key, default: [:]][window, default: (0, 0)]
                sums[key, default: [:]][window] = (sum.good + (good ? sign * n : 0), sum.total + sign * n)
            }
        }
        // A group counts in a window where it has events; counts cannot go
        // below zero (they would only if rollups and events disagreed).
        var out: [String: [Int: RuleMath.Counts]] = [:]
        for (key, byWindow) in sums {
            for (window, sum) in byWindow where sum.total > 0 {
                out[key, default: [:]][window] = RuleMath.Counts(good: min(max(0, sum.good), sum.total), total: sum.total)
            }
        }
        labels = labels.filter { out[$0.key] != nil }
        guard out.count <= rule.maxGroups else { throw TooManyGroups(limit: rule.maxGroups) }
        return (out, labels)
    }
}

/// Composite rules: the open alerts of their inputs, read in the
/// composite's own transaction (after the inputs' evaluations committed).
extension EvaluationRepository {
    static func measureComposite(_ rule: Rule, _ connection: PostgresConnection) throws -> [String: MeasuredGroup] {
        var inputs: [String: [Composites.InputGroup]] = [:]
        for row in try connection.query(
            """
            SELECT a.rule_name, a.labels::text AS labels, a.status FROM alerts a
            JOIN alert_rules r ON r.id = a.rule_id
            WHERE r.name = ANY(\(rule.inputs)::text[]) AND r.enabled AND a.status <> 'resolved'
            """) {
            inputs[try row.decode("rule_name"), default: []].append(
                Composites.InputGroup(labels: try labelsJSON(try row.decode("labels")), status: try row.decode("status")))
        }
        return RuleMath.compositeGroups(rule, Composites.evaluate(rule, inputs: inputs))
    }

    static func labelsJSON(_ text: String) throws -> [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))) ?? [:]
    }
}
