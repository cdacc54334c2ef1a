import Foundation
import Logging
import TocsinCore
import TocsinNotify
import TocsinStore

/// Reading rules and notification files, and applying them.
enum ConfigFiles {
    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read \(path)") }
        guard let text = String(validating: data, as: UTF8.self) else { throw CLIError("\(path) is not UTF-8 text") }
        return text
    }

    /// The rules of `path`, or the first problem (with a hint to `rules check`).
    static func rules(_ path: String, intervalSeconds: Int) throws -> [Rule] {
        let result = RuleFile.parse(yaml: try read(path), defaultIntervalSeconds: intervalSeconds)
        if let first = result.problems.first {
            let more = result.problems.count > 1 ? " (and \(result.problems.count - 1) more; run `tocsin rules check \(path)`)" : ""
            throw CLIError("invalid rules file \(path): \(first)\(more)")
        }
        return result.rules
    }

    /// The notification configuration of `path`. With `environment`, every
    /// `*_env` variable must be set in it.
    static func notify(_ path: String, environment: [String: String]?) throws -> NotifyConfig {
        let result = try parseNotify(path, environment: environment)
        guard let config = result.config else {
            let first = result.problems.first.map(String.init(describing:)) ?? "invalid"
            let more = result.problems.count > 1 ? " (and \(result.problems.count - 1) more; run `tocsin notify check \(path)`)" : ""
            throw CLIError("invalid notifications file \(path): \(first)\(more)")
        }
        return config
    }

    /// Parses a notifications file, reading its templates (paths relative
    /// to the file's folder) and rendering each against the sample alerts:
    /// a template's problem names its file and line.
    static func parseNotify(_ path: String, environment: [String: String]?) throws -> NotifyConfigFile.Result {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        var result = NotifyConfigFile.parse(yaml: try read(path), environment: environment) { name in
            let file = name.hasPrefix("/") ? name : folder.appendingPathComponent(name).path
            return try? read(file)
        }
        if let config = result.config {
            let problems = MessageTemplates.check(config).map {
                RuleProblem(line: nil, rule: "templates", field: $0.kind.rawValue, message: $0.description)
            }
            if !problems.isEmpty {
                result.problems += problems
                result.config = nil
            }
        }
        return result
    }

    /// `user@host` of this process: who applied a configuration.
    static var defaultActor: String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        return "\(ProcessInfo.processInfo.environment["USER"] ?? "unknown")@\(host)"
    }

    /// What `tocsin run` applies at start: `ALERT_RULES_FILE` (or the shipped
    /// defaults), and `NOTIFY_CONFIG` — or `SLACK_WEBHOOK_URL` for every alert
    /// — when set. Returns the inline secrets of the notifications file,
    /// which only this process holds.
    static func applyAtStart(config: Configuration, store: Store, logger: Logger) async throws -> [String: String] {
        let rulesPath = try config.alertRulesFile
            ?? Resources.locate("rules", marker: "default.yaml").appendingPathComponent("default.yaml").path
        let rules = try self.rules(rulesPath, intervalSeconds: config.alertCheckIntervalSeconds)
        let applied = try await store.rules.apply(rules, appliedBy: "tocsin run", source: rulesPath)
        logger.info("rules applied", metadata: [
            "file": .string(rulesPath), "rules": "\(rules.count)", "version": "\(applied.version.map(String.init) ?? "-")",
            "changed": "\(applied.created)",
        ])
        let environment = ProcessInfo.processInfo.environment
        let notify: NotifyConfig
        let source: String
        if let path = config.notifyConfigFile {
            notify = try self.notify(path, environment: environment)
            source = path
        } else if let url = config.slackWebhookURL {
            guard let components = URLComponents(string: url), ["http", "https"].contains(components.scheme ?? "") else {
                throw CLIError("SLACK_WEBHOOK_URL must be an http(s) URL")
            }
            notify = .slackFromEnvironment()
            source = "SLACK_WEBHOOK_URL"
        } else {
            return [:]
        }
        let (detached, secrets) = notify.detachingSecrets(environment: environment)
        let outcome = try await store.config.applyNotify(detached, appliedBy: "tocsin run", source: source)
        logger.info("notifications applied", metadata: [
            "source": .string(source), "channels": .string(notify.channels.map(\.name).joined(separator: ",")),
            "version": "\(outcome.version.map(String.init) ?? "-")", "changed": "\(outcome.created)",
        ])
        return secrets
    }

    /// Prints an apply's outcome: the new version and its diff, or that
    /// nothing changed.
    static func report(_ outcome: ApplyOutcome, what: String) {
        guard outcome.created, let version = outcome.version else {
            print("\(what): unchanged (version \(outcome.version.map(String.init) ?? "none"))")
            return
        }
        print("\(what): applied as version \(version)")
        for line in outcome.diff { print("  \(line)") }
    }
}

/// Columns padded to their widest cell.
enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}
