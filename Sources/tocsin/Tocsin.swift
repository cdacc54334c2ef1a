import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import TocsinAPI
import TocsinCore
import TocsinStore

@main
struct Tocsin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tocsin",
        abstract: "PostgreSQL-backed alerting for the product's integrations.",
        discussion: """
            Every option can also be set by an environment variable (named in its help); \
            a flag wins over the variable. `tocsin run` is the single-machine default; \
            `serve` and `worker` scale out behind a load balancer.
            """,
        subcommands: [Migrate.self, Serve.self, Worker.self, Run.self, Keys.self, Rules.self, Notify.self, Demo.self]
    )
}

/// A failure the user can act on; printed as one line.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a command body; any error becomes one line on stderr and exit 1.
func runCommand(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch is CancellationError {
        throw ExitCode(130)
    } catch {
        FileHandle.standardError.write(Data("tocsin: error: \(oneLine(error))\n".utf8))
        throw ExitCode(1)
    }
}

func oneLine(_ error: any Error) -> String {
    String(describing: error).split(whereSeparator: \.isNewline).joined(separator: " ")
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (safe to run from several processes at once).")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("apply-config"), help: """
        Then apply ALERT_RULES_FILE (default: the shipped rules) and NOTIFY_CONFIG or SLACK_WEBHOOK_URL, \
        as `tocsin run` does at start: the set-up step of a deployment. Secrets must be *_env fields.
        """)
    var applyConfig = false

    func run() async throws {
        try await runCommand {
            var config = try global.configuration()
            config.databasePoolSize = 1
            config.readPoolSize = 1
            let logger = LoggingSetup.bootstrap(config)
            let store = try Runtime.openStore(config: config, logger: logger)
            do {
                let applied = try await store.migrate()
                print(applied.isEmpty ? "database is up to date" : "applied \(applied.count) migration(s): \(applied.joined(separator: ", "))")
                if applyConfig {
                    let secrets = try await ConfigFiles.applyAtStart(config: config, store: store, logger: logger)
                    guard secrets.isEmpty else {
                        throw CLIError("the notifications file has inline secrets (\(secrets.keys.sorted().joined(separator: ", "))); processes other than `tocsin run` cannot read them: give each as <field>_env")
                    }
                }
                await store.close()
            } catch {
                await store.close()
                throw error
            }
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP API and the dashboard.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var server: ServerOptions
    @OptionGroup var startup: StartupOptions

    func run() async throws {
        try await runCommand {
            var config = try global.configuration()
            try server.apply(to: &config)
            let logger = LoggingSetup.bootstrap(config)
            let runtime = try await Runtime.open(config: config, logger: logger, migrate: startup.migrate, roles: [.api])
            try await runServices([try runtime.application(services: try runtime.services())], logger: logger)
        }
    }
}

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run background work: partitions and retention, rule evaluation, notification delivery.",
        discussion: """
            Workers read the rules and the notification channels from the database: apply them with \
            `tocsin rules apply FILE` and `tocsin notify apply FILE`. Secrets are read from this \
            process's environment, by the variable names the channels give.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var startup: StartupOptions

    func run() async throws {
        try await runCommand {
            let config = try global.configuration()
            let logger = LoggingSetup.bootstrap(config)
            for (variable, name) in [(config.alertRulesFile, "ALERT_RULES_FILE"), (config.notifyConfigFile, "NOTIFY_CONFIG")]
            where variable != nil {
                logger.notice("\(name) is read by `tocsin run` and `tocsin migrate --apply-config`; this worker uses the configuration applied in the database",
                              metadata: ["file": .string(variable!)])
            }
            let runtime = try await Runtime.open(config: config, logger: logger, migrate: startup.migrate, roles: [.worker])
            try await runServices(try runtime.services(), logger: logger)
        }
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve and work in one process: the single-machine default.",
        discussion: """
            At start it applies ALERT_RULES_FILE (default: the shipped rules/default.yaml) and, when set, \
            NOTIFY_CONFIG or SLACK_WEBHOOK_URL to the database, as new versions when they changed.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var server: ServerOptions
    @OptionGroup var startup: StartupOptions

    func run() async throws {
        try await runCommand {
            var config = try global.configuration()
            try server.apply(to: &config)
            let logger = LoggingSetup.bootstrap(config)
            let runtime = try await Runtime.open(config: config, logger: logger, migrate: startup.migrate, roles: [.api, .worker])
            let secrets: [String: String]
            do {
                secrets = try await ConfigFiles.applyAtStart(config: config, store: runtime.store, logger: logger)
            } catch {
                await runtime.store.close()
                throw error
            }
            try await runServices([try runtime.application(services: try runtime.services(localSecrets: secrets))], logger: logger)
        }
    }
}
