import Foundation

/// Log-scale histogram buckets for latencies and durations (seconds), as
/// kept in `metric_rollups.histogram`: bucket 0 holds values up to 1 ms,
/// bucket i values in (1 ms × 1.1^(i−1), 1 ms × 1.1^i], the last bucket
/// everything above. Mirrors SQL's `tocsin_histogram_bucket`.
public enum LatencyHistogram {
    public static let bucketCount = 160
    static let base = 0.001
    static let growth = 1.1

    /// Total for every Double: NaN and values up to 1 ms are bucket 0,
    /// values beyond the last bound (infinity included) the last bucket. The
    /// position is compared as a Double before it becomes an Int, so no
    /// input can trap the conversion.
    public static func bucket(_ value: Double) -> Int {
        guard value > base else { return 0 }
        let position = (log(value / base) / log(growth)).rounded(.up)
        guard position < Double(bucketCount - 1) else { return bucketCount - 1 }
        return Int(position)
    }

    static func upperBound(_ bucket: Int) -> Double { base * pow(growth, Double(bucket)) }
    static func lowerBound(_ bucket: Int) -> Double { bucket == 0 ? 0 : upperBound(bucket - 1) }

    /// Estimates the percentile the way `percentile_cont` defines it (the
    /// value at rank fraction × (n − 1)), assuming values spread evenly
    /// inside their bucket, and clamped to the observed minimum and maximum.
    /// Within 5 % of the exact value for values between 1 ms and an hour.
    public static func percentile(_ counts: [Int], fraction: Double, min lowest: Double, max highest: Double) -> Double? {
        let total = counts.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = fraction * Double(total - 1)
        var before = 0
        for (bucket, count) in counts.enumerated() where count > 0 {
            if Double(before + count) > rank {
                let offset = (rank - Double(before) + 0.5) / Double(count)
                let lower = Swift.max(lowerBound(bucket), lowest)
                let upper = Swift.min(bucket == bucketCount - 1 ? highest : upperBound(bucket), highest)
                return Swift.min(Swift.max(lower + (upper - lower) * offset, lowest), highest)
            }
            before += count
        }
        return highest
    }
}
