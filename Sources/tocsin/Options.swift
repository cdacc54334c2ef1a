import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import TocsinAPI
import TocsinCore

/// Options every database command takes. Each overrides its environment
/// variable.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: ArgumentHelp(
        "PostgreSQL connection string, libpq URI or key=value (env DATABASE_URL).", valueName: "url"))
    var databaseURL: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp(
        "trace, debug, info, notice, warning, error or critical (env LOG_LEVEL, default info).", valueName: "level"))
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: ArgumentHelp(
        "json or text (env LOG_FORMAT, default json).", valueName: "format"))
    var logFormat: String?

    @Option(name: .customLong("pool-size"), help: ArgumentHelp(
        "Maximum database connections of this process (env DB_POOL_SIZE, default 10).", valueName: "n"))
    var poolSize: Int?

    /// The environment read, then flags applied on top.
    func configuration() throws -> Configuration {
        var config = try Configuration.fromEnvironment(ProcessInfo.processInfo.environment)
        if let databaseURL { config.databaseURL = databaseURL }
        if let logLevel { config.logLevel = try Configuration.parseLogLevel(logLevel, name: "--log-level") }
        if let logFormat { config.logFormat = try Configuration.parseLogFormat(logFormat, name: "--log-format") }
        if let poolSize {
            config.databasePoolSize = try Configuration.parseInt(String(poolSize), name: "--pool-size", range: 1...1000)
        }
        return config
    }
}

/// Options of the commands that serve HTTP.
struct ServerOptions: ParsableArguments {
    @Option(name: .customLong("host"), help: ArgumentHelp("Address to bind (env HOST, default 127.0.0.1).", valueName: "address"))
    var host: String?

    @Option(name: .customLong("port"), help: ArgumentHelp("Port to bind (env PORT, default 8080).", valueName: "port"))
    var port: Int?

    @Option(name: .customLong("max-body-size"), help: ArgumentHelp(
        "Largest request body in bytes; larger gets 413 (env MAX_BODY_SIZE, default 10485760).", valueName: "bytes"))
    var maxBodySize: Int?

    func apply(to config: inout Configuration) throws {
        if let host { config.host = host }
        if let port { config.port = try Configuration.parseInt(String(port), name: "--port", range: 0...65535) }
        if let maxBodySize {
            config.maxBodyBytes = try Configuration.parseInt(String(maxBodySize), name: "--max-body-size", range: 1024...(1 << 30))
        }
    }
}

/// `--migrate` for the long-running commands.
struct StartupOptions: ParsableArguments {
    @Flag(name: .customLong("migrate"), help: "Apply pending migrations before starting instead of refusing to start.")
    var migrate = false
}

enum LoggingSetup {
    /// Bootstraps swift-log (and swift-metrics, for /metrics) once per process.
    static func bootstrap(_ config: Configuration) -> Logger {
        if config.metricsEnabled {
            MetricsSystem.bootstrap(TocsinMetricsFactory())
        }
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        let format = config.logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .json: return JSONLogHandler(label: label, level: level)
            case .text: return TextLogHandler(label: label, level: level)
            }
        }
        return Logger(label: "tocsin")
    }
}
