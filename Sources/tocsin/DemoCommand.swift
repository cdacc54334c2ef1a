import ArgumentParser
import Foundation
import TocsinCore
import TocsinNotify

/// `tocsin demo`: realistic synthetic traffic through the public API, so the
/// dashboard moves and the default rules fire and resolve within minutes.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push synthetic TikTok and Instagram events to a Tocsin until stopped.",
        discussion: """
            Every second it sends steady successes, latencies with noise and the odd failure for both \
            platforms. Every --incident-every seconds one incident starts, in turn: a burst of upload \
            failures (fires high_error_rate), slow webhooks (high_webhook_latency), token refresh \
            failures (token_refresh_failures) or OAuth failures (oauth_failures); when it ends, traffic \
            returns to normal and the alert resolves (the ratio and latency rules within minutes, the \
            count rules once their 15-minute window has passed).
            """)

    @Option(name: .customLong("url"), help: "Tocsin's base URL, e.g. http://127.0.0.1:8080.")
    var url: String

    @Option(name: .customLong("key"), help: "An API key with the ingest (or admin) scope (env TOCSIN_KEY).")
    var key: String?

    @Option(name: .customLong("incident-every"), help: "Seconds between incidents (default 180).")
    var incidentEvery: Int = 180

    @Option(name: .customLong("incident-length"), help: "Seconds an incident lasts (default 60).")
    var incidentLength: Int = 60

    @Option(name: .customLong("duration"), help: "Stop after this many seconds (default: run until stopped).")
    var duration: Int?

    enum Incident: String, CaseIterable {
        case uploadFailures = "upload failures"
        case slowWebhooks = "slow webhooks"
        case tokenRefreshFailures = "token refresh failures"
        case oauthFailures = "OAuth failures"
    }

    func run() async throws {
        try await runCommand {
            guard let key = key ?? ProcessInfo.processInfo.environment["TOCSIN_KEY"], !key.isEmpty else {
                throw CLIError("an API key is required: --key KEY or TOCSIN_KEY")
            }
            guard let base = URLComponents(string: url), ["http", "https"].contains(base.scheme ?? "") else {
                throw CLIError("--url must be an http(s) URL such as http://127.0.0.1:8080")
            }
            let endpoint = url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/api/metrics"
            let transport = Transport(threads: 1)
            var generator = TrafficGenerator(incidentEvery: max(10, incidentEvery), incidentLength: max(5, incidentLength))
            let started = Date()
            var sent = 0, failedBatches = 0, lastReport = Date()
            print("sending demo traffic to \(endpoint) (Ctrl-C to stop)")
            while !Task.isCancelled {
                let elapsed = Date().timeIntervalSince(started)
                if let duration, elapsed >= Double(duration) { break }
                let (events, notice) = generator.tick(elapsed: elapsed)
                if let notice { print(notice) }
                let body = try JSONSerialization.data(withJSONObject: events)
                let result = try await Self.send(body, to: endpoint, key: key, transport: transport)
                if result.status == 202 {
                    sent += events.count
                } else {
                    failedBatches += 1
                    let reason = result.transportError ?? "HTTP \(result.status): \(result.body.prefix(200))"
                    FileHandle.standardError.write(Data("demo: batch not accepted (\(reason)); continuing\n".utf8))
                    if result.status == 401 || result.status == 403 { throw CLIError("the key was refused: \(reason)") }
                }
                if Date().timeIntervalSince(lastReport) >= 30 {
                    print("sent \(sent) events (\(failedBatches) failed batches)")
                    lastReport = Date()
                }
                try? await Task.sleep(for: .seconds(1))
            }
            await transport.shutdown()
            print("sent \(sent) events in total")
        }
    }
}

extension Demo {
    /// Posts one batch the way a client should: with an Idempotency-Key, so
    /// a retry after a lost answer, a 503 (the database failing over) or a
    /// 429 is stored once; retried with the same key and body up to 5 times,
    /// honouring Retry-After.
    static func send(_ body: Data, to endpoint: String, key: String, transport: Transport) async throws -> Transport.HTTPResult {
        let headers = ["Content-Type: application/json", "Authorization: Bearer \(key)",
                       "Idempotency-Key: demo-" + UUID().uuidString.lowercased()]
        var delay = 0.5
        for attempt in 1...5 {
            let result = try await transport.post(url: endpoint, headers: headers, body: body)
            let retriable = result.transportError != nil || result.status == 429 || result.status == 503
            guard retriable, attempt < 5 else { return result }
            let requested = result.retryAfter.flatMap(Double.init) ?? delay
            try? await Task.sleep(for: .milliseconds(Int(min(max(requested, 0.1), 30) * 1000)))
            delay = min(delay * 2, 8)
        }
        preconditionFailure("unreachable: the last attempt returns")
    }
}

