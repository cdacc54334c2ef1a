import Metrics

/// The engine's metrics, through swift-metrics (exported in Prometheus text
/// format at /metrics). Handles are looked up by name and labels, so they
/// can be made at the point of use.
public enum EngineMetrics {
    /// evaluated, busy (another worker had it), not_due, error.
    public static func evaluation(outcome: String, seconds: Double? = nil) {
        Counter(label: "tocsin_rule_evaluations_total", dimensions: [("outcome", outcome)]).increment()
        if let seconds, seconds.isFinite, seconds >= 0 {
            Timer(label: "tocsin_rule_evaluation_duration_seconds").recordNanoseconds(Int64(min(seconds, 3600) * 1e9))
        }
    }

    public static func transition(_ kind: String) {
        Counter(label: "tocsin_alert_transitions_total", dimensions: [("transition", kind)]).increment()
    }
}
