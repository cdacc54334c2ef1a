import Foundation

/// One group's events inside a rule's moving window, kept incrementally:
/// every event enters once and leaves once, so replaying a rule over a
/// month costs the number of events, not steps × events. It answers the
/// same measurement as `RuleMath.measure` over the events in the window.
struct SlidingWindow {
    let rule: Rule
    private let numerator: Set<String>
    private let denominator: Set<String>
    private(set) var count = 0
    private var top = 0
    private var bottom = 0
    private var sum = CompensatedSum()
    /// Order statistics (min, max, p95) over the values, when the rule
    /// needs them: a Fenwick tree over the group's distinct values.
    private var order: OrderStatistics?

    init(rule: Rule, values: [Double]) {
        self.rule = rule
        numerator = Set(rule.numerator)
        denominator = Set(rule.denominator)
        if rule.kind == .aggregate, [.min, .max, .p95].contains(rule.function ?? .avg) {
            order = OrderStatistics(values: values)
        }
    }

    mutating func add(_ point: RuleMath.Point) { update(point, by: 1) }
    mutating func remove(_ point: RuleMath.Point) { update(point, by: -1) }

    private mutating func update(_ point: RuleMath.Point, by delta: Int) {
        count += delta
        switch rule.kind {
        case .ratio:
            if numerator.contains(point.name) { top += delta }
            if denominator.contains(point.name) { bottom += delta }
        case .count, .composite, .slo:
            break
        case .aggregate:
            sum.add(delta > 0 ? point.value : -point.value)
            order?.update(point.value, by: delta)
        }
    }

    var measurement: RuleMeasurement {
        switch rule.kind {
        case .count:
            return RuleMeasurement(value: Double(count), samples: count)
        case .ratio:
            return RuleMath.ratio(numerator: top, denominator: bottom, minSamples: rule.minSamples)
        case .composite, .slo:
            return .noData
        case .aggregate:
            guard count >= max(1, rule.minSamples) else { return RuleMeasurement(value: nil, samples: count) }
            let value: Double? = switch rule.function ?? .avg {
            case .avg: sum.value / Double(count)
            case .sum: sum.value
            case .min: order?.value(rank: 0)
            case .max: order?.value(rank: count - 1)
            case .p95: order?.percentileCont(0.95, count: count)
            }
            return RuleMeasurement(value: value, samples: count)
        }
    }
}

/// A running sum that stays exact enough when values are added and taken
/// out again (Neumaier's compensation).
struct CompensatedSum {
    private var total = 0.0
    private var compensation = 0.0

    mutating func add(_ x: Double) {
        let t = total + x
        if abs(total) >= abs(x) {
            compensation += (total - t) + x
        } else {
            compensation += (x - t) + total
        }
        total = t
    }

    var value: Double { total + compensation }
}

/// Counts per distinct value in a Fenwick tree: insert, remove and the k-th
/// smallest in O(log n).
struct OrderStatistics {
    private let values: [Double]
    private var tree: [Int]

    init(values: [Double]) {
        self.values = Array(Set(values)).sorted()
        tree = Array(repeating: 0, count: self.values.count + 1)
    }

    mutating func update(_ value: Double, by delta: Int) {
        var lower = 0, upper = values.count
        while lower < upper {
            let mid = (lower + upper) / 2
            if values[mid] < value { lower = mid + 1 } else { upper = mid }
        }
        guard lower < values.count, values[lower] == value else { return }
        var i = lower + 1
        while i < tree.count {
            tree[i] += delta
            i += i & (-i)
        }
    }

    /// The value of rank `k` (0-based) among those present.
    func value(rank k: Int) -> Double? {
        guard k >= 0, !values.isEmpty else { return nil }
        var position = 0
        var remaining = k + 1
        var step = 1
        while step * 2 < tree.count { step *= 2 }
        while step > 0 {
            let next = position + step
            if next < tree.count, tree[next] < remaining {
                position = next
                remaining -= tree[next]
            }
            step /= 2
        }
        return position < values.count ? values[position] : nil
    }

    /// PostgreSQL's percentile_cont over the `count` values present.
    func percentileCont(_ fraction: Double, count: Int) -> Double? {
        guard count > 0 else { return nil }
        let position = fraction * Double(count - 1)
        let lowerRank = Int(position.rounded(.down))
        guard let lower = value(rank: lowerRank), let upper = value(rank: min(count - 1, lowerRank + 1)) else { return nil }
        return lower + (upper - lower) * (position - Double(lowerRank))
    }
}
