import Foundation
import Testing
import TocsinCore

@Suite("POST /api/metrics body: parsing and validation")
struct EventBatchParserTests {
    let now: Date = 1_795_935_323  // 2026-11-29T06:55:23Z
    var parser: EventBatchParser { EventBatchParser(now: now) }

    func parse(_ json: String) -> EventBatchParser.Outcome { parser.parse(Array(json.utf8)) }

    func issues(_ json: String) -> [ValidationIssue] {
        if case .invalid(let issues, _) = parse(json) { return issues }
        Issue.record("expected validation issues for \(json), got \(parse(json))")
        return []
    }

    @Test("one event or an array, with defaults")
    func valid() throws {
        guard case .valid(let one) = parse(#"{"name":"upload.success","platform":"tiktok"}"#) else {
            Issue.record("single event rejected")
            return
        }
        #expect(one == [MetricEvent(name: "upload.success", platform: "tiktok", value: 1, occurredAt: nil)])

        let json = #"""
        [ {"name": "webhook.latency", "value": 1.25e0, "occurred_at": "2026-11-29T06:50:00.5+01:00",
           "labels": {"region": "eu\u00e9", "tab\tkey": "line\nbreak"}},
          {"name": "custom_metric.sub_part", "platform": null, "value": -3} ]
        """#
        guard case .valid(let events) = parse(json) else {
            Issue.record("array rejected: \(parse(json))")
            return
        }
        #expect(events.count == 2)
        #expect(events[0].value == 1.25)
        #expect(events[0].occurredAt == RFC3339.parse("2026-11-29T05:50:00.5Z"))
        #expect(events[0].labels == [.init(key: "region", value: "eué"), .init(key: "tab\tkey", value: "line\nbreak")])
        #expect(events[0].labelsJSON == #"{"region":"eué","tab\tkey":"line\nbreak"}"#)
        #expect(events[1].platform == nil)
        #expect(events[1].value == -3)
    }

    @Test("malformed JSON is refused with a position", arguments: [
        "", "   ", "{", #"{"name": "a",}"#, #"[{"name":"a"} {"name":"b"}]"#, #"{"name": 'a'}"#, "NaN",
        #"{"name":"a","value":NaN}"#, #"{"name":"a","value":Infinity}"#, #"{"name":"a"} trailing"#, "42", "\"text\"",
        #"{"name":"a\u12"}"#, #"{"name":"a","value":01}"#, #"{"name":"a","value":1.}"#,
    ])
    func malformed(json: String) {
        guard case .malformed(let reason) = parse(json) else {
            Issue.record("accepted or misreported: \(json) → \(parse(json))")
            return
        }
        #expect(!reason.isEmpty)
    }

    @Test("wrong types, unknown and duplicate fields are reported per field")
    func fieldIssues() {
        #expect(issues(#"{"name": 5}"#).contains(ValidationIssue(index: 0, field: "name", reason: "must be a string")))
        #expect(issues(#"{"name": "a", "value": "12"}"#).contains(ValidationIssue(index: 0, field: "value", reason: "must be a number")))
        #expect(issues(#"{"name": "a", "platform": 3}"#).first?.field == "platform")
        #expect(issues(#"{"name": "a", "colour": "red"}"#).first?.field == "colour")
        #expect(issues(#"{"name": "a", "name": "b"}"#).first?.reason == "the field appears twice")
        #expect(issues(#"{"value": 1}"#).first == ValidationIssue(index: 0, field: "name", reason: "is required"))
        #expect(issues(#"{"name": ""}"#).first?.reason == "must not be empty")
        #expect(issues(#"{"name": "Upload.Success"}"#).first?.field == "name")
        #expect(issues(#"{"name": "upload..success"}"#).first?.field == "name")
        #expect(issues(#"{"name": "a", "platform": "TikTok"}"#).first?.field == "platform")
        #expect(issues(#"{"name": "\#(String(repeating: "a", count: 129))"}"#).first?.field == "name")
        #expect(issues(#"{"name": "a", "labels": ["x"]}"#).first?.field == "labels")
        #expect(issues(#"{"name": "a", "labels": {"k": 1}}"#).first?.field == "labels.k")
        #expect(issues(#"[1, {"name": "a"}]"#) == [ValidationIssue(index: 0, reason: "an event must be a JSON object")])
    }

    @Test("values must be finite, latencies and durations non-negative")
    func values() {
        #expect(issues(#"{"name": "a", "value": 1e400}"#).first?.reason == "must be a finite number from -1e12 to 1e12")
        #expect(issues(#"{"name": "a", "value": 1e200}"#).first?.field == "value")
        #expect(issues(#"{"name": "a", "value": -1.0000001e12}"#).first?.field == "value")
        #expect(issues(#"{"name": "webhook.latency", "value": 1e306}"#).first?.field == "value")
        #expect(issues(#"{"name": "worker.duration", "value": 31536000.5}"#).first?.field == "value")
        #expect(issues(#"{"name": "a", "labels": {"k": "a\u0000b"}}"#).first?.reason
                == "label names and values must not contain NUL (U+0000)")
        #expect(issues(#"{"name": "a", "labels": {"a\u0000": "b"}}"#).first?.field == "labels.a\u{0}")
        #expect(issues(#"{"name": "webhook.latency", "value": -0.1}"#).first?.field == "value")
        #expect(issues(#"{"name": "worker.duration", "value": -1}"#).first?.field == "value")
        guard case .valid = parse(#"{"name": "webhook.latency", "value": 0}"#) else {
            Issue.record("zero latency refused")
            return
        }
    }

    @Test("occurred_at: RFC 3339, at most 5 minutes ahead, within the retention")
    func times() {
        let future = RFC3339.format(now + 301)
        let nearFuture = RFC3339.format(now + 299)
        let old = RFC3339.format(now - 30 * 86_400 - 1)
        let inside = RFC3339.format(now - 29 * 86_400)
        #expect(issues(#"{"name": "a", "occurred_at": "\#(future)"}"#).first?.reason == "is more than 5 minutes in the future")
        #expect(issues(#"{"name": "a", "occurred_at": "\#(old)"}"#).first?.reason == "is older than the retention of 30 days")
        #expect(issues(#"{"name": "a", "occurred_at": "2026-11-29 06:00:00"}"#).first?.field == "occurred_at")
        #expect(issues(#"{"name": "a", "occurred_at": "2026-02-30T00:00:00Z"}"#).first?.field == "occurred_at")
        #expect(issues(#"{"name": "a", "occurred_at": 1795935323}"#).first?.field == "occurred_at")
        guard case .valid(let events) = parse(#"[{"name": "a", "occurred_at": "\#(nearFuture)"}, {"name": "b", "occurred_at": "\#(inside)"}]"#) else {
            Issue.record("times inside the allowed range refused")
            return
        }
        #expect(events.count == 2)
    }

    @Test("labels: at most 32, names and values at most 256 characters")
    func labels() {
        let many = (0..<33).map { #""k\#($0)": "v""# }.joined(separator: ",")
        #expect(issues(#"{"name": "a", "labels": {\#(many)}}"#).contains { $0.reason == "at most 32 labels" })
        let long = String(repeating: "x", count: 257)
        #expect(!issues(#"{"name": "a", "labels": {"k": "\#(long)"}}"#).isEmpty)
        #expect(!issues(#"{"name": "a", "labels": {"": "v"}}"#).isEmpty)
        // Far past the limit (a hostile body): one count issue, no issue per label after it.
        let flood = (0..<50_000).map { #""k\#($0 % 40)": "v""# }.joined(separator: ",")
        let flooded = issues(#"{"name": "a", "labels": {\#(flood)}}"#)
        #expect(flooded.filter { $0.reason == "at most 32 labels" }.count == 1)
        #expect(flooded.count == 1, "\(flooded.prefix(3))")
        // A repeated label within the limit is reported as such.
        #expect(issues(#"{"name": "a", "labels": {"k": "v", "j": "w", "k": "x"}}"#).first?.reason == "the label appears twice")
        let ok = (0..<32).map { #""k\#($0)": "\#(String(repeating: "v", count: 256))""# }.joined(separator: ",")
        guard case .valid = parse(#"{"name": "a", "labels": {\#(ok)}}"#) else {
            Issue.record("32 labels of 256 characters refused")
            return
        }
    }

    @Test("more than 10,000 events are refused; issues are capped at 100 with the total")
    func limits() {
        let tooMany = "[" + Array(repeating: #"{"name":"a"}"#, count: 10_001).joined(separator: ",") + "]"
        #expect(parse(tooMany) == .tooManyEvents(limit: 10_000))
        let exactly = "[" + Array(repeating: #"{"name":"a"}"#, count: 10_000).joined(separator: ",") + "]"
        guard case .valid(let events) = parse(exactly) else {
            Issue.record("10,000 events refused")
            return
        }
        #expect(events.count == 10_000)
        let bad = "[" + Array(repeating: #"{"name":""}"#, count: 250).joined(separator: ",") + "]"
        guard case .invalid(let issues, let total) = parse(bad) else {
            Issue.record("bad batch accepted")
            return
        }
        #expect(issues.count == 100)
        #expect(total == 250)
        #expect(issues[99].index == 99)
        #expect(parse("[]") == .invalid(issues: [ValidationIssue(reason: "the array is empty: send at least one event")], total: 1))
    }

    @Test("one bad event among 1,000 is reported by index")
    func oneBad() {
        var events = Array(repeating: #"{"name":"upload.success","platform":"tiktok"}"#, count: 1000)
        events[500] = #"{"name":"upload.success","value":"x"}"#
        #expect(issues("[" + events.joined(separator: ",") + "]") == [ValidationIssue(index: 500, field: "value", reason: "must be a number")])
    }
}

@Suite("RFC 3339, CSV, time ranges and series queries")
struct FormatTests {
    @Test("RFC 3339 parses offsets and fractions and formats back")
    func rfc3339() {
        #expect(RFC3339.parse("2026-11-29T06:55:23Z") == 1_795_935_323)
        #expect(RFC3339.parse("2026-11-29t08:55:23+02:00") == 1_795_935_323)
        #expect(RFC3339.parse("2026-11-29 06:55:23.25z") == 1_795_935_323.25)
        #expect(RFC3339.parse("2024-02-29T00:00:00Z") != nil)
        #expect(RFC3339.parse("2025-02-29T00:00:00Z") == nil)
        #expect(RFC3339.parse("2026-11-29T06:55Z") == nil)
        #expect(RFC3339.parse("2026-11-29T06:55:23+0200") == nil)
        #expect(RFC3339.format(1_795_935_323.25) == "2026-11-29T06:55:23.250000Z")
        #expect(RFC3339.format(-1.5) == "1969-12-31T23:59:58.500000Z")
    }

    @Test("CSV quotes commas, quotes and newlines and parses back")
    func csv() {
        let rows = [["a", "b,c", "say \"hi\"", "two\nlines", ""], ["1", "2", "3", "4", "5"]]
        let text = rows.map { CSV.row($0) }.joined()
        #expect(text.hasPrefix("a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\","))
        #expect(CSV.parse(text) == rows)
    }

    @Test("time ranges: named windows, since/until, and their errors")
    func ranges() throws {
        let now: Date = 1_000_000
        #expect(try TimeRange.parse(window: nil, since: nil, until: nil, now: now) == TimeRange(since: now - 86_400, until: now))
        #expect(try TimeRange.parse(window: "15m", since: nil, until: nil, now: now).seconds == 900)
        #expect(throws: ValidationFailure.self) { try TimeRange.parse(window: "2h", since: nil, until: nil, now: now) }
        #expect(throws: ValidationFailure.self) {
            try TimeRange.parse(window: "1h", since: "1970-01-01T00:00:00Z", until: nil, now: now)
        }
        #expect(throws: ValidationFailure.self) {
            try TimeRange.parse(window: nil, since: "1970-01-02T00:00:00Z", until: "1970-01-01T00:00:00Z", now: now)
        }
        let explicit = try TimeRange.parse(window: nil, since: "1970-01-01T00:00:00Z", until: "1970-01-01T01:00:00Z", now: now)
        #expect(explicit == TimeRange(since: 0, until: 3600))
    }

    @Test("series queries validate their parameters")
    func seriesQuery() throws {
        let range = TimeRange(since: 0, until: 86_400)
        let ratio = try SeriesQuery.parse(name: nil, agg: "ratio", numerator: "upload.failure",
                                          denominator: "upload.success,upload.failure", bucket: "1h", platform: nil, range: range)
        #expect(ratio.aggregation == .ratio(numerator: ["upload.failure"], denominator: ["upload.success", "upload.failure"]))
        #expect(ratio.bucketSeconds == 3600)
        #expect(throws: ValidationFailure.self) {
            try SeriesQuery.parse(name: "a", agg: "median", numerator: nil, denominator: nil, bucket: "1h", platform: nil, range: range)
        }
        #expect(throws: ValidationFailure.self) {
            try SeriesQuery.parse(name: "a", agg: "count", numerator: nil, denominator: nil, bucket: "2m", platform: nil, range: range)
        }
        // 1m buckets over 7 days is too many points.
        #expect(throws: ValidationFailure.self) {
            try SeriesQuery.parse(name: "a", agg: "count", numerator: nil, denominator: nil, bucket: "1m", platform: nil,
                                  range: TimeRange(since: 0, until: Date(timeIntervalSince1970: 7 * 86_400)))
        }
        #expect(throws: ValidationFailure.self) {
            try SeriesQuery.parse(name: nil, agg: "avg", numerator: nil, denominator: nil, bucket: "1h", platform: nil, range: range)
        }
    }
}

@Suite("JSON text of labels")
struct JSONTextTests {
    /// The escaping, scalar by scalar: what the byte-wise one must equal.
    static func oracle(_ string: String) -> String {
        var out = ""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    @Test("escaping byte by byte gives what escaping scalar by scalar gives, and labels' JSON parses back to the labels")
    func escaping() throws {
        let alphabet: [Character] = ["a", "Z", "\"", "\\", "\n", "\r", "\t", "\u{1}", "\u{1F}", "\u{7F}", "é", "🚨", "/", " ", "\u{2028}"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let text = String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            #expect(JSONText.escaped(text) == Self.oracle(text), "\(text.debugDescription)")
            let event = MetricEvent(name: "a", labels: [.init(key: "k" + text, value: text), .init(key: "plain", value: "v")])
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(event.labelsJSON.utf8)) as? [String: String])
            #expect(parsed == ["k" + text: text, "plain": "v"], "\(event.labelsJSON)")
        }
    }
}
