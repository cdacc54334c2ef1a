import Foundation
import Yams

/// Reads a notifications file:
///
/// ```yaml
/// channels:
///   - name: slack-ops
///     kind: slack
///     url_env: SLACK_OPS_URL          # or url: https://hooks.slack.com/services/… (tocsin run only)
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
///   - name: grouped                   # optional: the route's name in the ledger
///     channels: [slack-ops]
///     group_by: [rule, platform]      # absent or [...]: one message per alert transition
///     group_wait: 0s
///     group_interval: 1m
///     mute_time_intervals: [deploy-window]
///     active_time_intervals: [business-hours]
///     escalate:
///       - after: 15m
///         channels: [pagerduty]
/// time_intervals:
///   - name: business-hours
///     time_zone: Europe/Paris
///     weekdays: [monday:friday]
///     times: [{start: "09:00", end: "18:00"}]
/// inhibit_rules:
///   - name: critical-mutes-lesser
///     source: {severity: critical}
///     target: {severity: [warning, error]}
///     equal: [platform]
/// templates:
///   slack: templates/slack.mustache
/// ```
///
/// docs/notifications.md describes every field.
///
/// A field with an `_env` twin (url, secret, routing_key, smtp_url,
/// password) is a secret: `<field>_env` names the environment variable the
/// sending process reads it from. An inline value stays in the process that
/// read the file (`tocsin run`) and is never stored.
public enum NotifyConfigFile {
    public struct Result: Sendable {
        public var config: NotifyConfig?
        public var problems: [RuleProblem]
    }

    static let channelFields: Set<String> = [
        "name", "kind", "url", "url_env", "secret", "secret_env", "routing_key", "routing_key_env", "smtp_url",
        "smtp_url_env", "username", "password", "password_env", "from", "to", "starttls", "tls_ca_file", "signature", "rate_per_second", "burst",
    ]
    static let routeFields: Set<String> = [
        "channels", "severities", "labels", "rules", "send_resolved", "repeat_interval", "name", "group_by", "group_wait",
        "group_interval", "mute_time_intervals", "active_time_intervals", "escalate",
    ]
    static let topLevel = ["channels", "routes", "time_intervals", "inhibit_rules", "templates"]
    static let maxChannels = 100
    static let maxRoutes = 500

    /// Parses a file. With `environment`, every `*_env` variable must be set
    /// in it (what `tocsin notify check` and `tocsin run` check); without,
    /// only the names are recorded (a file applied from another machine).
    ///
    /// `readTemplate` reads a template file named in `templates` (a path as
    /// written, relative to the file); without it, templates are refused.
    public static func parse(yaml: String, environment: [String: String]?,
                             readTemplate: ((String) -> String?)? = nil) -> Result {
        let root: Node?
        switch YAMLDocument.compose(yaml) {
        case .success(let node): root = node
        case .failure(let problem): return Result(config: nil, problems: [problem])
        }
        guard let root, let mapping = root.mapping else {
            return Result(config: nil, problems: [RuleProblem(line: root?.mark?.line, rule: nil, field: nil,
                                                              message: "the file must be a mapping with channels and routes")])
        }
        var problems: [RuleProblem] = []
        for (key, _) in mapping where !topLevel.contains(key.string ?? "") {
            problems.append(RuleProblem(line: key.mark?.line, rule: nil, field: key.string,
                                        message: "unknown top-level key (expected \(topLevel.joined(separator: ", ")))"))
        }
        let channelNodes = list(mapping["channels"], field: "channels", max: maxChannels, root: root, problems: &problems)
        var channels: [NotifyConfig.Channel] = []
        for (index, node) in channelNodes.enumerated() {
            var reader = ChannelReader(node: node, index: index, environment: environment)
            if let channel = reader.read() {
                if channels.contains(where: { $0.name == channel.name }) {
                    reader.fields.problem("name", "duplicate channel name")
                } else {
                    channels.append(channel)
                }
            }
            problems += reader.fields.problems
        }
        var policy = PolicyReader()
        let windows = policy.timeIntervals(mapping["time_intervals"])
        let inhibitRules = policy.inhibitRules(mapping["inhibit_rules"])
        let templates = policy.templates(mapping["templates"], read: readTemplate)
        problems += policy.problems
        let routeNodes = list(mapping["routes"], field: "routes", max: maxRoutes, root: root, problems: &problems)
        var routes: [NotifyConfig.Route] = []
        for (index, node) in routeNodes.enumerated() {
            var fields = YAMLFields(node, item: "route #\(index + 1)", allowed: routeFields)
            if let route = readRoute(&fields, known: Set(channels.map(\.name)), windows: Set(windows.map(\.name))) {
                routes.append(route)
            }
            problems += fields.problems
        }
        let config = NotifyConfig(channels: channels, routes: routes, timeIntervals: windows, inhibitRules: inhibitRules,
                                  templates: templates)
        return Result(config: problems.isEmpty ? config : nil, problems: problems)
    }

