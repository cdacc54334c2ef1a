import ArgumentParser
import Foundation
import TocsinCore
import TocsinNotify
import TocsinStore

struct Notify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Check the notifications file and send test messages.",
        subcommands: [Check.self, Test.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a notifications file; every problem is reported with its line and field.")

        @Argument(help: "The notifications file (YAML).")
        var file: String

        func run() async throws {
            try await runCommand {
                guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
                let result = NotifyConfig.parse(yaml: String(decoding: data, as: UTF8.self),
                                                environment: ProcessInfo.processInfo.environment)
                if let config = result.config {
                    print("\(file): OK: \(config.channels.count) channel(s), \(config.routes.count) route(s)")
                    for channel in config.channels {
                        print("  \(channel.name) (\(channel.kind.rawValue)) → \(channel.redactedDestination)")
                    }
                    return
                }
                try reportProblems(result.problems, in: file)
            }
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a test message to a channel of NOTIFY_CONFIG (or to SLACK_WEBHOOK_URL's channel, named slack).")

        @Argument(help: "The channel's name.")
        var channel: String

        func run() async throws {
            try await runCommand {
                let config = try Configuration.fromEnvironment(ProcessInfo.processInfo.environment)
                let notify = try NotifyConfig.load(config: config, environment: ProcessInfo.processInfo.environment)
                guard let target = notify.channel(named: channel) else {
                    let names = notify.channels.map(\.name)
                    throw CLIError("no channel named \(channel)" + (names.isEmpty ? "; set NOTIFY_CONFIG or SLACK_WEBHOOK_URL"
                                                                     : " (channels: \(names.joined(separator: ", ")))"))
                }
                let now = Date().timeIntervalSince1970
                let alert = Alert(
                    id: 0, rule: "tocsin_test", severity: .warning, status: .firing, groupKey: "", platform: nil, value: 1,
                    threshold: 0, comparison: ">", samples: 1,
                    description: "A test message from `tocsin notify test`: the channel works.", runbookURL: nil,
                    startedAt: now, firedAt: now, lastEvaluatedAt: now, acknowledgedAt: nil, acknowledgedBy: nil,
                    acknowledgeNote: nil, resolvedAt: nil, resolvedBy: nil, resolution: nil, resolveNote: nil, labels: [:])
                let transport = Transport(threads: 1)
                let sender = Sender(transport: transport, publicURL: config.publicURL)
                let outcome = await sender.send(NotificationContent(notificationID: 0, kind: .test, alert: alert, transitionAt: now),
                                                to: target)
                if target.kind == .pagerduty && outcome.verdict == .delivered {
                    // Close the test incident at once.
                    _ = await sender.send(NotificationContent(notificationID: 0, kind: .resolved, alert: alert, transitionAt: now),
                                          to: target)
                }
                await transport.shutdown()
                guard outcome.verdict == .delivered else {
                    throw CLIError("test message to \(channel) (\(target.redactedDestination)) failed: \(outcome.error ?? "unknown error")")
                }
                print("test message delivered to \(channel) (\(target.redactedDestination))")
            }
        }
    }
}
