import Foundation
import Testing
import TocsinCore

@Suite("Notification configuration")
struct NotifyConfigTests {
    @Test("routes by severity and labels, send_resolved, the shortest repeat interval")
    func routing() throws {
        let yaml = """
            channels:
              - name: slack
                kind: slack
                url_env: TEST_SLACK_URL
              - name: pager
                kind: pagerduty
                routing_key: abc
              - name: mail
                kind: email
                smtp_url: smtp://127.0.0.1:2525
                from: t@example.com
                to: [a@example.com]
            routes:
              - channels: [slack]
                repeat_interval: 4h
              - channels: [pager, slack]
                severities: [critical]
                labels: {team: integrations}
                repeat_interval: 30m
              - channels: [mail]
                send_resolved: false
            """
        let result = NotifyConfigFile.parse(yaml: yaml, environment: ["TEST_SLACK_URL": "https://hooks.slack.com/services/T/B/xyz"])
        let config = try #require(result.config, "\(result.problems)")
        let critical = config.destinations(rule: "r", severity: .critical, labels: ["team": "integrations"], transition: .fired)
        #expect(critical.map(\.channel.name) == ["slack", "pager", "mail"])
        #expect(critical.first { $0.channel.name == "slack" }?.repeatIntervalSeconds == 1800)
        let warning = config.destinations(rule: "r", severity: .warning, labels: [:], transition: .resolved)
        #expect(warning.map(\.channel.name) == ["slack"])
        #expect(config.channel(named: "slack")?.destination == "https://hooks.slack.com/services/***")
        #expect(config.channel(named: "slack")?.ratePerSecond == 1)
        #expect(config.channel(named: "slack")?.burst == 5)
    }

    @Test("problems are reported with line and field; missing secrets from the environment are named")
    func problems() {
        let yaml = """
            channels:
              - name: slack
                kind: slack
                url_env: NOT_SET_ANYWHERE
              - name: hook
                kind: carrier-pigeon
            routes:
              - channels: [slack, nowhere]
                severities: [loud]
                repeat_interval: 10s
            """
        let problems = NotifyConfigFile.parse(yaml: yaml, environment: [:]).problems
        #expect(problems.contains { $0.field == "url_env" && $0.line == 4 && $0.message.contains("NOT_SET_ANYWHERE") })
        #expect(problems.contains { $0.field == "kind" && $0.rule == "channel hook" })
        #expect(problems.contains { $0.field == "channels" && $0.message.contains("nowhere") })
        #expect(problems.contains { $0.field == "severities" })
        #expect(problems.contains { $0.field == "repeat_interval" })
    }

    @Test("an SMTP password needs TLS: starttls off or opportunistic over smtp:// is refused, unset means required")
    func smtpPasswordNeedsTLS() throws {
        func mail(_ extra: String, url: String = "smtp://127.0.0.1:2525") -> NotifyConfigFile.Result {
            NotifyConfigFile.parse(yaml: """
                channels:
                  - name: mail
                    kind: email
                    smtp_url_env: TEST_SMTP_URL
                    from: t@example.com
                    to: [a@example.com]
                \(extra)
                routes:
                  - channels: [mail]
                """, environment: ["TEST_SMTP_URL": url, "TEST_SMTP_PASSWORD": "hunter2"])
        }
        for mode in ["off", "opportunistic"] {
            let refused = mail("    username: u\n    password_env: TEST_SMTP_PASSWORD\n    starttls: \(mode)")
            #expect(refused.config == nil)
            #expect(refused.problems.contains {
                $0.field == "starttls" && $0.line == 9 && $0.message.contains("password would be sent without TLS")
            }, "\(refused.problems)")
        }
        let unset = try #require(mail("    username: u\n    password_env: TEST_SMTP_PASSWORD").config)
        #expect(unset.channel(named: "mail")?.startTLS == .required)
        // TLS from the start, or no password: the mode is the operator's.
        #expect(mail("    password_env: TEST_SMTP_PASSWORD\n    starttls: off", url: "smtps://127.0.0.1:465").config != nil)
        #expect(try #require(mail("    starttls: off").config).channel(named: "mail")?.startTLS == .off)
        #expect(try #require(mail("").config).channel(named: "mail")?.startTLS == .opportunistic)
    }

    @Test("webhook signatures: a whsec_ secret must be valid; signature standard needs one, legacy and both are accepted")
    func webhookSignature() throws {
        func hook(_ extra: String, secret: String) -> NotifyConfigFile.Result {
            NotifyConfigFile.parse(yaml: """
                channels:
                  - name: hook
                    kind: webhook
                    url: https://ops.example.com/hook
                    secret_env: TEST_SECRET
                \(extra)
                routes:
                  - channels: [hook]
                """, environment: ["TEST_SECRET": secret])
        }
        let good = "whsec_" + Data(repeating: 7, count: 32).base64EncodedString()
        #expect(try #require(hook("", secret: good).config).channel(named: "hook")?.signature == nil)
        #expect(hook("    signature: both", secret: good).config?.channel(named: "hook")?.signature == .both)
        #expect(hook("    signature: legacy", secret: "plain").config != nil)
        let short = hook("", secret: "whsec_" + Data(repeating: 7, count: 8).base64EncodedString())
        #expect(short.problems.contains { $0.field == "secret_env" && $0.message.contains("24 to 64") }, "\(short.problems)")
        let plain = hook("    signature: standard", secret: "plain")
        #expect(plain.problems.contains { $0.field == "signature" && $0.line == 6 && $0.message.contains("whsec_") },
                "\(plain.problems)")
        #expect(NotifyConfig.Channel.standardWebhookKey(good)?.count == 32)
        #expect(NotifyConfig.Channel.standardWebhookKey("whsec_not base64!") == nil)
    }

    @Test("retry delays: exponential with jitter, Retry-After honoured, nil after the last attempt")
    func retryPolicy() {
        let policy = RetryPolicy(maxAttempts: 4, baseDelay: 2, maxDelay: 600)
        #expect(policy.delay(afterAttempt: 1, requested: nil, random: 1) == 2)
        #expect(policy.delay(afterAttempt: 3, requested: nil, random: 1) == 8)
        #expect(policy.delay(afterAttempt: 3, requested: nil, random: 0) == 4)
        #expect(policy.delay(afterAttempt: 2, requested: 30, random: 0) == 30)
        #expect(policy.delay(afterAttempt: 4, requested: nil) == nil)
        #expect(RetryPolicy.classify(status: 503, transportFailed: false, retryAfter: nil, now: 0) == .retry(after: nil))
        #expect(RetryPolicy.classify(status: 429, transportFailed: false, retryAfter: "7", now: 0) == .retry(after: 7))
        #expect(RetryPolicy.classify(status: 404, transportFailed: false, retryAfter: nil, now: 0) == .fail)
        #expect(RetryPolicy.classify(status: 0, transportFailed: true, retryAfter: nil, now: 0) == .retry(after: nil))
        #expect(RetryPolicy.parseRetryAfter("Thu, 01 Jan 1970 00:01:40 GMT", now: 40) == 60)
    }
}