    static func list(_ node: Node?, field: String, max: Int, root: Node, problems: inout [RuleProblem]) -> [Node] {
        guard let sequence = node?.sequence else {
            problems.append(RuleProblem(line: (node ?? root).mark?.line, rule: nil, field: field,
                                        message: "a list of \(field) is required"))
            return []
        }
        guard sequence.count <= max else {
            problems.append(RuleProblem(line: node?.mark?.line, rule: nil, field: field, message: "at most \(max) \(field)"))
            return []
        }
        return Array(sequence)
    }

    struct ChannelReader {
        var fields: YAMLFields
        let environment: [String: String]?

        init(node: Node, index: Int, environment: [String: String]?) {
            fields = YAMLFields(node, item: "channel #\(index + 1)", allowed: NotifyConfigFile.channelFields)
            self.environment = environment
        }

        mutating func read() -> NotifyConfig.Channel? {
            guard let name = fields.string("name", maxLength: 64),
                  // \z, not $: $ also matches before a final line break.
                  name.range(of: "^[a-z0-9][a-z0-9_-]{0,63}\\z", options: .regularExpression) != nil
            else {
                fields.problem("name", "is required: 1 to 64 characters of a-z, 0-9, _ and -")
                return nil
            }
            fields.item = "channel \(name)"
            for i in fields.problems.indices { fields.problems[i].rule = fields.item }
            guard let kind: NotifyConfig.Channel.Kind = fields.choice("kind", required: true) else { return nil }
            var channel = NotifyConfig.Channel(name: name, kind: kind, url: nil as SecretReference?)
            switch kind {
            case .slack, .webhook:
                channel.url = secret("url", check: httpURL)
                if channel.url == nil && !fields.problems.contains(where: { $0.field?.hasPrefix("url") == true }) {
                    fields.problem("url", "is required (url or url_env)")
                }
                if kind == .webhook { readWebhookSigning(&channel) }
            case .pagerduty:
                channel.url = secret("url", check: httpURL)
                channel.routingKey = secret("routing_key", check: nil)
                if channel.routingKey == nil && !fields.problems.contains(where: { $0.field?.hasPrefix("routing_key") == true }) {
                    fields.problem("routing_key", "is required (routing_key or routing_key_env)")
                }
            case .email:
                readEmail(&channel)
            }
            if let rate = fields.number("rate_per_second", 0.001...10_000) { channel.ratePerSecond = rate }
            if let burst = fields.integer("burst", 1...10_000) { channel.burst = burst }
            channel.destination = channel.redactedDestination(environment: environment ?? [:])
            return fields.problems.isEmpty ? channel : nil
        }

