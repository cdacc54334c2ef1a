import Foundation
import Yams

/// Notification channels and routes, from `NOTIFY_CONFIG` (YAML) or, when
/// that is unset, `SLACK_WEBHOOK_URL` alone (every alert to Slack).
///
/// ```yaml
/// channels:
///   - name: slack-ops
///     kind: slack
///     url_env: SLACK_OPS_URL          # or url: https://hooks.slack.com/services/…
///   - name: oncall-webhook
///     kind: webhook
///     url: https://ops.example.com/hooks/tocsin
///     secret_env: TOCSIN_WEBHOOK_SECRET
///   - name: pagerduty
///     kind: pagerduty
///     routing_key_env: PAGERDUTY_ROUTING_KEY
///   - name: ops-mail
///     kind: email
///     smtp_url: smtp://smtp.example.com:587
///     starttls: required
///     username: tocsin
///     password_env: SMTP_PASSWORD
///     from: tocsin@example.com
///     to: [oncall@example.com]
/// routes:
///   - channels: [slack-ops]
///   - channels: [pagerduty, ops-mail]
///     severities: [critical]
///     labels: {team: integrations}
///     repeat_interval: 1h
///     send_resolved: true
/// ```
public struct NotifyConfig: Sendable, Equatable, CustomStringConvertible {
    /// Channel names and redacted destinations only: never secrets.
    public var description: String {
        "NotifyConfig(" + channels.map(\.description).joined(separator: ", ") + ")"
    }

    public struct Channel: Sendable, Equatable, CustomStringConvertible {
        public var description: String { "\(name) (\(kind.rawValue)) → \(redactedDestination)" }

        public enum Kind: String, Sendable, CaseIterable, Codable {
            case slack, webhook, pagerduty, email
        }

        public enum StartTLS: String, Sendable, CaseIterable {
            /// Plain SMTP (smtps:// is TLS from the start regardless).
            case off
            /// STARTTLS when the server offers it.
            case opportunistic
            /// STARTTLS or fail.
            case required
        }

        public var name: String
        public var kind: Kind
        /// slack, webhook and pagerduty: where to POST.
        public var url: String?
        /// webhook: the HMAC-SHA256 key of X-Tocsin-Signature.
        public var secret: String?
        /// pagerduty: the Events API v2 routing (integration) key.
        public var routingKey: String?
        public var smtpURL: String?
        public var username: String?
        public var password: String?
        public var from: String?
        public var to: [String]
        public var startTLS: StartTLS
        /// Messages a second to this destination, and the burst allowed.
        public var ratePerSecond: Double
        public var burst: Int

        public static let pagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

        public init(name: String, kind: Kind, url: String? = nil, secret: String? = nil, routingKey: String? = nil,
                    smtpURL: String? = nil, username: String? = nil, password: String? = nil, from: String? = nil,
                    to: [String] = [], startTLS: StartTLS = .opportunistic, ratePerSecond: Double? = nil, burst: Int? = nil) {
            self.name = name
            self.kind = kind
            self.url = url
            self.secret = secret
            self.routingKey = routingKey
            self.smtpURL = smtpURL
            self.username = username
            self.password = password
            self.from = from
            self.to = to
            self.startTLS = startTLS
            // Slack's incoming webhooks allow about one message a second.
            self.ratePerSecond = ratePerSecond ?? (kind == .slack ? 1 : 10)
            self.burst = burst ?? (kind == .slack ? 5 : 20)
        }

        /// Where messages go, without secrets: scheme, host and the first
        /// path segment; never the rest of a webhook URL, keys or passwords.
        public var redactedDestination: String {
            switch kind {
            case .email:
                return (smtpURL.map(Self.redact) ?? "?") + " → " + to.joined(separator: ", ")
            case .pagerduty:
                return Self.redact(url ?? Self.pagerDutyURL)
            case .slack, .webhook:
                return url.map(Self.redact) ?? "?"
            }
        }

