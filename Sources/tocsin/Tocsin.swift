import ArgumentParser
import Foundation
import Hummingbird
import Logging
import PostgresClient
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

/// Makes the store, checks (or applies, with `--migrate`) the schema and
/// closes the pool again when the check fails.
func openStore(config: Configuration, logger: Logger, migrate: Bool) async throws -> Store {
    let store = try Store.make(config: config, logger: logger)
    do {
        if migrate {
            try await store.migrator.migrate(pool: store.pool, logger: logger)
        }
        let status = try await store.migrator.status(pool: store.pool)
        if let message = Migrator.notCurrentMessage(status) {
            throw CLIError(message)
        }
        try await store.clock.sync()
        if !status.unknown.isEmpty {
            logger.warning("database has migrations this binary does not know; it was migrated by a newer version",
                           metadata: ["migrations": "\(status.unknown)"])
        }
    } catch {
        await store.pool.close()
        throw error
    }
    return store
}

/// Runs services until SIGTERM/SIGINT, then shuts them down in reverse
/// order (so the pool, first, closes last).
func runServices(_ services: [any Service], logger: Logger) async throws {
    let group = ServiceGroup(configuration: .init(
        services: services.map { .init(service: $0) },
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    ))
    try await group.run()
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (safe to run from several processes at once).")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await runCommand {
            let config = try global.configuration()
            let logger = LoggingSetup.bootstrap(config)
            let store = try Store.make(config: config, logger: logger)
            do {
                let applied = try await store.migrator.migrate(pool: store.pool, logger: logger)
                await store.pool.close()
                print(applied.isEmpty ? "database is up to date" : "applied \(applied.count) migration(s): \(applied.joined(separator: ", "))")
            } catch {
                await store.pool.close()
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
            let store = try await openStore(config: config, logger: logger, migrate: startup.migrate)
            let app = try buildApplication(config: config, store: store, services: store.services + metricsServices(config, store, logger),
                                           logger: logger) { [host = config.host] port in
                logger.info("serving", metadata: ["host": "\(host)", "port": "\(port)"])
            }
            try await runServices([app], logger: logger)
        }
    }
}

/// The separate /metrics server when METRICS_PORT is set.
func metricsServices(_ config: Configuration, _ store: Store, _ logger: Logger) -> [any Service] {
    guard config.metricsEnabled, config.metricsPort != nil else { return [] }
    return [buildMetricsApplication(config: config, store: store, logger: logger)]
}

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run background work: partitions and retention, rule evaluation, notification delivery.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var startup: StartupOptions

    func run() async throws {
        try await runCommand {
            let config = try global.configuration()
            let logger = LoggingSetup.bootstrap(config)
            let store = try await openStore(config: config, logger: logger, migrate: startup.migrate)
            let services: [any Service] = store.services + (try await workerServices(config: config, store: store, logger: logger))
                + metricsServices(config, store, logger)
            try await runServices(services, logger: logger)
        }
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve and work in one process: the single-machine default.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var server: ServerOptions
    @OptionGroup var startup: StartupOptions

    func run() async throws {
        try await runCommand {
            var config = try global.configuration()
            try server.apply(to: &config)
            let logger = LoggingSetup.bootstrap(config)
            let store = try await openStore(config: config, logger: logger, migrate: startup.migrate)
            let services: [any Service] = store.services + (try await workerServices(config: config, store: store, logger: logger))
                + metricsServices(config, store, logger)
            let app = try buildApplication(config: config, store: store, services: services, logger: logger) { [host = config.host] port in
                logger.info("serving", metadata: ["host": "\(host)", "port": "\(port)"])
            }
            try await runServices([app], logger: logger)
        }
    }
}