/// One second of traffic at a time: steady state plus the current incident.
struct TrafficGenerator {
    let incidentEvery: Int
    let incidentLength: Int
    var rng = SystemRandomNumberGenerator()
    var incidentIndex = 0
    var current: (incident: Demo.Incident, platform: String, until: Double)?
    var nextIncidentAt: Double

    static let platforms = ["tiktok", "instagram"]

    init(incidentEvery: Int, incidentLength: Int) {
        self.incidentEvery = incidentEvery
        self.incidentLength = incidentLength
        // The first incident comes soon, so a newcomer sees an alert early.
        self.nextIncidentAt = Double(min(incidentEvery, 45))
    }

    mutating func uniform(_ range: ClosedRange<Double>) -> Double { Double.random(in: range, using: &rng) }
    mutating func count(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func chance(_ p: Double) -> Bool { uniform(0...1) < p }

    /// A log-normal-ish latency around `median` seconds.
    mutating func latency(median: Double) -> Double {
        let noise = exp(uniform(-0.6...0.6) + uniform(-0.3...0.3))
        return (median * noise * 1000).rounded() / 1000
    }

    mutating func tick(elapsed: Double) -> (events: [[String: Any]], notice: String?) {
        var notice: String?
        if let active = current, elapsed >= active.until {
            notice = "incident over: \(active.incident.rawValue) on \(active.platform); the alert will resolve"
            current = nil
        }
        if current == nil && elapsed >= nextIncidentAt {
            let incident = Demo.Incident.allCases[incidentIndex % Demo.Incident.allCases.count]
            let platform = Self.platforms[count(0...1)]
            incidentIndex += 1
            current = (incident, platform, elapsed + Double(incidentLength))
            nextIncidentAt = elapsed + Double(incidentEvery)
            notice = "incident: \(incident.rawValue) on \(platform) for \(incidentLength) s"
        }
        var events: [[String: Any]] = []
        func add(_ name: String, _ platform: String?, _ value: Double = 1, labels: [String: String] = [:]) {
            var event: [String: Any] = ["name": name, "value": value]
            if let platform { event["platform"] = platform }
            if !labels.isEmpty { event["labels"] = labels }
            events.append(event)
        }
        for platform in Self.platforms {
            let incident = current?.platform == platform ? current?.incident : nil
            for _ in 0..<count(2...5) {
                let fails = incident == .uploadFailures ? chance(0.4) : chance(0.01)
                add(fails ? "upload.failure" : "upload.success", platform, labels: ["media": chance(0.7) ? "video" : "image"])
            }
            for _ in 0..<count(0...2) { add(chance(0.02) ? "oauth.failure" : "oauth.success", platform) }
            if incident == .oauthFailures && chance(0.3) { add("oauth.failure", platform, labels: ["reason": "invalid_grant"]) }
            for _ in 0..<count(1...4) {
                add("webhook.received", platform)
                add("webhook.processed", platform)
                add("webhook.latency", platform, incident == .slowWebhooks ? latency(median: 8) : latency(median: 0.6))
            }
            if chance(0.2) { add("token.refresh.success", platform) }
            if incident == .tokenRefreshFailures && chance(0.15) { add("token.refresh.failure", platform, labels: ["reason": "expired"]) }
            for _ in 0..<count(3...8) {
                // The latency carries its call's endpoint, so rules can group by it.
                let endpoint = chance(0.5) ? "/v2/video/upload" : "/me"
                add("api.call", platform, labels: ["endpoint": endpoint])
                add("api.latency", platform, latency(median: 0.25), labels: ["endpoint": endpoint])
            }
        }
        if Int(elapsed) % 10 == 0 {
            add("worker.run", nil, labels: ["job": "publish"])
            add("worker.duration", nil, latency(median: 2))
        }
        return (events, notice)
    }
}