        mutating func readEmail(_ channel: inout NotifyConfig.Channel) {
            channel.smtpURL = secret("smtp_url") { url in
                url.hasPrefix("smtp://") || url.hasPrefix("smtps://") ? nil : "must start with smtp:// or smtps://"
            }
            if channel.smtpURL == nil && !fields.problems.contains(where: { $0.field?.hasPrefix("smtp_url") == true }) {
                fields.problem("smtp_url", "is required")
            }
            channel.username = fields.string("username", maxLength: 256)
            channel.password = secret("password", check: nil)
            channel.from = fields.string("from", maxLength: 256)
            if channel.from.map({ $0.contains("@") && !$0.contains(where: \.isNewline) }) != true {
                fields.problem("from", "is required: the sender's address")
            }
            channel.to = fields.stringList("to", maxCount: 50) ?? []
            if channel.to.isEmpty || !channel.to.allSatisfy({ $0.contains("@") && !$0.contains(where: \.isNewline) }) {
                fields.problem("to", "is required: one or more addresses")
            }
            if let path = fields.string("tls_ca_file", maxLength: 1024) {
                if path.hasPrefix("/") { channel.tlsCAFile = path } else { fields.problem("tls_ca_file", "must be an absolute path") }
            }
            let mode: NotifyConfig.Channel.StartTLS? = fields.choice("starttls")
            if let mode { channel.startTLS = mode }
            // A password never crosses the network in clear: over smtp:// it
            // needs STARTTLS, and "opportunistic" would let anyone in the path
            // strip the server's offer. smtps:// is TLS from the start.
            if channel.password != nil, smtpScheme(channel.smtpURL) != "smtps" {
                switch mode {
                case nil: channel.startTLS = .required
                case .required?: break
                case let other?:
                    fields.problem("starttls", "is \(other.rawValue), but a password is set: the password would be sent "
                                   + "without TLS; use starttls: required (or an smtps:// URL)")
                }
            }
        }

        /// A webhook's secret and how it signs: `signature: standard` (or
        /// both) needs a Standard Webhooks secret, checked when its value is
        /// known here.
        mutating func readWebhookSigning(_ channel: inout NotifyConfig.Channel) {
            var known: String?
            channel.secret = secret("secret") { value in
                known = value
                if value.hasPrefix("whsec_"), NotifyConfig.Channel.standardWebhookKey(value) == nil {
                    return "is not a valid Standard Webhooks secret: whsec_ then the base64 of 24 to 64 random bytes"
                }
                return nil
            }
            guard let scheme: NotifyConfig.Channel.Signature = fields.choice("signature") else { return }
            channel.signature = scheme
            if channel.secret == nil {
                fields.problem("signature", "needs a secret (or secret_env) to sign with")
            } else if scheme != .legacy, let known, NotifyConfig.Channel.standardWebhookKey(known) == nil {
                fields.problem("signature", "is \(scheme.rawValue), which needs a whsec_ secret (Standard Webhooks)")
            }
        }

        /// The scheme of an SMTP URL known here (inline, or from the
        /// environment being checked against); nil when unknown.
        func smtpScheme(_ reference: SecretReference?) -> String? {
            let url: String? = switch reference {
            case .inline(let value)?: value
            case .environment(let name)?: environment?[name]
            default: nil
            }
            return url.flatMap { $0.split(separator: ":", maxSplits: 1).first.map { $0.lowercased() } }
        }

        /// `field` given inline or as `field_env`; `check` validates a value
        /// that is known here (nil when it is fine, else the problem).
        mutating func secret(_ field: String, check: ((String) -> String?)?) -> SecretReference? {
            let reference: SecretReference
            var value: String?
            if let inline = fields.string(field, maxLength: 4096) {
                if fields.has(field + "_env") { fields.problem(field, "give either \(field) or \(field)_env, not both") }
                reference = .inline(inline)
                value = inline
            } else if let variable = fields.string(field + "_env", maxLength: 256) {
                guard variable.range(of: "^[A-Za-z_][A-Za-z0-9_]{0,127}\\z", options: .regularExpression) != nil else {
                    fields.problem(field + "_env", "must be an environment variable name")
                    return nil
                }
                reference = .environment(variable)
                if let environment {
                    guard let set = environment[variable], !set.isEmpty else {
                        fields.problem(field + "_env", "the environment variable \(variable) is not set")
                        return nil
                    }
                    value = set
                }
            } else {
                return nil
            }
            if let value, let check, let problem = check(value) {
                fields.problem(fields.has(field) ? field : field + "_env", problem)
                return nil
            }
            return reference
        }

        func httpURL(_ text: String) -> String? {
            guard let components = URLComponents(string: text), ["http", "https"].contains(components.scheme ?? ""),
                  components.host?.isEmpty == false
            else { return "must be an http(s) URL" }
            return nil
        }
    }

