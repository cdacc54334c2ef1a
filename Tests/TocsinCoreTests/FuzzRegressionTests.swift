import Foundation
import Testing
import TocsinCore

/// Inputs on which a libFuzzer target of Fuzz/ failed a property (found
/// while fuzzing, or among the hostile seeds), each kept in
/// Fuzz/Corpus/<target>/ too. Every test failed before its fix.
@Suite("Inputs found by fuzzing")
struct FuzzRegressionTests {
    let now: Date = 1_795_935_323  // 2026-11-29T06:55:23Z

    func ruleYAML(_ fields: String) -> String {
        "rules:\n  - name: r\n    kind: count\n    metric: oauth.failure\n    threshold: 1\n    severity: error\n" + fields
    }

    func ruleJSON(_ extra: [String: Any]) -> [String: Any] {
        let rule: [String: Any] = ["name": "r", "kind": "count", "metric": "oauth.failure", "threshold": 1, "severity": "error"]
        return ["rules": [rule.merging(extra) { $1 }]]
    }

    func fields(_ problems: [RuleProblem]) -> [String?] { problems.map(\.field) }

    // EventBatchFuzzer, Corpus/EventBatchFuzzer/combining-label.json: one
    // character can be any number of combining marks, so counting
    // characters bounded nothing: a 256-"character" label could be megabytes.
    @Test("label lengths count Unicode scalars, as the API's schema (maxLength) does")
    func labelLengthCountsScalars() {
        let marks = "e" + String(repeating: "\u{0301}", count: 300)
        for labels in [#"{"k":"\#(marks)"}"#, #"{"\#(marks)":"v"}"#] {
            let outcome = EventBatchParser(now: now).parse(Array(#"{"name":"api.call","labels":\#(labels)}"#.utf8))
            guard case .invalid(let issues, _) = outcome else {
                Issue.record("accepted a label of \(marks.unicodeScalars.count) scalars: \(outcome)")
                continue
            }
            #expect(issues.first?.reason == "label names and values are at most 256 characters")
        }
        let exactly = String(repeating: "\u{00E9}", count: 256)
        guard case .valid = EventBatchParser(now: now).parse(Array(#"{"name":"a","labels":{"k":"\#(exactly)"}}"#.utf8)) else {
            Issue.record("refused a label of 256 characters")
            return
        }
    }

    // RuleYAMLFuzzer and RuleJSONFuzzer, Corpus/*/nul-description.*: YAML's
    // "\0" and JSON's "\u0000" reached the stored rule, whose jsonb
    // document PostgreSQL then refuses.
    @Test("rule strings have no NUL, from YAML escapes or JSON")
    func ruleStringsWithoutNUL() {
        let yaml = RuleFile.parse(yaml: ruleYAML("    description: \"before\\0after\"\n"))
        #expect(yaml.rules.isEmpty)
        #expect(fields(yaml.problems) == ["description"])
        let labels = RuleFile.parse(yaml: ruleYAML("    labels: {team: \"a\\x00b\"}\n"))
        #expect(fields(labels.problems) == ["labels"])
        let json = RuleFile.parse(json: ruleJSON(["description": "a\u{0}b", "runbook_url": "https://x\u{0}"]))
        #expect(json.rules.isEmpty)
        #expect(Set(fields(json.problems)) == ["description", "runbook_url"])
    }

    // RuleYAMLFuzzer, Corpus/RuleYAMLFuzzer/combining-marks.yaml.
    @Test("rule string lengths count Unicode scalars")
    func ruleLengthsCountScalars() {
        let result = RuleFile.parse(yaml: ruleYAML("    description: \"a\(String(repeating: "\u{0301}", count: 2100))\"\n"))
        #expect(fields(result.problems) == ["description"])
        #expect(RuleFile.parse(yaml: ruleYAML("    description: \(String(repeating: "\u{00E9}", count: 2000))\n")).problems.isEmpty)
    }

    // RuleYAMLFuzzer and RuleJSONFuzzer, Corpus/*/name-newline.*: `$` also
    // matches before a final line break, so "abc\n" passed as a rule name.
    @Test("a rule name with a trailing line break is refused")
    func ruleNameWithTrailingNewline() {
        for (name, escaped) in [("abc\n", "abc\\n"), ("abc\r\n", "abc\\r\\n"), ("abc\u{2028}", "abc\\u2028")] {
            let yaml = RuleFile.parse(yaml: "rules:\n  - name: \"\(escaped)\"\n    kind: count\n    metric: a\n    threshold: 1\n    severity: error\n")
            #expect(yaml.rules.isEmpty && fields(yaml.problems) == ["name"], "\(name.debugDescription)")
            let json = RuleFile.parse(json: ruleJSON(["name": name]))
            #expect(json.rules.isEmpty && fields(json.problems) == ["name"], "\(name.debugDescription)")
        }
    }

    // NotifyConfigFuzzer, Corpus/NotifyConfigFuzzer/name-newline.yaml and
    // env-newline.yaml: the same `$` in channel and environment variable names.
    @Test("channel and environment variable names with a trailing line break are refused")
    func notifyNamesWithTrailingNewline() {
        let channel = NotifyConfigFile.parse(yaml: """
            channels:
              - name: "ops\\n"
                kind: slack
                url: https://hooks.slack.com/services/T/B/X
            routes:
              - channels: [ops]
            """, environment: nil)
        #expect(channel.config == nil)
        #expect(channel.problems.contains { $0.field == "name" })
        let variable = NotifyConfigFile.parse(yaml: """
            channels:
              - name: ops
                kind: slack
                url_env: "SLACK_OPS_URL\\n"
            routes:
              - channels: [ops]
            """, environment: nil)
        #expect(variable.config == nil)
        #expect(fields(variable.problems) == ["url_env", "channels"])
    }

    // NotifyConfigFuzzer, Corpus/NotifyConfigFuzzer/nul-secret.yaml.
    @Test("notification file strings have no NUL")
    func notifyStringsWithoutNUL() {
        let result = NotifyConfigFile.parse(yaml: """
            channels:
              - name: hook
                kind: webhook
                url: "https://ops.example.com/a\\0b"
                secret: "s\\0"
            routes:
              - channels: [hook]
            """, environment: nil)
        #expect(result.config == nil)
        // (and the route names a channel that is not there)
        #expect(Set(fields(result.problems)) == ["url", "secret", "channels"])
    }

    // NotifyConfigFuzzer, Corpus/NotifyConfigFuzzer/weird-urls.yaml: the
    // redacted destination (stored, shown) decoded %00 into a NUL.
    @Test("a destination keeps the URL's percent-encoding")
    func destinationStaysEncoded() {
        #expect(NotifyConfig.Channel.redact("https://user:pw@h%00st/a%00b/secret") == "https://h%00st/a%00b/***")
        #expect(NotifyConfig.Channel.redact("https://ops.example.com/%00") == "https://ops.example.com/%00")
        #expect(NotifyConfig.Channel.redact("https://hooks.slack.com/services/T/B/X") == "https://hooks.slack.com/services/***")
        #expect(NotifyConfig.Channel.redact("http://[::1]:8080/hook") == "http://[::1]:8080/hook")
    }

    @Test("format writes every field at its fixed width, and what it writes parses back to the same microsecond")
    func fixedWidthFields() throws {
        #expect(RFC3339.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -62_135_596_800)) == "0001-01-01T00:00:00.000000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_796_000_000.000_042)) == "2026-11-30T00:53:20.000042Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -0.25)) == "1969-12-31T23:59:59.750000Z")
        var bytes = Array("x".utf8)
        RFC3339.append(Date(timeIntervalSince1970: 86_399.999_999_7), to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "x1970-01-02T00:00:00.000000Z")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let micros = Int64.random(in: -62_135_596_800_000_000...253_402_300_799_000_000, using: &generator)
            let date = Date(timeIntervalSince1970: Double(micros) / 1e6)
            let text = RFC3339.format(date)
            #expect(text.utf8.count == 27, "\(text)")
            let back = try #require(RFC3339.parse(text), "\(text)")
            #expect(abs(back.timeIntervalSince1970 - date.timeIntervalSince1970) < 2e-6, "\(text)")
        }
    }

    // TimeTextFuzzer, Corpus/TimeTextFuzzer/timestamp-7 and date-4: the
    // last second of year 9999 parsed, but format wrote 23:59:59.000000.
    @Test("the last second of year 9999 formats as itself")
    func lastSecondOfYear9999() throws {
        #expect(RFC3339.format(Date(timeIntervalSince1970: 253_402_300_799.5)) == "9999-12-31T23:59:59.500000Z")
        let parsed = try #require(RFC3339.parse("9999-12-31T23:59:59.5Z"))
        #expect(RFC3339.format(parsed) == "9999-12-31T23:59:59.500000Z")
        for text in ["9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:60.9999999999Z"] {
            let date = try #require(RFC3339.parse(text))
            // A Date holds that far from 2001 about 30 µs.
            #expect(RFC3339.format(date).hasPrefix("9999-12-31T23:59:59.9999"), "\(text) → \(RFC3339.format(date))")
        }
    }

    // CSVFuzzer, Corpus/CSVFuzzer/quote-combining: a quote followed by a
    // combining mark is one Character, which the search for `"` skipped, so
    // the quote was not doubled and the CSV ended the field there.
    @Test("a quote followed by a combining mark is doubled in CSV")
    func csvQuoteBeforeCombiningMark() {
        let value = "\"\u{05A4}x"
        #expect(Array(CSV.field(value).unicodeScalars) == Array("\"\"\"\u{05A4}x\"".unicodeScalars))
        let row = CSV.row([value, "e\u{0301}\"", "plain"])
        #expect(CSV.parse(row).map { $0.map { Array($0.unicodeScalars) } }
                == [[Array(value.unicodeScalars), Array("e\u{0301}\"".unicodeScalars), Array("plain".unicodeScalars)]])
    }

    // RuleYAMLFuzzer, Corpus/RuleYAMLFuzzer/alias-bomb-key-found.yaml (a
    // timeout): 81 aliases, under the limit of 100, each level repeating
    // the one before ten times; as a mapping key the tree is hashed whole,
    // 10^9 nodes. Here three levels, which finish either way.
    @Test("an anchor names a scalar only, so aliases cannot repeat aliases")
    func aliasesOfCollections() {
        let bomb = "a: &a [x, x]\nb: &b [*a, *a]\n? *b\n: v\nrules: []\n"
        for result in [RuleFile.parse(yaml: bomb).problems, NotifyConfigFile.parse(yaml: bomb, environment: nil).problems] {
            #expect(result.map(\.message) == ["an anchor (&name) may name a single value only, not a list or mapping"])
            #expect(result.first?.line == 1)
        }
        let block = RuleFile.parse(yaml: "defaults: &d\n  severity: error\nrules: []\n")
        #expect(block.problems.map(\.message) == ["an anchor (&name) may name a single value only, not a list or mapping"])
        // Anchored scalars stay usable.
        let scalars = RuleFile.parse(yaml: ruleYAML("    recovery_threshold: &t 1\n    labels: {level: *t, tag: &g !!str x, again: *g}\n"))
        #expect(scalars.problems.isEmpty, "\(scalars.problems)")
        #expect(scalars.rules.first?.labels == ["level": "1", "tag": "x", "again": "x"])
    }

    // MatcherFuzzer, Corpus/MatcherFuzzer/combining-quote.txt: a quote
    // followed by a combining mark is one Character, so escaping by
    // Characters left it unescaped and the matcher's text did not parse.
    @Test("a matcher whose value holds a quote and a combining mark writes text that parses back")
    func quoteBeforeCombiningMark() throws {
        let input = "a=\u{FFFD}\"\u{301}\""
        let matcher = try SilenceMatcher.parse(input).get()
        #expect(matcher.value == "\u{FFFD}\"\u{301}\"")
        #expect(try SilenceMatcher.parse(matcher.description).get() == matcher)
    }

    // MatcherFuzzer, Corpus/MatcherFuzzer/long-regex.txt (a leak): Foundation
    // compiles a pattern of more than 256 UTF-16 units from a heap buffer it
    // never frees, so every match of a long regular expression leaked.
    @Test("regular expressions in matchers are at most 250 UTF-16 code units")
    func longRegex() {
        #expect((try? SilenceMatcher.parse("a=~\"" + String(repeating: "x", count: 250) + "\"").get()) != nil)
        guard case .failure(let error) = SilenceMatcher.parse("a=~\"" + String(repeating: "x", count: 251) + "\"") else {
            Issue.record("a 251-unit regular expression was accepted")
            return
        }
        #expect(error.description.contains("250"))
        // Not a regular expression: the usual 2,048.
        #expect((try? SilenceMatcher.parse("a=\"" + String(repeating: "x", count: 2048) + "\"").get()) != nil)
    }
}
