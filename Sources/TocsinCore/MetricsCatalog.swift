/// Every metric Tocsin exports on /metrics, with its type, labels and help
/// text: the one list the code records through, the exporter takes its
/// `# HELP` lines from, and docs/MONITORING_GUIDE.md documents (a test
/// checks all three). Names follow Prometheus' conventions — `_total` for
/// counters, the unit in the name — which `promtool check metrics` verifies
/// in the tests.
public struct MetricFamily: Sendable, Hashable {
    public enum Kind: String, Sendable { case counter, gauge, histogram }

    public var name: String
    public var kind: Kind
    public var labels: [String]
    public var help: String
}

public enum MetricsCatalog {
    // MARK: HTTP (every API process)
    public static let httpRequests = MetricFamily(
        name: "tocsin_http_requests_total", kind: .counter, labels: ["method", "route", "status"],
        help: "HTTP requests answered, by method, route template and status code")
    public static let httpRequestDuration = MetricFamily(
        name: "tocsin_http_request_duration_seconds", kind: .histogram, labels: ["method", "route"],
        help: "Time to answer an HTTP request (to the response head), by method and route template")
    public static let httpRequestsInFlight = MetricFamily(
        name: "tocsin_http_requests_in_flight", kind: .gauge, labels: [],
        help: "HTTP requests being answered now")

    // MARK: Ingestion
    public static let eventsIngested = MetricFamily(
        name: "tocsin_events_ingested_total", kind: .counter, labels: [],
        help: "Metric events stored by POST /api/metrics")
    public static let ingestRejected = MetricFamily(
        name: "tocsin_ingest_rejected_total", kind: .counter, labels: ["reason"],
        help: "POST /api/metrics requests refused, by reason (malformed, invalid, too_many, too_large)")

    // MARK: Evaluation (workers)
    public static let ruleEvaluations = MetricFamily(
        name: "tocsin_rule_evaluations_total", kind: .counter, labels: ["outcome"],
        help: "Rule evaluations attempted, by outcome (evaluated, busy, not_due, error)")
    public static let ruleEvaluationDuration = MetricFamily(
        name: "tocsin_rule_evaluation_duration_seconds", kind: .histogram, labels: [],
        help: "Time of one rule's evaluation transaction")
    public static let alertTransitions = MetricFamily(
        name: "tocsin_alert_transitions_total", kind: .counter, labels: ["transition"],
        help: "Alert transitions made by evaluations, by kind (pending, fired, resolved)")

    // MARK: Delivery (workers)
    public static let notificationAttempts = MetricFamily(
        name: "tocsin_notification_attempts_total", kind: .counter, labels: ["channel", "outcome"],
        help: "Notification delivery attempts, by channel and outcome (sent, retry, dead, rate_limited, silenced)")

    // MARK: State, read when scraped
    public static let alerts = MetricFamily(
        name: "tocsin_alerts", kind: .gauge, labels: ["status"], help: "Open alerts, by status")
    public static let outboxPending = MetricFamily(
        name: "tocsin_outbox_pending", kind: .gauge, labels: [], help: "Notifications waiting to be delivered")
    public static let outboxOldestPending = MetricFamily(
        name: "tocsin_outbox_oldest_pending_seconds", kind: .gauge, labels: [],
        help: "Age of the oldest notification waiting to be delivered")
    public static let rulesFailing = MetricFamily(
        name: "tocsin_rules_failing", kind: .gauge, labels: [],
        help: "Enabled rules whose last evaluation failed (GET /api/rules/{name} says why)")
    public static let rulesTooManyGroups = MetricFamily(
        name: "tocsin_rules_too_many_groups", kind: .gauge, labels: [],
        help: "Enabled rules failing because they found more groups than their max_groups")
    public static let databaseUp = MetricFamily(
        name: "tocsin_database_up", kind: .gauge, labels: [], help: "1 when the last scrape could read the database")
    public static let poolConnections = MetricFamily(
        name: "tocsin_db_pool_connections", kind: .gauge, labels: ["pool", "state"],
        help: "Database connections of this process, by pool (primary, read, read_fallback) and state (open, in_use, idle)")
    public static let poolWaiters = MetricFamily(
        name: "tocsin_db_pool_waiters", kind: .gauge, labels: ["pool"],
        help: "Tasks of this process waiting for a database connection, by pool")

    public static let all: [MetricFamily] = [
        httpRequests, httpRequestDuration, httpRequestsInFlight, eventsIngested, ingestRejected, ruleEvaluations,
        ruleEvaluationDuration, alertTransitions, notificationAttempts, alerts, outboxPending, outboxOldestPending,
        rulesFailing, rulesTooManyGroups, databaseUp, poolConnections, poolWaiters,
    ]

    static let byName: [String: MetricFamily] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The family of `name`, if Tocsin defines one.
    public static func family(named name: String) -> MetricFamily? { byName[name] }
}
