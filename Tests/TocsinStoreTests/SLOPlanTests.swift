import Foundation
import Testing
@testable import TocsinStore

@Suite("How an SLO window is counted from rollups and events")
struct SLOPlanTests {
    /// 1 where the plan counts the instant `t`, 0 where not: rollup hours
    /// from `rollupsFrom` through the current one, plus its signed ranges.
    static func coverage(_ plan: EvaluationRepository.WindowPlan, at t: Date, now: Date) -> Int {
        let end = EvaluationRepository.hourFloor(now).addingTimeInterval(3600)
        var total = plan.rollupsFrom.map { t >= $0 && t < end ? 1 : 0 } ?? 0
        for range in plan.events where t >= range.from && t < range.to { total += range.sign }
        return total
    }

    @Test("every plan counts exactly [start, now) and reads at most half an hour of events per edge, none of the current hour")
    func exact() {
        var generator = SystemRandomNumberGenerator()
        let base = Date(timeIntervalSince1970: 1_790_000_000)
        for _ in 0..<2000 {
            let now = base.addingTimeInterval(Double.random(in: 0..<86_400, using: &generator).rounded())
            let windows: [Double] = [1, 60, 300, 1800, 3599, 3600, 3601, 21_600, 259_200, 2_592_000,
                                     Double.random(in: 1...2_678_400, using: &generator).rounded()]
            for window in windows {
                let start = now.addingTimeInterval(-window)
                let plan = EvaluationRepository.plan(start: start, now: now)
                // Probe the bounds of every piece, either side, and points between.
                var probes = [start, now, EvaluationRepository.hourFloor(now), EvaluationRepository.hourFloor(now).addingTimeInterval(3600),
                              EvaluationRepository.hourFloor(start), EvaluationRepository.hourCeiling(start)]
                probes += plan.events.flatMap { [$0.from, $0.to] }
                probes += (0..<20).map { _ in start.addingTimeInterval(Double.random(in: -7200...(window + 7200), using: &generator)) }
                for probe in probes {
                    for t in [probe.addingTimeInterval(-0.5), probe, probe.addingTimeInterval(0.5)] {
                        let want = t >= start && t < now ? 1 : 0
                        #expect(Self.coverage(plan, at: t, now: now) == want, "window \(window) s, now \(now), t \(t): \(plan)")
                    }
                }
                let read = plan.events.filter { $0.from < now }.map { $0.to.timeIntervalSince($0.from) }
                #expect(read.allSatisfy { $0 <= 1800 }, "window \(window) s reads \(read)")
            }
        }
    }
}

@Suite("How a metrics summary reads a range from rollups and events")
struct SummaryPlanTests {
    typealias Plan = MetricEventRepository.SummaryPlan

    static func coverage(_ plan: Plan, at t: Date) -> Int {
        var total = t >= plan.rollupsFrom && t < plan.rollupsTo ? 1 : 0
        for range in plan.events where t >= range.from && t < range.to { total += range.sign }
        return total
    }

    @Test("every plan counts exactly [since, until), reads no more events than the range, and none after now when it ends now")
    func exact() {
        var generator = SystemRandomNumberGenerator()
        let base = Date(timeIntervalSince1970: 1_790_000_000)
        for _ in 0..<2000 {
            let now = base.addingTimeInterval(Double.random(in: 0..<86_400, using: &generator).rounded())
            let spans: [Double] = [1, 60, 900, 1800, 3599, 3600, 3601, 7200, 86_400, 604_800,
                                   Double.random(in: 1...2_678_400, using: &generator).rounded()]
            for span in spans {
                // Ranges ending now (windows) and ranges in the past (since/until).
                let past = now.addingTimeInterval(-Double.random(in: 1...200_000, using: &generator).rounded())
                for until in [now, past] {
                    let since = until.addingTimeInterval(-span)
                    let plan = Plan(since: since, until: until, now: now)
                    var probes = [since, until, since.addingTimeInterval(-1), until.addingTimeInterval(-1),
                                  EvaluationRepository.hourFloor(since), EvaluationRepository.hourCeiling(since),
                                  EvaluationRepository.hourFloor(until), EvaluationRepository.hourCeiling(until),
                                  plan.rollupsFrom, plan.rollupsTo]
                    probes += plan.events.flatMap { [$0.from, $0.to, $0.from.addingTimeInterval(-1), $0.to.addingTimeInterval(-1)] }
                    for t in probes {
                        let want = t >= since && t < until ? 1 : 0
                        #expect(Self.coverage(plan, at: t) == want, "since \(since) until \(until) now \(now) at \(t): \(plan)")
                    }
                    #expect(plan.events.count <= 2)
                    #expect(plan.rollupsFrom <= plan.rollupsTo)
                    let read = plan.events.reduce(0.0) { total, range in
                        total + (until == now && range.from >= now ? 0 : range.to.timeIntervalSince(range.from))
                    }
                    #expect(read <= span, "reads \(read) s of events for a range of \(span) s")
                    if until == now, span >= 3600 {
                        #expect(read <= 1800, "a window ending now reads at most half an hour of events: \(plan)")
                    }
                }
            }
        }
    }
}
