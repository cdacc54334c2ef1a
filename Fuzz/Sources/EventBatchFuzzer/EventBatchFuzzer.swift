// POST /api/metrics bodies: any bytes give a typed outcome, and the events
// of a valid batch satisfy every documented bound.
import Foundation
import FuzzSupport
import TocsinCore

let now = Date(timeIntervalSince1970: 1_795_935_323)  // 2026-11-29T06:55:23Z
let parser = EventBatchParser(now: now)
let limits = parser.limits

func check(_ event: MetricEvent, _ index: Int) {
    let at = "event \(index)"
    require(MetricName.isValid(event.name) && event.name.utf8.count <= MetricName.maxLength,
            "\(at): name \(excerpt(event.name)) is not a valid metric name")
    if let platform = event.platform {
        require(PlatformName.isValid(platform), "\(at): platform \(excerpt(platform)) is not valid")
    }
    require(event.value.isFinite && abs(event.value) <= limits.maxAbsValue,
            "\(at): value \(event.value) is not finite within ±\(limits.maxAbsValue)")
    if MetricName.isNonNegative(event.name) {
        require((0...limits.maxSeconds).contains(event.value),
                "\(at): \(event.name) = \(event.value) is not seconds from 0 to \(limits.maxSeconds)")
    }
    if let occurredAt = event.occurredAt {
        let t = occurredAt.timeIntervalSince(now)
        require(t.isFinite && t <= limits.futureTolerance && t >= -Double(limits.retentionDays) * 86_400,
                "\(at): occurred_at \(t) s from now is outside the accepted range")
    }
    require(event.labels.count <= limits.maxLabels, "\(at): \(event.labels.count) labels")
    var keys: Set<[UInt8]> = []
    for label in event.labels {
        require(!label.key.isEmpty, "\(at): an empty label name")
        require(isBoundedText(label.key, maxLength: limits.maxLabelLength),
                "\(at): label name \(excerpt(label.key)) is over \(limits.maxLabelLength) characters or has NUL")
        require(isBoundedText(label.value, maxLength: limits.maxLabelLength),
                "\(at): label \(excerpt(label.key)) value \(excerpt(label.value)) is over \(limits.maxLabelLength) characters or has NUL")
        require(keys.insert(Array(label.key.utf8)).inserted, "\(at): label \(excerpt(label.key)) twice")
    }
    // The stored labels document is JSON that reads back as the labels.
    let json = event.labelsJSON
    let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String]
    require(object != nil && object!.count == event.labels.count,
            "\(at): labelsJSON \(excerpt(json)) does not read back as \(event.labels.count) labels")
    for label in event.labels {
        require(object?[label.key].map { Array($0.utf8) == Array(label.value.utf8) } == true,
                "\(at): labelsJSON changes label \(excerpt(label.key))")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzInput(data, size) { bytes in
        let body = Array(bytes)
        switch parser.parse(body) {
        case .valid(let events):
            require(!events.isEmpty && events.count <= limits.maxEvents, "a valid batch of \(events.count) events")
            for (index, event) in events.enumerated() { check(event, index) }
            // What the parser accepts is JSON to any other reader too.
            require((try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])) != nil,
                    "a batch the parser accepts is not JSON to JSONSerialization")
        case .invalid(let issues, let total):
            require(!issues.isEmpty && issues.count <= limits.maxReportedIssues && total >= issues.count,
                    "\(issues.count) issues reported of \(total)")
            for issue in issues {
                require(!issue.reason.isEmpty, "an issue without a reason")
                if let index = issue.index { require(index >= 0 && index < limits.maxEvents, "issue index \(index)") }
            }
        case .malformed(let reason):
            require(!reason.isEmpty, "malformed without a reason")
        case .tooManyEvents(let limit):
            require(limit == limits.maxEvents, "tooManyEvents(\(limit))")
        }
    }
}