    static func readRoute(_ fields: inout YAMLFields, known: Set<String>, windows: Set<String> = []) -> NotifyConfig.Route? {
        guard let channels = fields.stringList("channels", maxCount: 100, maxLength: 64), !channels.isEmpty else {
            fields.problem("channels", "is required: the channels this route sends to")
            return nil
        }
        for name in channels where !known.contains(name) { fields.problem("channels", "no channel named \(name)") }
        var route = NotifyConfig.Route(channels: channels)
        if let severities = fields.stringList("severities", maxCount: 3, maxLength: 16) {
            var set: Set<Rule.Severity> = []
            for text in severities {
                if let severity = Rule.Severity(rawValue: text) { set.insert(severity) } else {
                    fields.problem("severities", "must be warning, error or critical")
                }
            }
            route.severities = set
        }
        if let rules = fields.stringList("rules", maxCount: 1000, maxLength: 64) { route.rules = Set(rules) }
        if fields.has("labels") {
            var reader = PolicyReader()
            let matchers = reader.matchers(fields.values["labels"], field: "labels", item: fields.item)
            fields.problems += reader.problems
            for (name, matcher) in matchers {
                if case .equal(let value) = matcher { route.labels[name] = value } else { route.matchers[name] = matcher }
            }
        }
        if let sendResolved = fields.bool("send_resolved") { route.sendResolved = sendResolved }
        if let seconds = fields.duration("repeat_interval", 60...(30 * 86_400)) { route.repeatIntervalSeconds = seconds }
        if let name = fields.string("name", maxLength: 64) {
            if name.isEmpty || name.contains(where: { $0.isNewline || $0 == "\0" }) {
                fields.problem("name", "must be 1 to 64 characters on one line")
            } else {
                route.name = name
            }
        }
        if let groupBy = fields.stringList("group_by", maxCount: 20, maxLength: 64) {
            // [...] is Alertmanager's "every label": one group per alert.
            if groupBy == ["..."] {
                route.groupBy = nil
            } else if let bad = groupBy.first(where: { !PolicyReader.isLabelName($0) }) {
                fields.problem("group_by", "\(bad) is not a label name (letters, digits and _, not starting with a digit)")
            } else if groupBy.isEmpty {
                fields.problem("group_by", "must name at least one label (or [...] for one group per alert)")
            } else {
                route.groupBy = Array(Set(groupBy)).sorted()
            }
        }
        if let seconds = fields.duration("group_wait", 0...3600) { route.groupWaitSeconds = seconds }
        if let seconds = fields.duration("group_interval", 1...86_400) { route.groupIntervalSeconds = seconds }
        if route.groupBy == nil {
            for field in ["group_wait", "group_interval"] where fields.has(field) {
                fields.problem(field, "applies only to a route with group_by")
            }
        }
        for field in ["mute_time_intervals", "active_time_intervals"] {
            guard let names = fields.stringList(field, maxCount: 50, maxLength: 64) else { continue }
            for name in names where !windows.contains(name) { fields.problem(field, "no time interval named \(name)") }
            if field == "mute_time_intervals" { route.muteTimeIntervals = names } else { route.activeTimeIntervals = names }
        }
        if let node = fields.values["escalate"] {
            route.escalate = readEscalation(node, &fields, known: known)
        }
        return fields.problems.isEmpty ? route : nil
    }

    static func readEscalation(_ node: Node, _ fields: inout YAMLFields, known: Set<String>) -> [NotifyConfig.EscalationLevel] {
        guard let sequence = node.sequence, (1...10).contains(sequence.count) else {
            fields.problem("escalate", "must be a list of 1 to 10 levels, each with after and channels", at: node)
            return []
        }
        var levels: [NotifyConfig.EscalationLevel] = []
        for (index, item) in sequence.enumerated() {
            var level = YAMLFields(item, item: "\(fields.item ?? "route") escalation level \(index + 1)", allowed: ["after", "channels"])
            let after = level.duration("after", 1...(30 * 86_400))
            if after == nil && !level.has("after") { level.problem("after", "is required") }
            let channels = level.stringList("channels", maxCount: 20, maxLength: 64) ?? []
            if channels.isEmpty { level.problem("channels", "is required: the channels of this level") }
            for name in channels where !known.contains(name) { level.problem("channels", "no channel named \(name)") }
            if let after, let previous = levels.last, after <= previous.afterSeconds {
                level.problem("after", "must be later than the level before (\(DurationText.format(previous.afterSeconds))): levels are in order")
            }
            fields.problems += level.problems
            if let after, level.problems.isEmpty { levels.append(.init(afterSeconds: after, channels: channels)) }
        }
        return levels
    }
}
