import Foundation
import PostgresClient
import TestSupport
import Testing
import TocsinCore
import TocsinNotify
import TocsinStore

@Suite("Messages arrive at real receivers in the right shape")
struct MessageShapeTests {
    @Test("Slack: one attachment, colour by severity, green when resolved", arguments: Rule.Severity.allCases)
    func slack(severity: Rule.Severity) async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let notify = NotifyConfig.slackOnly(url: receiver.url + "/services/T000/B000/secret-token")
                let rule = try await fire(pool, notify: notify, platforms: ["tiktok"], severity: severity)
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { try await receiver.requests().count == 1 })
                    try await resolveAll(pool, notify: notify, ruleID: rule)
                    #expect(try await eventually { try await notificationStatuses(pool) == ["sent", "sent"] })
                }
                let requests = try await receiver.requests()
                #expect(requests[0].path == "/services/T000/B000/secret-token")
                let fired = try requests[0].json()
                let attachment = try #require((fired["attachments"] as? [[String: Any]])?.first)
                let expected = ["warning": "#FFA500", "error": "#FF0000", "critical": "#8B0000"][severity.rawValue]
                #expect(attachment["color"] as? String == expected)
                #expect(attachment["title"] as? String == "[FIRING] test_rule · tiktok")
                #expect(attachment["text"] as? String == "Test rule fired by the suite")
                #expect((attachment["title_link"] as? String)?.hasPrefix("https://tocsin.example.com/monitoring?alert=") == true)
                #expect(attachment["ts"] is Int)
                let fields = (attachment["fields"] as? [[String: Any]] ?? []).reduce(into: [String: String]()) {
                    $0[$1["title"] as? String ?? ""] = $1["value"] as? String
                }
                #expect(fields["Value"] == "1 (threshold > 0)")
                #expect(fields["Samples"] == "1")
                #expect(fields["Platform"] == "tiktok")
                #expect(fields["Started at"] != nil)
                let resolved = try #require((try requests[1].json()["attachments"] as? [[String: Any]])?.first)
                #expect(resolved["color"] as? String == "#2EB886")
                #expect(resolved["title"] as? String == "[RESOLVED] test_rule · tiktok")
                #expect((resolved["fields"] as? [[String: Any]])?.contains { $0["title"] as? String == "Duration" } == true)
                try await pool.query("SELECT 1")
                #expect(try await notificationStatuses(pool) == ["sent", "sent"])
            }
        }
    }

    @Test("webhook: a plain secret signs X-Tocsin-Signature (legacy), verified with it and not with another; Idempotency-Key is the id")
    func webhook() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let channel = NotifyConfig.Channel(name: "hook", kind: .webhook, url: receiver.url + "/hook", secret: "s3cret")
                let notify = NotifyConfig(channels: [channel], routes: [.init(channels: ["hook"])])
                try await fire(pool, notify: notify)
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { try await notificationStatuses(pool) == ["sent"] })
                }
                let request = try #require(try await receiver.requests().first)
                let header = try #require(request.headers["x-tocsin-signature"])
                let parts = Dictionary(uniqueKeysWithValues: header.split(separator: ",").map {
                    let kv = $0.split(separator: "=", maxSplits: 1)
                    return (String(kv[0]), String(kv[1]))
                })
                let t = try #require(parts["t"].flatMap(Int.init))
                let body = Data(request.body.utf8)
                #expect(WebhookSignature.legacy(body: body, secret: "s3cret", timestamp: t) == header)
                #expect(WebhookSignature.legacy(body: body, secret: "another", timestamp: t) != header)
                #expect(request.headers["webhook-signature"] == nil)
                #expect(abs(Double(t) - Date().timeIntervalSince1970) < 60)
                let id: Int = try await pool.query("SELECT id FROM notifications")[0].decode("id")
                #expect(request.headers["idempotency-key"] == String(id))
                let json = try request.json()
                #expect(json["type"] as? String == "alert.fired")
                #expect((json["alert"] as? [String: Any])?["rule"] as? String == "test_rule")
                #expect(json["id"] as? Int == id)
            }
        }
    }

    @Test("PagerDuty: trigger then resolve with the same dedup_key")
    func pagerDuty() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let channel = NotifyConfig.Channel(name: "pd", kind: .pagerduty, url: receiver.url + "/v2/enqueue", routingKey: "R0UT1NG")
                let notify = NotifyConfig(channels: [channel], routes: [.init(channels: ["pd"])])
                let rule = try await fire(pool, notify: notify, platforms: ["instagram"], severity: .critical)
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { try await receiver.requests().count == 1 })
                    try await resolveAll(pool, notify: notify, ruleID: rule)
                    #expect(try await eventually { try await notificationStatuses(pool) == ["sent", "sent"] })
                }
                let requests = try await receiver.requests()
                let trigger = try requests[0].json(), resolve = try requests[1].json()
                #expect(trigger["event_action"] as? String == "trigger")
                #expect(resolve["event_action"] as? String == "resolve")
                #expect(trigger["routing_key"] as? String == "R0UT1NG")
                #expect(trigger["dedup_key"] as? String != nil)
                #expect(trigger["dedup_key"] as? String == resolve["dedup_key"] as? String)
                let payload = try #require(trigger["payload"] as? [String: Any])
                #expect(payload["severity"] as? String == "critical")
                #expect(payload["source"] as? String == "tocsin")
                #expect((payload["summary"] as? String)?.hasPrefix("[FIRING] test_rule · instagram") == true)
                let details = try #require(payload["custom_details"] as? [String: Any])
                #expect(details["value"] as? Double == 1)
                #expect(details["threshold"] as? Double == 0)
            }
        }
    }

    @Test("webhook: a whsec_ secret signs per Standard Webhooks, verified by the specification's reference library; a tampered body fails")
    func standardWebhooks() async throws {
        let python = try #require(ProcessInfo.processInfo.environment["TOCSIN_TEST_PYTHON"],
                                  "TOCSIN_TEST_PYTHON: a Python with the standardwebhooks package (scripts/test.sh sets it)")
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        let secret = "whsec_" + Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let channels = [
                    NotifyConfig.Channel(name: "standard", kind: .webhook, url: receiver.url + "/standard", secret: secret),
                    NotifyConfig.Channel(name: "both", kind: .webhook, url: receiver.url + "/both", secret: secret, signature: .both),
                ]
                let notify = NotifyConfig(channels: channels, routes: [.init(channels: ["standard", "both"])])
                try await fire(pool, notify: notify)
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { try await notificationStatuses(pool) == ["sent", "sent"] })
                }
                let requests = try await receiver.requests()
                #expect(requests.count == 2)
                for request in requests {
                    let id = try #require(request.headers["webhook-id"])
                    #expect(request.headers["idempotency-key"] == id)
                    #expect((request.headers["x-tocsin-signature"] != nil) == request.path.hasSuffix("/both"))
                    let script = TestEnvironment.temporaryDirectory + "/verify-" + randomSuffix() + ".py"
                    try """
                        import json, sys
                        from standardwebhooks import Webhook
                        request = json.load(open(sys.argv[1]))
                        hook = Webhook(sys.argv[2])
                        hook.verify(request["body"].encode(), request["headers"], json_parse=False)
                        try:
                            hook.verify(request["body"].replace("alert", "alery").encode(), request["headers"])
                        except Exception:
                            print("tampered refused")
                        else:
                            print("tampered accepted")
                        """.write(toFile: script, atomically: true, encoding: .utf8)
                    let captured = TestEnvironment.temporaryDirectory + "/request-" + randomSuffix() + ".json"
                    try JSONSerialization.data(withJSONObject: ["body": request.body, "headers": request.headers])
                        .write(to: URL(fileURLWithPath: captured))
                    let verify = try TestProcess.launch([script, captured, secret], executable: python)
                    #expect(try await verify.wait() == 0, "standardwebhooks refused the signature: \(verify.stderr)")
                    #expect(verify.stdout.contains("tampered refused"), "\(verify.stdout)\(verify.stderr)")
                }
            }
        }
    }

    @Test("e-mail over SMTP with STARTTLS and authentication arrives with text and HTML parts")
    func email() async throws {
        let sink = try await SMTPSink.start(user: "tocsin", password: "mail-pass", tls: true)
        defer { sink.stop() }
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let channel = NotifyConfig.Channel(name: "mail", kind: .email, smtpURL: "smtp://127.0.0.1:\(sink.port)",
                                                   username: "tocsin", password: "mail-pass", from: "tocsin@example.com",
                                                   to: ["oncall@example.com", "lead@example.com"], startTLS: .required,
                                                   tlsCAFile: sink.caFile)
                let notify = NotifyConfig(channels: [channel], routes: [.init(channels: ["mail"])])
                try await fire(pool, notify: notify, platforms: ["tiktok"], severity: .error)
                try await withDispatcher(pool, notify: notify) { () async throws in
                    #expect(try await eventually { (try? sink.messages().count) == 1 })
                    #expect(try await eventually { try await notificationStatuses(pool) == ["sent"] })
                }
                let (envelope, raw) = try #require(try sink.messages().first)
                #expect(envelope["from"] as? String == "tocsin@example.com")
                #expect(envelope["to"] as? [String] == ["oncall@example.com", "lead@example.com"])
                #expect(envelope["auth"] as? String == "tocsin")
                #expect(envelope["tls"] as? Bool == true)
                #expect(raw.contains("Content-Type: multipart/alternative"))
                #expect(raw.contains("Content-Type: text/plain; charset=utf-8"))
                #expect(raw.contains("Content-Type: text/html; charset=utf-8"))
                let subjectLine = try #require(raw.split(separator: "\r\n").first { $0.hasPrefix("Subject: ") })
                let encoded = subjectLine.dropFirst("Subject: =?UTF-8?B?".count).dropLast(2)
                let subject = String(decoding: Data(base64Encoded: String(encoded)) ?? Data(), as: UTF8.self)
                #expect(subject == "[FIRING][ERROR] test_rule · tiktok")
                #expect(try await notificationStatuses(pool) == ["sent"])
            }
        }
    }

    @Test("a wrong SMTP password is a failed delivery that is retried, not a crash")
    func emailRefused() async throws {
        let sink = try await SMTPSink.start(user: "tocsin", password: "right", tls: true)
        defer { sink.stop() }
        try await withTestDatabase { db in
            try await db.withPool { pool in
                let channel = NotifyConfig.Channel(name: "mail", kind: .email, smtpURL: "smtp://127.0.0.1:\(sink.port)",
                                                   username: "tocsin", password: "wrong", from: "a@example.com", to: ["b@example.com"],
                                                   startTLS: .required, tlsCAFile: sink.caFile)
                let notify = NotifyConfig(channels: [channel], routes: [.init(channels: ["mail"])])
                try await fire(pool, notify: notify)
                try await withDispatcher(pool, notify: notify, settings: fastSettings(maxAttempts: 2)) { () async throws in
                    #expect(try await eventually { try await notificationStatuses(pool) == ["dead"] })
                }
                let error: String? = try await pool.query("SELECT last_error FROM notifications")[0].decode("last_error")
                #expect(error?.isEmpty == false)
                #expect(error?.contains("wrong") == false)
                #expect(try sink.messages().isEmpty)
            }
        }
    }

    @Test("a password is never sent in clear: with starttls off, a server without STARTTLS gets no AUTH and no message")
    func passwordNeedsTLS() async throws {
        let sink = try await SMTPSink.start(user: "tocsin", password: "secret")  // no STARTTLS on offer
        defer { sink.stop() }
        try await withTestDatabase { db in
            try await db.withPool { pool in
                // Built in code, so the file reader's refusal is bypassed: the sender still insists on TLS.
                let channel = NotifyConfig.Channel(name: "mail", kind: .email, smtpURL: "smtp://127.0.0.1:\(sink.port)",
                                                   username: "tocsin", password: "secret", from: "a@example.com",
                                                   to: ["b@example.com"], startTLS: .off)
                let notify = NotifyConfig(channels: [channel], routes: [.init(channels: ["mail"])])
                try await fire(pool, notify: notify)
                try await withDispatcher(pool, notify: notify, settings: fastSettings(maxAttempts: 1)) { () async throws in
                    #expect(try await eventually { try await notificationStatuses(pool) == ["dead"] })
                }
                let error: String? = try await pool.query("SELECT last_error FROM notifications")[0].decode("last_error")
                #expect(error?.isEmpty == false)
                #expect(try sink.messages().isEmpty)
            }
        }
    }
}

