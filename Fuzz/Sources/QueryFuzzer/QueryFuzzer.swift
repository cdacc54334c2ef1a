// The query parameters of the read endpoints, as QueryReader hands them to
// TocsinCore: window/since/until (TimeRange) and the series parameters
// (SeriesQuery). Values arrive percent-decoded, at most 2,048 bytes and
// without NUL, so NUL separates them here. A range or query is within its
// bounds, or the problems say which parameter.
import Foundation
import FuzzSupport
import TocsinCore

let now = Date(timeIntervalSince1970: 1_795_935_323)  // 2026-11-29T06:55:23Z
let maxSeconds = 400.0 * 86_400

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzInput(data, size) { bytes in
        var reader = ByteReader(bytes)
        let present = UInt16(reader.byte()) << 8 | UInt16(reader.byte())
        var parts = Array(reader.rest()).split(separator: 0, omittingEmptySubsequences: false).makeIterator()
        func parameter(_ bit: Int) -> String? {
            let value = parts.next().map { String(decoding: $0.prefix(2048), as: UTF8.self) }
            guard present & (1 << bit) != 0 else { return nil }
            return value ?? ""
        }
        let window = parameter(0), since = parameter(1), until = parameter(2)
        let name = parameter(3), agg = parameter(4), numerator = parameter(5), denominator = parameter(6)
        let bucket = parameter(7), platform = parameter(8)

        let range: TimeRange
        do throws(ValidationFailure) {
            range = try TimeRange.parse(window: window, since: since, until: until, now: now, defaultWindow: "24h",
                                        maxSeconds: maxSeconds)
        } catch {
            require(!error.issues.isEmpty, "a refused range without issues")
            for issue in error.issues {
                require(["window", "since", "until"].contains(issue.field ?? ""), "range issue on \(String(describing: issue.field))")
            }
            return
        }
        let seconds = range.seconds
        require(range.since.timeIntervalSince1970.isFinite && range.until.timeIntervalSince1970.isFinite,
                "a range with an infinite end")
        require(seconds > 0 && seconds <= maxSeconds, "a range of \(seconds) s")
        if since == nil && until == nil {
            require(range.until == now && TimeRange.windows.values.contains(seconds), "window \(String(describing: window)) → \(seconds) s")
        }
        if until == nil { require(range.until == now, "until defaults to now") }

        let query: SeriesQuery
        do throws(ValidationFailure) {
            query = try SeriesQuery.parse(name: name, agg: agg, numerator: numerator, denominator: denominator, bucket: bucket,
                                          platform: platform, range: range)
        } catch {
            require(!error.issues.isEmpty, "a refused query without issues")
            return
        }
        require(SeriesQuery.buckets.values.contains(query.bucketSeconds), "bucket \(query.bucketSeconds)")
        require(seconds / Double(query.bucketSeconds) <= Double(SeriesQuery.maxPoints),
                "\(seconds / Double(query.bucketSeconds)) buckets")
        if let platform = query.platform { require(PlatformName.isValid(platform), "platform \(excerpt(platform))") }
        switch query.aggregation {
        case .ratio(let n, let d):
            for list in [n, d] {
                require(!list.isEmpty && list.count <= SeriesQuery.maxNames && list.allSatisfy(MetricName.isValid),
                        "ratio names \(list.map { excerpt($0) })")
            }
            require(query.names == Array(Set(n + d)).sorted(), "series names of a ratio")
        default:
            require(!query.names.isEmpty && query.names.count <= SeriesQuery.maxNames && query.names.allSatisfy(MetricName.isValid),
                    "names \(query.names.map { excerpt($0) })")
        }
    }
}
