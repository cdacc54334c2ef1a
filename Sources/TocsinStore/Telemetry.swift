import Metrics

/// Tocsin's own metrics, through swift-metrics (exported in Prometheus text
/// format at /metrics). Handles are looked up by name and labels, so they
/// can be made at the point of use.
public enum Telemetry {
    public static func eventsIngested(_ count: Int) {
        Counter(label: "tocsin_events_ingested_total").increment(by: count)
    }

    /// A request to POST /api/metrics refused: malformed, invalid, too_many, too_large.
    public static func ingestRejected(reason: String) {
        Counter(label: "tocsin_ingest_rejected_total", dimensions: [("reason", reason)]).increment()
    }

    /// evaluated, busy (another worker had it), not_due, error.
    public static func evaluation(outcome: String, seconds: Double? = nil) {
        Counter(label: "tocsin_rule_evaluations_total", dimensions: [("outcome", outcome)]).increment()
        if let seconds {
            Timer(label: "tocsin_rule_evaluation_duration_seconds").recordNanoseconds(Int64(seconds * 1e9))
        }
    }

    public static func transition(_ kind: String) {
        Counter(label: "tocsin_alert_transitions_total", dimensions: [("transition", kind)]).increment()
    }

    /// sent, retry, dead, rate_limited, silenced.
    public static func notificationAttempt(channel: String, outcome: String) {
        Counter(label: "tocsin_notification_attempts_total", dimensions: [("channel", channel), ("outcome", outcome)]).increment()
    }
}