        public static func redact(_ url: String) -> String {
            guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else {
                return "***"
            }
            var out = scheme + "://" + host
            if let port = components.port { out += ":\(port)" }
            let segments = components.path.split(separator: "/")
            if let first = segments.first {
                out += "/" + first
                if segments.count > 1 { out += "/***" }
            }
            return out
        }
    }

    public struct Route: Sendable, Equatable {
        public var channels: [String]
        /// nil: every severity.
        public var severities: Set<Rule.Severity>?
        /// Rule labels that must all match.
        public var labels: [String: String]
        /// nil: every rule.
        public var rules: Set<String>?
        public var sendResolved: Bool
        /// How often a still-firing alert is sent again.
        public var repeatIntervalSeconds: Int

        public init(channels: [String], severities: Set<Rule.Severity>? = nil, labels: [String: String] = [:],
                    rules: Set<String>? = nil, sendResolved: Bool = true, repeatIntervalSeconds: Int = 4 * 3600) {
            self.channels = channels
            self.severities = severities
            self.labels = labels
            self.rules = rules
            self.sendResolved = sendResolved
            self.repeatIntervalSeconds = repeatIntervalSeconds
        }

        public func matches(rule: String, severity: Rule.Severity, labels ruleLabels: [String: String]) -> Bool {
            if let severities, !severities.contains(severity) { return false }
            if let rules, !rules.contains(rule) { return false }
            return labels.allSatisfy { ruleLabels[$0.key] == $0.value }
        }
    }

    public var channels: [Channel]
    public var routes: [Route]

    public init(channels: [Channel], routes: [Route]) {
        self.channels = channels
        self.routes = routes
    }

    public static let empty = NotifyConfig(channels: [], routes: [])

    /// `SLACK_WEBHOOK_URL` alone: every alert, fired and resolved, to Slack.
    public static func slackOnly(url: String) -> NotifyConfig {
        NotifyConfig(channels: [Channel(name: "slack", kind: .slack, url: url)], routes: [Route(channels: ["slack"])])
    }

    public func channel(named name: String) -> Channel? { channels.first { $0.name == name } }

    /// The channels a transition goes to, with the repeat interval (the
    /// shortest of the matching routes).
    public func destinations(rule: String, severity: Rule.Severity, labels: [String: String],
                             transition: AlertTransition.Kind) -> [(channel: Channel, repeatIntervalSeconds: Int)] {
        var chosen: [String: Int] = [:]
        var order: [String] = []
        for route in routes where route.matches(rule: rule, severity: severity, labels: labels) {
            if transition == .resolved && !route.sendResolved { continue }
            for name in route.channels {
                if let current = chosen[name] {
                    chosen[name] = min(current, route.repeatIntervalSeconds)
                } else {
                    chosen[name] = route.repeatIntervalSeconds
                    order.append(name)
                }
            }
        }
        return order.compactMap { name in channel(named: name).map { ($0, chosen[name]!) } }
    }

    // MARK: Parsing

    public struct Result: Sendable {
        public var config: NotifyConfig?
        public var problems: [RuleProblem]
    }

    static let channelFields: Set<String> = [
        "name", "kind", "url", "url_env", "secret", "secret_env", "routing_key", "routing_key_env", "smtp_url",
        "smtp_url_env", "username", "password", "password_env", "from", "to", "starttls", "rate_per_second", "burst",
    ]
    static let routeFields: Set<String> = ["channels", "severities", "labels", "rules", "send_resolved", "repeat_interval"]

