import ArgumentParser
import Foundation
import TocsinCore
import TocsinNotify
import TocsinStore

struct Notify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Check and apply notifications files, see their history, send test messages.",
        subcommands: [Check.self, Apply.self, History.self, Test.self, Preview.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a notifications file; every problem is reported with its line and field.")

        @Argument(help: "The notifications file (YAML).")
        var file: String

        func run() async throws {
            try await runCommand {
                let result = try ConfigFiles.parseNotify(file, environment: ProcessInfo.processInfo.environment)
                guard let config = result.config else { try reportProblems(result.problems, in: file) }
                print("\(file): OK: \(config.channels.count) channel(s), \(config.routes.count) route(s)"
                      + (config.timeIntervals.isEmpty ? "" : ", \(config.timeIntervals.count) time interval(s)")
                      + (config.inhibitRules.isEmpty ? "" : ", \(config.inhibitRules.count) inhibit rule(s)")
                      + (config.templates.isEmpty ? "" : ", \(config.templates.count) template(s) rendered against the samples"))
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

        @Option(name: .customLong("alert"), help: "Send what the channel gets (or got) for this alert, with its template.")
        var alert: Int?

        @Flag(name: .customLong("sample"), help: "Send the sample alert (or group) with the channel's template.")
        var sample = false

        func run() async throws {
            try await runCommand {
                let config = try global.configuration()
                let (alert, sample, channel) = (self.alert, self.sample, self.channel)
                let test = self
                try await withNotifyStore(global, config: config, alert: alert) { store in
                    let notify = try await loadNotify(store, config: config)
                    let target = try pick(channel, in: notify)
                    if alert != nil || sample {
                        let message = try await previewPayload(store, notify: notify, channel: target, alert: alert)
                        try await test.send(message.payload, id: message.id, to: target, template: notify.templates[target.kind],
                                            config: config)
                        return
                    }
                    try await test.send(to: notify, config: config)
                }
            }
        }

        func send(_ payload: NotificationPayload, id: Int, to target: NotifyConfig.Channel,
                  template: NotifyConfig.MessageTemplate?, config: Configuration) async throws {
            let resolved: ResolvedChannel
            do { resolved = try SecretResolver().resolve(target) } catch { throw CLIError("\(error)") }
            let transport = Transport(threads: 1)
            let outcome = await Sender(transport: transport, publicURL: config.publicURL)
                .send(payload, id: id, to: resolved, template: template)
            await transport.shutdown()
            guard outcome.verdict == .delivered else {
                throw CLIError("message to \(channel) (\(resolved.destination)) failed: \(outcome.error ?? "unknown error")")
            }
            print("message delivered to \(channel) (\(resolved.destination))")
        }

        func send(to notify: NotifyConfig, config: Configuration) async throws {
            let target = try pick(channel, in: notify)
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
            let outcome = await sender.send(NotificationPayload(kind: .test, alert: alert, transitionAt: now), id: 0, to: resolved,
                                            template: notify.templates[target.kind])
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

/// The notification configuration a command works with: NOTIFY_CONFIG,
/// else SLACK_WEBHOOK_URL (a channel named slack), else the applied one.
func loadNotify(_ store: Store?, config: Configuration) async throws -> NotifyConfig {
    if let path = config.notifyConfigFile {
        return try ConfigFiles.notify(path, environment: ProcessInfo.processInfo.environment)
    }
    if let url = config.slackWebhookURL { return .slackOnly(url: url) }
    return try await store?.config.activeNotify().config ?? .empty
}

/// Runs `body` with the store when the command needs the database (the
/// applied configuration, an alert), else without: one store per process.
func withNotifyStore(_ global: GlobalOptions, config: Configuration, alert: Int?,
                     _ body: @escaping @Sendable (Store?) async throws -> Void) async throws {
    if alert == nil && (config.notifyConfigFile != nil || config.slackWebhookURL != nil) {
        try await body(nil)
    } else {
        try await withOneShotStore(global) { store in try await body(store) }
    }
}

func pick(_ name: String, in notify: NotifyConfig) throws -> NotifyConfig.Channel {
    guard let target = notify.channel(named: name) else {
        let names = notify.channels.map(\.name)
        throw CLIError("no channel named \(name)" + (names.isEmpty ? "; set NOTIFY_CONFIG or SLACK_WEBHOOK_URL, or apply a notifications file"
                                                      : " (channels: \(names.joined(separator: ", ")))"))
    }
    return target
}

/// What `preview` shows and `test --alert/--sample` sends: the newest
/// outbox row of the alert on the channel (its id and stored payload:
/// exactly what was or will be sent), else the alert as it is now; or the
/// sample (a group's when the channel's first route groups).
func previewPayload(_ store: Store?, notify: NotifyConfig, channel: NotifyConfig.Channel,
                    alert: Int?) async throws -> (id: Int, payload: NotificationPayload) {
    guard let alert else {
        let grouped = notify.routes.first { $0.channels.contains(channel.name) }?.groupBy != nil
        let samples = MessageTemplates.samples()
        return (1, grouped ? samples.last! : samples[0])
    }
    guard alert >= 1, let store else { throw CLIError("--alert must be an alert id") }
    if let stored = try await store.outbox.latestPayload(alertID: alert, channel: channel.name) { return stored }
    guard let (current, _) = try await store.alerts.get(id: alert) else { throw CLIError("no alert \(alert)") }
    let kind: NotificationPayload.Kind = current.status == .resolved ? .resolved : .fired
    return (0, NotificationPayload(kind: kind, alert: current, transitionAt: current.resolvedAt ?? current.firedAt ?? current.startedAt))
}

extension Notify {
    struct Preview: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print exactly what a channel is sent for an alert (or the sample), with its template; sends nothing.",
            discussion: """
                Prints the HTTP body (slack, webhook, pagerduty) or the text part (email), byte for byte. For \
                --alert, the alert's newest message on the channel as it was stored; without a template, the \
                built-in message (its send time is now).
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .customLong("channel"), help: "The channel's name.")
        var channel: String

        @Option(name: .customLong("alert"), help: "The alert's id.")
        var alert: Int?

        @Flag(name: .customLong("sample"), help: "The sample alert (or group) that `notify check` renders.")
        var sample = false

        func run() async throws {
            try await runCommand {
                guard (alert != nil) != sample else { throw CLIError("give --alert ID or --sample") }
                let config = try global.configuration()
                let (alert, channel) = (self.alert, self.channel)
                try await withNotifyStore(global, config: config, alert: alert) { store in
                    let notify = try await loadNotify(store, config: config)
                    let target = try pick(channel, in: notify)
                    let (id, payload) = try await previewPayload(store, notify: notify, channel: target, alert: alert)
                    // A routing key is a secret: shown only when this process has it.
                    let key = target.kind == .pagerduty ? ((try? SecretResolver().resolve(target))?.routingKey ?? "(routing key)") : nil
                    let body: Data
                    do {
                        body = try Sender.body(payload, id: id, kind: target.kind, template: notify.templates[target.kind],
                                               publicURL: config.publicURL, now: Date(), routingKey: key)
                    } catch {
                        throw CLIError("\(error)")
                    }
                    FileHandle.standardOutput.write(body)
                }
            }
        }
    }
}
