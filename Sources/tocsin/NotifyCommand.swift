import ArgumentParser
import Foundation
import TocsinCore
import TocsinNotify
import TocsinStore

struct Notify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Check and apply notifications files, see their history, send test messages.",
        subcommands: [Check.self, Apply.self, History.self, Test.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a notifications file; every problem is reported with its line and field.")

        @Argument(help: "The notifications file (YAML).")
        var file: String

        func run() async throws {
            try await runCommand {
                let result = NotifyConfigFile.parse(yaml: try ConfigFiles.read(file), environment: ProcessInfo.processInfo.environment)
                guard let config = result.config else { try reportProblems(result.problems, in: file) }
                print("\(file): OK: \(config.channels.count) channel(s), \(config.routes.count) route(s)")
                for channel in config.channels {
                    print("  \(channel.name) (\(channel.kind.rawValue)) → \(channel.destination)")
                }
            }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a notifications file and apply it to the database as a new version.",
            discussion: """
                Secrets are never stored: every url, secret, routing_key, smtp_url and password must be given \
                as the *_env form, naming an environment variable that the workers have. The variables need \
                not be set where you apply the file.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The notifications file (YAML).")
        var file: String

        @Option(name: .customLong("by"), help: "Who applies it, for the history (default: user@host).")
        var by: String?

        func run() async throws {
            try await runCommand {
                let config = try ConfigFiles.notify(file, environment: nil)
                let inline = config.channelsWithInlineSecrets
                guard inline.isEmpty else {
                    let fields = inline.map { "\($0.channel).\($0.field)" }.joined(separator: ", ")
                    throw CLIError("\(file): secrets cannot be stored in the database (\(fields)); give each as <field>_env naming an environment variable of the workers")
                }
                let (detached, _) = config.detachingSecrets(environment: ProcessInfo.processInfo.environment)
                try await withOneShotStore(global) { store in
                    let outcome = try await store.config.applyNotify(detached, appliedBy: by ?? ConfigFiles.defaultActor, source: file)
                    ConfigFiles.report(outcome, what: "\(file): \(config.channels.count) channel(s), \(config.routes.count) route(s)")
                }
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the applied versions of the notifications: who, when, what changed.")

        @OptionGroup var global: GlobalOptions

        @Option(name: .customLong("limit"), help: "How many versions, newest first (default 20).")
        var limit: Int = 20

        func run() async throws {
            try await runCommand {
                guard (1...1000).contains(limit) else { throw CLIError("--limit must be from 1 to 1000") }
                try await withOneShotStore(global) { store in
                    printHistory(try await store.config.versions(.notify, limit: limit))
                }
            }
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a test message to a channel: of NOTIFY_CONFIG, of SLACK_WEBHOOK_URL (named slack), else of the applied configuration.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The channel's name.")
        var channel: String

        func run() async throws {
            try await runCommand {
                let config = try global.configuration()
                let environment = ProcessInfo.processInfo.environment
                let notify: NotifyConfig
                if let path = config.notifyConfigFile {
                    notify = try ConfigFiles.notify(path, environment: environment)
                } else if let url = config.slackWebhookURL {
                    notify = .slackOnly(url: url)
                } else {
                    var applied = NotifyConfig.empty
                    try await withOneShotStore(global) { store in applied = try await store.config.activeNotify().config }
                    notify = applied
                }
                try await send(to: notify, config: config)
            }
        }

        func send(to notify: NotifyConfig, config: Configuration) async throws {
            guard let target = notify.channel(named: channel) else {
                let names = notify.channels.map(\.name)
                throw CLIError("no channel named \(channel)" + (names.isEmpty ? "; set NOTIFY_CONFIG or SLACK_WEBHOOK_URL, or apply a notifications file"
                                                                 : " (channels: \(names.joined(separator: ", ")))"))
            }
            let resolved: ResolvedChannel
            do {
                resolved = try SecretResolver().resolve(target)
            } catch {
                throw CLIError("\(error)")
            }
            let now = Date()
            let alert = Alert(
                id: 0, rule: "tocsin_test", severity: .warning, status: .firing, groupKey: "", platform: nil, value: 1,
                threshold: 0, comparison: ">", samples: 1,
                description: "A test message from `tocsin notify test`: the channel works.", runbookURL: nil,
                startedAt: now, firedAt: now, lastEvaluatedAt: now, acknowledgedAt: nil, acknowledgedBy: nil,
                acknowledgeNote: nil, resolvedAt: nil, resolvedBy: nil, resolution: nil, resolveNote: nil, labels: [:])
            let transport = Transport(threads: 1)
            let sender = Sender(transport: transport, publicURL: config.publicURL)
            let outcome = await sender.send(NotificationPayload(kind: .test, alert: alert, transitionAt: now), id: 0, to: resolved)
            if target.kind == .pagerduty && outcome.verdict == .delivered {
                // Close the test incident at once.
                _ = await sender.send(NotificationPayload(kind: .resolved, alert: alert, transitionAt: now), id: 0, to: resolved)
            }
            await transport.shutdown()
            guard outcome.verdict == .delivered else {
                throw CLIError("test message to \(channel) (\(resolved.destination)) failed: \(outcome.error ?? "unknown error")")
            }
            print("test message delivered to \(channel) (\(resolved.destination))")
        }
    }
}