    /// Parses a notifications file; `*_env` fields read the value from
    /// `environment`, so secrets can stay out of the file.
    public static func parse(yaml: String, environment: [String: String]) -> Result {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            return Result(config: nil, problems: [RuleFile.yamlProblem(error)])
        } catch {
            return Result(config: nil, problems: [RuleProblem(line: nil, rule: nil, field: nil, message: "not valid YAML")])
        }
        guard let root, let mapping = root.mapping else {
            return Result(config: nil, problems: [RuleProblem(line: root?.mark?.line, rule: nil, field: nil,
                                                              message: "the file must be a mapping with channels and routes")])
        }
        var problems: [RuleProblem] = []
        for (key, _) in mapping where key.string != "channels" && key.string != "routes" {
            problems.append(RuleProblem(line: key.mark?.line, rule: nil, field: key.string, message: "unknown top-level key (expected channels, routes)"))
        }
        var channels: [Channel] = []
        for (index, node) in (mapping["channels"]?.sequence.map(Array.init) ?? []).enumerated() {
            var reader = FieldReader(node: node, label: "channel #\(index + 1)", allowed: channelFields, environment: environment)
            if let channel = reader.channel() {
                if channels.contains(where: { $0.name == channel.name }) {
                    reader.problem("name", "duplicate channel name")
                } else {
                    channels.append(channel)
                }
            }
            problems += reader.problems
        }
        if mapping["channels"] == nil || mapping["channels"]?.sequence == nil {
            problems.append(RuleProblem(line: root.mark?.line, rule: nil, field: "channels", message: "a list of channels is required"))
        }
        var routes: [Route] = []
        for (index, node) in (mapping["routes"]?.sequence.map(Array.init) ?? []).enumerated() {
            var reader = FieldReader(node: node, label: "route #\(index + 1)", allowed: routeFields, environment: environment)
            if let route = reader.route(known: Set(channels.map(\.name))) { routes.append(route) }
            problems += reader.problems
        }
        if mapping["routes"] == nil || mapping["routes"]?.sequence == nil {
            problems.append(RuleProblem(line: root.mark?.line, rule: nil, field: "routes", message: "a list of routes is required"))
        }
        return Result(config: problems.isEmpty ? NotifyConfig(channels: channels, routes: routes) : nil, problems: problems)
    }

    struct FieldReader {
        let node: Node
        var label: String
        let environment: [String: String]
        var problems: [RuleProblem] = []
        var values: [String: Node] = [:]

        init(node: Node, label: String, allowed: Set<String>, environment: [String: String]) {
            self.node = node
            self.label = label
            self.environment = environment
            guard let mapping = node.mapping else {
                problems.append(RuleProblem(line: node.mark?.line, rule: label, field: nil, message: "must be a mapping"))
                return
            }
            for (key, value) in mapping {
                guard let name = key.string else { continue }
                if allowed.contains(name) { values[name] = value } else {
                    problems.append(RuleProblem(line: key.mark?.line, rule: label, field: name, message: "unknown field"))
                }
            }
        }

        mutating func problem(_ field: String, _ message: String) {
            problems.append(RuleProblem(line: (values[field] ?? node).mark?.line, rule: label, field: field, message: message))
        }

        mutating func string(_ field: String) -> String? {
            guard let node = values[field] else { return nil }
            guard let scalar = node.scalar, node.null == nil else {
                problem(field, "must be a string")
                return nil
            }
            return scalar.string
        }

        /// A value given directly or through `<field>_env`.
        mutating func secretOrEnv(_ field: String) -> String? {
            if let value = string(field) {
                if values[field + "_env"] != nil { problem(field, "give either \(field) or \(field)_env, not both") }
                return value
            }
            guard let variable = string(field + "_env") else { return nil }
            guard let value = environment[variable], !value.isEmpty else {
                problem(field + "_env", "the environment variable \(variable) is not set")
                return nil
            }
            return value
        }

        mutating func list(_ field: String) -> [String]? {
            guard let node = values[field] else { return nil }
            let items = node.sequence.map(Array.init) ?? [node]
            var out: [String] = []
            for item in items {
                guard let text = item.scalar?.string else {
                    problem(field, "must be a list of strings")
                    return nil
                }
                out.append(text)
            }
            return out
        }

        mutating func channel() -> Channel? {
            guard let name = string("name"), name.range(of: "^[a-z0-9][a-z0-9_-]{0,63}$", options: .regularExpression) != nil else {
                problem("name", "is required: 1 to 64 characters of a-z, 0-9, _ and -")
                return nil
            }
            label = "channel \(name)"
            for i in problems.indices { problems[i].rule = label }
            guard let kindText = string("kind"), let kind = Channel.Kind(rawValue: kindText) else {
                problem("kind", "must be one of slack, webhook, pagerduty, email")
                return nil
            }
            func httpURL(_ text: String?, _ field: String) -> String? {
                guard let text else { return nil }
                guard let components = URLComponents(string: text), ["http", "https"].contains(components.scheme ?? ""),
                      components.host?.isEmpty == false
                else {
                    problem(field, "must be an http(s) URL")
                    return nil
                }
                return text
            }
            var channel = Channel(name: name, kind: kind)
            switch kind {
            case .slack, .webhook:
                channel.url = httpURL(secretOrEnv("url"), "url")
                if channel.url == nil && !problems.contains(where: { $0.field?.hasPrefix("url") == true }) {
                    problem("url", "is required (url or url_env)")
                }
                if kind == .webhook { channel.secret = secretOrEnv("secret") }
            case .pagerduty:
                channel.url = httpURL(secretOrEnv("url"), "url") ?? Channel.pagerDutyURL
                channel.routingKey = secretOrEnv("routing_key")
                if channel.routingKey == nil && !problems.contains(where: { $0.field?.hasPrefix("routing_key") == true }) {
                    problem("routing_key", "is required (routing_key or routing_key_env)")
                }
            case .email:
                channel.smtpURL = secretOrEnv("smtp_url")
                if let url = channel.smtpURL, !(url.hasPrefix("smtp://") || url.hasPrefix("smtps://")) {
                    problem("smtp_url", "must start with smtp:// or smtps://")
                }
                if channel.smtpURL == nil { problem("smtp_url", "is required") }
                channel.username = string("username")
                channel.password = secretOrEnv("password")
                channel.from = string("from")
                if channel.from?.contains("@") != true { problem("from", "is required: the sender's address") }
                channel.to = list("to") ?? []
                if channel.to.isEmpty || !channel.to.allSatisfy({ $0.contains("@") }) {
                    problem("to", "is required: one or more addresses")
                }
                if let text = string("starttls") {
                    if let mode = Channel.StartTLS(rawValue: text) { channel.startTLS = mode } else {
                        problem("starttls", "must be off, opportunistic or required")
                    }
                }
            }
            if let text = string("rate_per_second") {
                if let rate = Double(text), rate > 0 { channel.ratePerSecond = rate } else {
                    problem("rate_per_second", "must be a positive number")
                }
            }
            if let text = string("burst") {
                if let burst = Int(text), burst >= 1 { channel.burst = burst } else { problem("burst", "must be at least 1") }
            }
            return problems.isEmpty ? channel : nil
        }

        mutating func route(known: Set<String>) -> Route? {
            guard let channels = list("channels"), !channels.isEmpty else {
                problem("channels", "is required: the channels this route sends to")
                return nil
            }
            for name in channels where !known.contains(name) { problem("channels", "no channel named \(name)") }
            var route = Route(channels: channels)
            if let severities = list("severities") {
                var set: Set<Rule.Severity> = []
                for text in severities {
                    if let severity = Rule.Severity(rawValue: text) { set.insert(severity) } else {
                        problem("severities", "must be warning, error or critical")
                    }
                }
                route.severities = set
            }
            if let rules = list("rules") { route.rules = Set(rules) }
            if let node = values["labels"] {
                if let mapping = node.mapping {
                    for (key, value) in mapping {
                        if let k = key.string, let v = value.scalar?.string { route.labels[k] = v } else {
                            problem("labels", "must map label names to strings")
                        }
                    }
                } else {
                    problem("labels", "must map label names to strings")
                }
            }
            if let text = string("send_resolved") {
                switch text {
                case "true": route.sendResolved = true
                case "false": route.sendResolved = false
                default: problem("send_resolved", "must be true or false")
                }
            }
            if let text = string("repeat_interval") {
                if let seconds = DurationText.parse(text), seconds >= 60 { route.repeatIntervalSeconds = seconds } else {
                    problem("repeat_interval", "must be a duration of at least 1m, such as 30m or 4h")
                }
            }
            return problems.isEmpty ? route : nil
        }
    }
}
