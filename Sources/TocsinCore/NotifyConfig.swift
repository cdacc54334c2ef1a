import Foundation

/// Where a secret (a webhook URL, a routing key, a password) is found. The
/// applied configuration in the database only ever names a place, never the
/// value: the dispatchers resolve it in their own environment.
public enum SecretReference: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The environment variable of this name, in the process that sends.
    case environment(String)
    /// A value only the process that applied the file holds (inline values
    /// of a file given to `tocsin run`); the key names the channel and field.
    case local(String)
    /// A value read from a file, before it is applied. Never stored.
    case inline(String)

    public var description: String {
        switch self {
        case .environment(let name): "$\(name)"
        case .local(let key): "(held by the process that applied it: \(key))"
        case .inline: "(inline value)"
        }
    }

    enum CodingKeys: String, CodingKey { case env, local }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let name = try c.decodeIfPresent(String.self, forKey: .env) {
            self = .environment(name)
        } else {
            self = .local(try c.decode(String.self, forKey: .local))
        }
    }

    /// Inline values cannot be encoded: `NotifyConfig.detachingSecrets()`
    /// replaces them first.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .environment(let name): try c.encode(name, forKey: .env)
        case .local(let key): try c.encode(key, forKey: .local)
        case .inline:
            throw EncodingError.invalidValue(self, .init(codingPath: encoder.codingPath,
                                                          debugDescription: "secret values are never stored"))
        }
    }
}

