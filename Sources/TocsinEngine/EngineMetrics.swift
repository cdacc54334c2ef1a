import Metrics
import TocsinCore

/// The engine's metrics, through swift-metrics (exported in Prometheus text
/// format at /metrics). Handles are looked up by name and labels, so they
/// can be made at the point of use.
public enum EngineMetrics {
    /// evaluated, busy (another worker had it), not_due, error.
    public static func evaluation(outcome: String, seconds: Double? = nil) {
        Counter(label: MetricsCatalog.ruleEvaluations.name, dimensions: [("outcome", outcome)]).increment()
        if let seconds, seconds.isFinite, seconds >= 0 {
            Timer(label: MetricsCatalog.ruleEvaluationDuration.name).recordNanoseconds(Int64(min(seconds, 3600) * 1e9))
        }
    }

    public static func transition(_ kind: String) {
        Counter(label: MetricsCatalog.alertTransitions.name, dimensions: [("transition", kind)]).increment()
    }
}