@Suite("Outgoing connections")
struct ConnectionReuseTests {
    @Test("messages to one destination reuse the kept-alive connection")
    func reuse() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        let transport = Transport(threads: 2)
        var reused: [Bool] = []
        for _ in 0..<3 {
            let result = try await transport.post(url: receiver.url + "/hook", headers: ["Content-Type: application/json"],
                                                  body: Data("{}".utf8))
            #expect(result.status == 200)
            reused.append(result.reusedConnection)
        }
        await transport.shutdown()
        #expect(reused == [false, true, true])
        #expect(try await receiver.requests().count == 3)
        #expect(transport.shareCount == 1)
    }

    @Test("concurrent messages each hold a connection cache of their own: all arrive, and no other descriptor is touched")
    func concurrent() async throws {
        let receiver = try await HTTPReceiver.start()
        defer { receiver.stop() }
        // A descriptor pair opened before: a connection closed twice by a shared
        // cache could close it (its number reused), or a socket of the receiver's.
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        let transport = Transport(threads: 8)
        let statuses = await withTaskGroup(of: Int.self) { group in
            for i in 0..<400 {
                group.addTask {
                    (try? await transport.post(url: receiver.url + "/hook", headers: ["Content-Type: application/json"],
                                               body: Data("{\"n\":\(i)}".utf8)).status) ?? -1
                }
            }
            var out: [Int] = []
            for await status in group { out.append(status) }
            return out
        }
        await transport.shutdown()
        #expect(statuses.filter { $0 != 200 }.isEmpty, "\(Dictionary(grouping: statuses) { $0 }.mapValues(\.count))")
        #expect(try await receiver.requests().count == 400)
        #expect((1...8).contains(transport.shareCount), "shares made: \(transport.shareCount)")
        #expect(fcntl(pair[0], F_GETFD) != -1 && fcntl(pair[1], F_GETFD) != -1)
        var byte: UInt8 = 42
        #expect(write(pair[0], &byte, 1) == 1)
        var back: UInt8 = 0
        #expect(read(pair[1], &back, 1) == 1 && back == 42)
    }
}
