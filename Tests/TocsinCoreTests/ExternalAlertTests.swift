import Foundation
import Testing
import TocsinCore

@Suite("External alerts: fingerprints, Alertmanager matchers, label sets")
struct ExternalAlertTests {
    @Test("the fingerprint is Alertmanager's (the value Alertmanager 0.25 gives the same labels)")
    func fingerprint() {
        // Posted to a real prometheus-alertmanager 0.25: it answered this fingerprint.
        #expect(Fingerprint.of(["alertname": "DiskFull", "severity": "critical", "instance": "a"]) == "75660623fbaac4ea")
        #expect(Fingerprint.of([:]) == "0000000000000000")
        // Order of insertion does not matter; any change of a name or value does.
        let a = Fingerprint.of(["b": "2", "a": "1"])
        #expect(a == Fingerprint.of(["a": "1", "b": "2"]))
        #expect(a != Fingerprint.of(["a": "1", "b": "3"]))
        #expect(a != Fingerprint.of(["a": "12", "b": ""]))
        #expect(Fingerprint.of(["ünïcode name": "✓"]).count == 16)
    }

    @Test("matchers parse as amtool writes them", arguments: [
        ("alertname=DiskFull", "alertname", "DiskFull", false, true),
        ("alertname = \"Disk Full\"", "alertname", "Disk Full", false, true),
        ("severity!=warning", "severity", "warning", false, false),
        ("instance=~\"db[0-9]+\"", "instance", "db[0-9]+", true, true),
        ("job!~\"node|blackbox\"", "job", "node|blackbox", true, false),
        ("\"ünïcode name\"=\"a \\\"quoted\\\" value\"", "ünïcode name", "a \"quoted\" value", false, true),
        ("{team=\"ops\"}", "team", "ops", false, true),
        ("empty=", "empty", "", false, true),
    ])
    func parse(_ text: String, name: String, value: String, isRegex: Bool, isEqual: Bool) throws {
        let matcher = try SilenceMatcher.parse(text).get()
        #expect(matcher == SilenceMatcher(name: name, value: value, isRegex: isRegex, isEqual: isEqual))
    }

    @Test("bad matchers are refused with a reason", arguments: [
        "alertname", "=value", "name=~\"(\"", "name=\"unterminated", "name<>x", "",
    ])
    func refuse(_ text: String) {
        guard case .failure(let error) = SilenceMatcher.parse(text) else {
            Issue.record("\(text) parsed")
            return
        }
        #expect(!error.description.isEmpty)
    }

    @Test("a matcher's text parses back to it, whatever its name and value hold")
    func roundTrip() throws {
        for matcher in [
            SilenceMatcher(name: "a name", value: "x", isRegex: false),
            SilenceMatcher(name: "q\"uote", value: "line\nbreak\ttab \\ slash", isRegex: false, isEqual: false),
            SilenceMatcher(name: "op=name!", value: "\u{301}combining", isRegex: true),
            SilenceMatcher(name: "{braced}", value: "a|b}", isRegex: false, isEqual: false),
            SilenceMatcher(name: "ünïcode", value: "", isRegex: false),
        ] {
            #expect(try SilenceMatcher.parse(matcher.description).get() == matcher, "\(matcher.description)")
        }
        #expect(SilenceMatcher(name: "alertname", value: "DiskFull", isRegex: false).description == #"alertname="DiskFull""#)
    }

    @Test("= != =~ !~ match as Alertmanager's: whole values, a missing label is empty")
    func semantics() {
        let labels = ["alertname": "DiskFull", "instance": "db12"]
        #expect(SilenceMatcher(name: "instance", value: "db[0-9]+", isRegex: true).matches(labels))
        #expect(!SilenceMatcher(name: "instance", value: "db1", isRegex: true).matches(labels))
        #expect(SilenceMatcher(name: "instance", value: "web.*", isRegex: true, isEqual: false).matches(labels))
        #expect(SilenceMatcher(name: "region", value: "", isRegex: false).matches(labels))
        #expect(SilenceMatcher(name: "region", value: "eu", isRegex: false, isEqual: false).matches(labels))
        #expect(!SilenceMatcher(name: "alertname", value: "DiskFull", isRegex: false, isEqual: false).matches(labels))
    }

    static func external(labels: [String: String]) -> Alert {
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        return Alert(
            id: 7, rule: labels["alertname"] ?? "", severity: .warning, status: .firing, groupKey: "f", platform: labels["platform"],
            value: nil, threshold: 0, comparison: "", samples: 0, description: "", runbookURL: nil, startedAt: at, firedAt: at,
            lastEvaluatedAt: at, acknowledgedAt: nil, acknowledgedBy: nil, acknowledgeNote: nil, resolvedAt: nil, resolvedBy: nil,
            resolution: nil, resolveNote: nil, labels: labels,
            external: ExternalAlertInfo(fingerprint: Fingerprint.of(labels), annotations: [:], generatorURL: nil, endsAt: at,
                                        lastReceivedAt: at))
    }

    @Test("an external alert's label set is its own, with rule = alertname and its own severity label")
    func labelSet() {
        let set = AlertLabelSet.of(Self.external(labels: ["alertname": "DiskFull", "severity": "page", "team": "db"]))
        #expect(set == ["alertname": "DiskFull", "rule": "DiskFull", "severity": "page", "team": "db"])
        // Without a severity label, the mapped severity stands in.
        #expect(AlertLabelSet.of(Self.external(labels: ["alertname": "X"]))["severity"] == "warning")
        #expect(PostedAlert(labels: ["alertname": "X", "severity": "Critical"]).severity == .critical)
        #expect(PostedAlert(labels: ["alertname": "X", "severity": "info"]).severity == .warning)
    }

    @Test("silences match external alerts on their labels, by Alertmanager matchers too")
    func silences() {
        let alert = Self.external(labels: ["alertname": "DiskFull", "instance": "db12"])
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        func silence(_ matchers: [SilenceMatcher], rule: String? = nil) -> Silence {
            Silence(id: 1, rule: rule, platform: nil, severity: nil, labels: [:], startsAt: at, endsAt: at + 60, comment: "c",
                    createdBy: "t", matchers: matchers)
        }
        #expect(silence([.init(name: "instance", value: "db.*", isRegex: true)]).matches(alert))
        #expect(!silence([.init(name: "instance", value: "db.*", isRegex: true, isEqual: false)]).matches(alert))
        #expect(silence([], rule: "DiskFull").matches(alert))
        #expect(!silence([.init(name: "alertname", value: "DiskFull", isRegex: false)], rule: "Other").matches(alert))
    }
}