/// Notification channels and routes: the configuration a `tocsin notify
/// apply` (or `tocsin run` at start) writes to the database as a numbered
/// version, and every process reads from there.
public struct NotifyConfig: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Channel names and redacted destinations only: never secrets.
    public var description: String {
        "NotifyConfig(" + channels.map(\.description).joined(separator: ", ") + ")"
    }

    public struct Channel: Sendable, Equatable, Codable, CustomStringConvertible {
        public var description: String { "\(name) (\(kind.rawValue)) → \(destination)" }

        public enum Kind: String, Sendable, CaseIterable, Codable {
            case slack, webhook, pagerduty, email
        }

        /// How webhook requests are signed: Standard Webhooks headers, the
        /// legacy X-Tocsin-Signature, or both (while receivers move over).
        /// Unset: standard for a `whsec_…` secret, legacy for any other.
        public enum Signature: String, Sendable, CaseIterable, Codable {
            case standard, legacy, both
        }

        public enum StartTLS: String, Sendable, CaseIterable, Codable {
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
        public var url: SecretReference?
        /// webhook: the HMAC-SHA256 signing key.
        public var secret: SecretReference?
        /// pagerduty: the Events API v2 routing (integration) key.
        public var routingKey: SecretReference?
        public var smtpURL: SecretReference?
        public var username: String?
        public var password: SecretReference?
        public var from: String?
        public var to: [String]
        public var startTLS: StartTLS
        /// email: a PEM file of the certificates to trust for the server
        /// (a relay with a private CA) instead of the system's.
        public var tlsCAFile: String?
        /// webhook: the signature scheme (see `Signature`).
        public var signature: Signature?
        /// Messages a second to this destination, and the burst allowed.
        public var ratePerSecond: Double
        public var burst: Int
        /// Where messages go, without secrets (scheme, host, first path
        /// segment), as known where the configuration was applied.
        public var destination: String

        public static let pagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

        /// The key of a Standard Webhooks secret `whsec_<base64>` (24 to 64
        /// bytes, padding optional), or nil when the secret is not one.
        public static func standardWebhookKey(_ secret: String) -> [UInt8]? {
            guard secret.hasPrefix("whsec_"), secret.utf8.count <= 200 else { return nil }
            var encoded = String(secret.dropFirst(6))
            while encoded.utf8.count % 4 != 0 { encoded += "=" }
            guard let key = Data(base64Encoded: encoded), (24...64).contains(key.count) else { return nil }
            return Array(key)
        }

        public init(name: String, kind: Kind, url: SecretReference? = nil, secret: SecretReference? = nil,
                    routingKey: SecretReference? = nil, smtpURL: SecretReference? = nil, username: String? = nil,
                    password: SecretReference? = nil, from: String? = nil, to: [String] = [],
                    startTLS: StartTLS = .opportunistic, tlsCAFile: String? = nil, signature: Signature? = nil,
                    ratePerSecond: Double? = nil, burst: Int? = nil) {
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
            self.tlsCAFile = tlsCAFile
            self.signature = signature
            // Slack's incoming webhooks allow about one message a second.
            self.ratePerSecond = ratePerSecond ?? (kind == .slack ? 1 : 10)
            self.burst = burst ?? (kind == .slack ? 5 : 20)
            self.destination = ""
            self.destination = redactedDestination(environment: [:])
        }

        /// A channel given inline values (tests, `tocsin notify test`).
        public init(name: String, kind: Kind, url: String? = nil, secret: String? = nil, routingKey: String? = nil,
                    smtpURL: String? = nil, username: String? = nil, password: String? = nil, from: String? = nil,
                    to: [String] = [], startTLS: StartTLS = .opportunistic, tlsCAFile: String? = nil,
                    signature: Signature? = nil, ratePerSecond: Double? = nil, burst: Int? = nil) {
            self.init(name: name, kind: kind, url: url.map(SecretReference.inline), secret: secret.map(SecretReference.inline),
                      routingKey: routingKey.map(SecretReference.inline), smtpURL: smtpURL.map(SecretReference.inline),
                      username: username, password: password.map(SecretReference.inline), from: from, to: to,
                      startTLS: startTLS, tlsCAFile: tlsCAFile, signature: signature, ratePerSecond: ratePerSecond,
                      burst: burst)
        }

        /// Every secret reference of the channel, by field name.
        public var secrets: [(field: String, reference: SecretReference)] {
            [("url", url), ("secret", secret), ("routing_key", routingKey), ("smtp_url", smtpURL), ("password", password)]
                .compactMap { field, reference in reference.map { (field, $0) } }
        }

        /// Scheme, host and first path segment of where messages go, when
        /// the value is known here; else where it will be read from.
        public func redactedDestination(environment: [String: String]) -> String {
            func known(_ reference: SecretReference?) -> String? {
                switch reference {
                case .inline(let value): value
                case .environment(let name): environment[name]
                case .local, nil: nil
                }
            }
            switch kind {
            case .email:
                let server = known(smtpURL).map(Self.redact) ?? smtpURL.map(\.description) ?? "?"
                return server + " → " + to.joined(separator: ", ")
            case .pagerduty:
                return url == nil ? Self.redact(Self.pagerDutyURL) : (known(url).map(Self.redact) ?? url!.description)
            case .slack, .webhook:
                return known(url).map(Self.redact) ?? url.map(\.description) ?? "?"
            }
        }

        /// Host and path stay percent-encoded: decoded, `%00` would put a NUL
        /// into the stored destination.
        public static func redact(_ url: String) -> String {
            guard let components = URLComponents(string: url), let scheme = components.scheme,
                  let host = components.percentEncodedHost else {
                return "***"
            }
            var out = scheme + "://" + host
            if let port = components.port { out += ":\(port)" }
            let segments = components.percentEncodedPath.split(separator: "/")
            if let first = segments.first {
                out += "/" + first
                if segments.count > 1 { out += "/***" }
            }
            return out
        }

        enum CodingKeys: String, CodingKey {
            case name, kind, url, secret, username, password, from, to, burst, destination
            case routingKey = "routing_key", smtpURL = "smtp_url", startTLS = "starttls", ratePerSecond = "rate_per_second"
            case tlsCAFile = "tls_ca_file", signature
        }
    }

    public struct Route: Sendable, Equatable, Codable {
        public var channels: [String]
        /// nil: every severity.
        public var severities: Set<Rule.Severity>?
        /// Labels that must all be equal (on the alert's label set).
        public var labels: [String: String]
        /// Labels given as a set of values or a regular expression.
        public var matchers: LabelMatchers
        /// nil: every rule.
        public var rules: Set<String>?
        public var sendResolved: Bool
        /// How often a still-firing alert (or group) is sent again.
        public var repeatIntervalSeconds: Int
        /// A name for the ledger and messages; "route #N" when not given.
        public var name: String?
        /// nil: one message per alert transition (today's behaviour, and
        /// `group_by: [...]`); else the labels whose values form a group.
        public var groupBy: [String]?
        /// The delay of a new group's first message.
        public var groupWaitSeconds: Int
        /// At most one update message per group per interval.
        public var groupIntervalSeconds: Int
        public var muteTimeIntervals: [String]
        public var activeTimeIntervals: [String]
        public var escalate: [EscalationLevel]

        public static let defaultGroupIntervalSeconds = 300

        public init(channels: [String], severities: Set<Rule.Severity>? = nil, labels: [String: String] = [:],
                    rules: Set<String>? = nil, sendResolved: Bool = true, repeatIntervalSeconds: Int = 4 * 3600) {
            self.channels = channels
            self.severities = severities
            self.labels = labels
            self.matchers = [:]
            self.rules = rules
            self.sendResolved = sendResolved
            self.repeatIntervalSeconds = repeatIntervalSeconds
            self.name = nil
            self.groupBy = nil
            self.groupWaitSeconds = 0
            self.groupIntervalSeconds = Self.defaultGroupIntervalSeconds
            self.muteTimeIntervals = []
            self.activeTimeIntervals = []
            self.escalate = []
        }

        public func displayName(index: Int) -> String { name ?? "route #\(index + 1)" }

        /// `labels` is the alert's label set (`AlertLabelSet`).
        public func matches(rule: String, severity: Rule.Severity, labels alertLabels: [String: String]) -> Bool {
            if let severities, !severities.contains(severity) { return false }
            if let rules, !rules.contains(rule) { return false }
            return labels.allSatisfy { alertLabels[$0.key] == $0.value } && matchers.matchAll(alertLabels)
        }

        enum CodingKeys: String, CodingKey {
            case channels, severities, labels, matchers, rules, name, escalate
            case sendResolved = "send_resolved", repeatIntervalSeconds = "repeat_interval_s", groupBy = "group_by"
            case groupWaitSeconds = "group_wait_s", groupIntervalSeconds = "group_interval_s"
            case muteTimeIntervals = "mute_time_intervals", activeTimeIntervals = "active_time_intervals"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(channels: try c.decode([String].self, forKey: .channels),
                      severities: try c.decodeIfPresent(Set<Rule.Severity>.self, forKey: .severities),
                      labels: try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:],
                      rules: try c.decodeIfPresent(Set<String>.self, forKey: .rules),
                      sendResolved: try c.decodeIfPresent(Bool.self, forKey: .sendResolved) ?? true,
                      repeatIntervalSeconds: try c.decodeIfPresent(Int.self, forKey: .repeatIntervalSeconds) ?? 4 * 3600)
            matchers = try c.decodeIfPresent(LabelMatchers.self, forKey: .matchers) ?? [:]
            name = try c.decodeIfPresent(String.self, forKey: .name)
            groupBy = try c.decodeIfPresent([String].self, forKey: .groupBy)
            groupWaitSeconds = try c.decodeIfPresent(Int.self, forKey: .groupWaitSeconds) ?? 0
            groupIntervalSeconds = try c.decodeIfPresent(Int.self, forKey: .groupIntervalSeconds) ?? Self.defaultGroupIntervalSeconds
            muteTimeIntervals = try c.decodeIfPresent([String].self, forKey: .muteTimeIntervals) ?? []
            activeTimeIntervals = try c.decodeIfPresent([String].self, forKey: .activeTimeIntervals) ?? []
            escalate = try c.decodeIfPresent([EscalationLevel].self, forKey: .escalate) ?? []
        }

        /// Sets are written sorted, so the same route always has the same
        /// stored form (the applied version's checksum depends on it); the
        /// policy fields only when set, so a route of an older file keeps
        /// its stored form and checksum.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(channels, forKey: .channels)
            try c.encodeIfPresent(severities.map { $0.sorted() }, forKey: .severities)
            try c.encode(labels, forKey: .labels)
            try c.encodeIfPresent(rules.map { $0.sorted() }, forKey: .rules)
            try c.encode(sendResolved, forKey: .sendResolved)
            try c.encode(repeatIntervalSeconds, forKey: .repeatIntervalSeconds)
            if !matchers.isEmpty { try c.encode(matchers, forKey: .matchers) }
            try c.encodeIfPresent(name, forKey: .name)
            try c.encodeIfPresent(groupBy, forKey: .groupBy)
            if groupWaitSeconds != 0 { try c.encode(groupWaitSeconds, forKey: .groupWaitSeconds) }
            if groupIntervalSeconds != Self.defaultGroupIntervalSeconds {
                try c.encode(groupIntervalSeconds, forKey: .groupIntervalSeconds)
            }
            if !muteTimeIntervals.isEmpty { try c.encode(muteTimeIntervals, forKey: .muteTimeIntervals) }
            if !activeTimeIntervals.isEmpty { try c.encode(activeTimeIntervals, forKey: .activeTimeIntervals) }
            if !escalate.isEmpty { try c.encode(escalate, forKey: .escalate) }
        }
    }

    public var channels: [Channel]
    public var routes: [Route]
    public var timeIntervals: [TimeWindow]
    public var inhibitRules: [InhibitRule]
    /// Mustache templates by channel kind: the file they came from and
    /// their text (applied with the configuration, so every worker renders
    /// the same).
    public var templates: [Channel.Kind: MessageTemplate]

    public struct MessageTemplate: Sendable, Hashable, Codable {
        public var source: String
        public var text: String
        public init(source: String, text: String) {
            self.source = source
            self.text = text
        }
    }

    public init(channels: [Channel], routes: [Route], timeIntervals: [TimeWindow] = [], inhibitRules: [InhibitRule] = [],
                templates: [Channel.Kind: MessageTemplate] = [:]) {
        self.channels = channels
        self.routes = routes
        self.timeIntervals = timeIntervals
        self.inhibitRules = inhibitRules
        self.templates = templates
    }

    enum CodingKeys: String, CodingKey {
        case channels, routes, templates
        case timeIntervals = "time_intervals", inhibitRules = "inhibit_rules"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        channels = try c.decode([Channel].self, forKey: .channels)
        routes = try c.decode([Route].self, forKey: .routes)
        timeIntervals = try c.decodeIfPresent([TimeWindow].self, forKey: .timeIntervals) ?? []
        inhibitRules = try c.decodeIfPresent([InhibitRule].self, forKey: .inhibitRules) ?? []
        let byName = try c.decodeIfPresent([String: MessageTemplate].self, forKey: .templates) ?? [:]
        templates = [:]
        for (name, template) in byName { if let kind = Channel.Kind(rawValue: name) { templates[kind] = template } }
    }

    /// The policy sections only when present: a configuration without them
    /// keeps the stored form (and checksum) it always had.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(channels, forKey: .channels)
        try c.encode(routes, forKey: .routes)
        if !timeIntervals.isEmpty { try c.encode(timeIntervals, forKey: .timeIntervals) }
        if !inhibitRules.isEmpty { try c.encode(inhibitRules, forKey: .inhibitRules) }
        if !templates.isEmpty {
            try c.encode(Dictionary(uniqueKeysWithValues: templates.map { ($0.key.rawValue, $0.value) }), forKey: .templates)
        }
    }

    public static let empty = NotifyConfig(channels: [], routes: [])

    /// `SLACK_WEBHOOK_URL` alone: every alert, fired and resolved, to Slack.
    public static func slackOnly(url: String) -> NotifyConfig {
        NotifyConfig(channels: [Channel(name: "slack", kind: .slack, url: url)], routes: [Route(channels: ["slack"])])
    }

    /// `SLACK_WEBHOOK_URL` for a whole deployment: the dispatchers read the
    /// URL from their own environment.
    public static func slackFromEnvironment(variable: String = "SLACK_WEBHOOK_URL") -> NotifyConfig {
        NotifyConfig(channels: [Channel(name: "slack", kind: .slack, url: SecretReference.environment(variable))],
                     routes: [Route(channels: ["slack"])])
    }

    public func channel(named name: String) -> Channel? { channels.first { $0.name == name } }

    /// The channels a transition goes to, with the repeat interval (the
    /// shortest of the matching routes).
    public func destinations(rule: String, severity: Rule.Severity, labels: [String: String],
                             transition: AlertTransition.Kind) -> [(channel: Channel, repeatIntervalSeconds: Int)] {
        let set = AlertLabelSet.of(rule: rule, severity: severity, platform: labels["platform"], labels: labels)
        return deliveries(labels: set, severity: severity, rule: rule, transition: transition)
            .map { ($0.channel, $0.repeatIntervalSeconds) }
    }

    /// The configuration as it can be stored, and the inline secret values
    /// it held (keyed by the `.local` references that replace them), which
    /// only the applying process keeps. Destinations are redacted from the
    /// values known here.
    public func detachingSecrets(environment: [String: String]) -> (config: NotifyConfig, localSecrets: [String: String]) {
        var local: [String: String] = [:]
        var out = self
        for i in out.channels.indices {
            var channel = out.channels[i]
            channel.destination = channel.redactedDestination(environment: environment)
            func detach(_ reference: SecretReference?, _ field: String) -> SecretReference? {
                guard case .inline(let value) = reference else { return reference }
                let key = "\(channel.name).\(field)"
                local[key] = value
                return .local(key)
            }
            channel.url = detach(channel.url, "url")
            channel.secret = detach(channel.secret, "secret")
            channel.routingKey = detach(channel.routingKey, "routing_key")
            channel.smtpURL = detach(channel.smtpURL, "smtp_url")
            channel.password = detach(channel.password, "password")
            out.channels[i] = channel
        }
        return (out, local)
    }

    /// The channels with inline secret values, by name: a file for `tocsin
    /// notify apply` must name environment variables instead.
    public var channelsWithInlineSecrets: [(channel: String, field: String)] {
        channels.flatMap { channel in
            channel.secrets.compactMap { field, reference in
                if case .inline = reference { return (channel.name, field) }
                return nil
            }
        }
    }
}
