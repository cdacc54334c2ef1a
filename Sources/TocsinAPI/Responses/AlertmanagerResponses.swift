import Foundation
import TocsinCore

/// The bodies of the Alertmanager v2 API, in its field names (camelCase).

struct AMReceiverBody: Encodable, Sendable {
    var name: String
}

/// `gettableAlert`: an open alert of any source. A rule's alert shows its
/// label set, its description and runbook as annotations, and as endsAt
/// its last evaluation plus the resolve timeout.
struct AMAlertBody: Encodable, Sendable {
    struct Status: Encodable, Sendable {
        var state: String
        var silencedBy: [String]
        var inhibitedBy: [String]
    }

    var labels: [String: String]
    var annotations: [String: String]
    var receivers: [AMReceiverBody]
    var fingerprint: String
    var startsAt: Date
    var updatedAt: Date
    var endsAt: Date
    var status: Status
    var generatorURL: String?

    /// Tocsin's alert id, where Alertmanager names an alert by fingerprint
    /// (`inhibitedBy`): `tocsin-alert-<id>`.
    static func alertID(_ id: Int) -> String { "tocsin-alert-\(id)" }

    init(_ alert: Alert, labels: [String: String], receivers: [String], silencedBy: [String], inhibitedBy: [String],
         resolveTimeout: Int) {
        self.labels = labels
        self.receivers = receivers.map { AMReceiverBody(name: $0) }
        startsAt = alert.startedAt
        status = Status(state: silencedBy.isEmpty && inhibitedBy.isEmpty ? "active" : "suppressed",
                        silencedBy: silencedBy, inhibitedBy: inhibitedBy)
        if let external = alert.external {
            annotations = external.annotations
            fingerprint = external.fingerprint
            updatedAt = external.lastReceivedAt
            endsAt = external.endsAt
            generatorURL = external.generatorURL
        } else {
            var notes: [String: String] = [:]
            if !alert.description.isEmpty { notes["description"] = alert.description }
            if let runbook = alert.runbookURL { notes["runbook_url"] = runbook }
            annotations = notes
            fingerprint = Fingerprint.of(labels)
            updatedAt = alert.lastEvaluatedAt ?? alert.startedAt
            endsAt = updatedAt.addingTimeInterval(Double(resolveTimeout))
            generatorURL = nil
        }
    }
}

struct AMAlertGroupBody: Encodable, Sendable {
    /// The receiver of alerts that no route sends anywhere.
    static let noReceiver = "none"
    var labels: [String: String]
    var receiver: AMReceiverBody
    var alerts: [AMAlertBody]
}

/// `gettableSilence`: every Tocsin silence, its rule, platform, severity
/// and labels as equality matchers (`rule` as `alertname`) before the
/// Alertmanager matchers it was made with.
struct AMSilenceBody: Encodable, Sendable {
    struct Status: Encodable, Sendable { var state: String }
    var id: String
    var status: Status
    var updatedAt: Date
    var matchers: [SilenceMatcher]
    var startsAt: Date
    var endsAt: Date
    var createdBy: String
    var comment: String

    init(_ silence: Silence, updatedAt: Date, now: Date) {
        id = AMSilenceID.format(silence.id)
        var matchers: [SilenceMatcher] = []
        if let rule = silence.rule { matchers.append(.init(name: "alertname", value: rule, isRegex: false)) }
        if let platform = silence.platform { matchers.append(.init(name: "platform", value: platform, isRegex: false)) }
        if let severity = silence.severity { matchers.append(.init(name: "severity", value: severity.rawValue, isRegex: false)) }
        for (name, value) in silence.labels.sorted(by: { $0.key < $1.key }) {
            matchers.append(.init(name: name, value: value, isRegex: false))
        }
        self.matchers = matchers + silence.matchers
        startsAt = silence.startsAt
        // An ended silence ended when it was deleted, as Alertmanager's
        // expiry moves endsAt to now.
        endsAt = silence.deleted ? max(silence.startsAt, min(silence.endsAt, updatedAt)) : silence.endsAt
        self.updatedAt = updatedAt
        createdBy = silence.createdBy
        comment = silence.comment
        let state = silence.deleted || silence.endsAt <= now ? "expired" : silence.startsAt > now ? "pending" : "active"
        status = Status(state: state)
    }
}

struct AMStatusBody: Encodable, Sendable {
    struct Cluster: Encodable, Sendable {
        var name: String
        var status: String
        var peers: [String]
    }

    /// The Alertmanager API version Tocsin answers as (amtool compares its
    /// own major.minor with it); `revision` and `branch` say it is Tocsin.
    struct VersionInfo: Encodable, Sendable {
        var version = "0.25.0"
        var revision = "tocsin"
        var branch = "tocsin"
        var buildUser = "tocsin"
        var buildDate = ""
        var goVersion = "none (Tocsin is written in Swift)"
    }

    struct Config: Encodable, Sendable { var original: String }

    var cluster: Cluster
    var versionInfo: VersionInfo
    var config: Config
    var uptime: Date
}

/// The applied notification config as an Alertmanager configuration file
/// that amtool (`config show`, `config routes`) loads: one receiver per
/// channel, one child route per Tocsin route and channel (with `continue`,
/// as every matching Tocsin route sends), matchers from the route's
/// rules, severities and labels.
enum AlertmanagerConfigText {
    static func quoted(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func regexAlternatives(_ values: [String]) -> String {
        values.map { NSRegularExpression.escapedPattern(for: $0) }.joined(separator: "|")
    }

    static func render(_ config: NotifyConfig, resolveTimeoutSeconds: Int) -> String {
        var lines = ["global:", "  resolve_timeout: \(resolveTimeoutSeconds)s", "route:",
                     "  receiver: \(quoted(AMAlertGroupBody.noReceiver))"]
        var children: [String] = []
        for route in config.routes {
            var matchers: [SilenceMatcher] = []
            if let rules = route.rules, !rules.isEmpty {
                matchers.append(.init(name: "alertname", value: regexAlternatives(rules.sorted()), isRegex: true))
            }
            if let severities = route.severities, !severities.isEmpty {
                matchers.append(.init(name: "severity", value: regexAlternatives(severities.map(\.rawValue).sorted()), isRegex: true))
            }
            for (name, value) in route.labels.sorted(by: { $0.key < $1.key }) {
                matchers.append(.init(name: name, value: value, isRegex: false))
            }
            for (name, condition) in route.matchers.sorted(by: { $0.key < $1.key }) {
                switch condition {
                case .equal(let value): matchers.append(.init(name: name, value: value, isRegex: false))
                case .oneOf(let values): matchers.append(.init(name: name, value: regexAlternatives(values), isRegex: true))
                case .regex(let pattern): matchers.append(.init(name: name, value: pattern, isRegex: true))
                }
            }
            for channel in route.channels {
                children.append("  - receiver: \(quoted(channel))")
                if !matchers.isEmpty {
                    children.append("    matchers:")
                    children += matchers.map { "    - \(quoted($0.description))" }
                }
                if let groupBy = route.groupBy {
                    children.append("    group_by: [\(groupBy.map(quoted).joined(separator: ", "))]")
                }
                children.append("    continue: true")
            }
        }
        if !children.isEmpty { lines += ["  routes:"] + children }
        lines.append("receivers:")
        lines.append("- name: \(quoted(AMAlertGroupBody.noReceiver))")
        for channel in config.channels where channel.name != AMAlertGroupBody.noReceiver {
            lines.append("- name: \(quoted(channel.name))")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
