import Foundation

/// Every setting of a Tocsin process. Read from environment variables
/// (`Configuration.variables` lists them with their defaults); the CLI lets
/// flags override them.
public struct Configuration: Sendable, Equatable {
    public enum LogFormat: String, Sendable, CaseIterable { case json, text }

    public var databaseURL: String?
    public var host: String = "127.0.0.1"
    public var port: Int = 8080
    public var logLevel: String = "info"
    public var logFormat: LogFormat = .json
    public var databasePoolSize: Int = 10
    public var maxBodyBytes: Int = 10 * 1024 * 1024
    /// Where the migration files are; found beside the binary when nil.
    public var migrationsDirectory: String?
    public var metricsRetentionDays: Int = 30
    /// The rules file; `rules/default.yaml` beside the binary when nil.
    public var alertRulesFile: String?
    public var alertCheckIntervalSeconds: Int = 60
    /// Concurrent rule evaluations per worker.
    public var workerConcurrency: Int = 4
    /// Test-only pause inside each evaluation transaction, in milliseconds.
    public var testEvaluationPauseMs: Int?
    public var notifyConfigFile: String?
    public var slackWebhookURL: String?
    /// The dashboard's public address, for links in notifications.
    public var publicURL: String?
    public var notifyMaxAttempts: Int = 8
    public var notifyRetryBaseSeconds: Double = 2
    public var notifyLeaseSeconds: Double = 60
    public var notifyConcurrency: Int = 8
    /// Test-only pause between claiming a notification and sending it.
    public var testDispatchPauseMs: Int?
    public var sessionTTLSeconds: Int = 12 * 3600
    public var metricsEnabled = true
    /// Serve /metrics on this port instead of the main one (workers need it
    /// to expose their metrics at all).
    public var metricsPort: Int?
    /// A separate connection string for LISTEN (a session-mode pool or
    /// PostgreSQL directly) when DATABASE_URL goes through a
    /// transaction-pooling PgBouncer.
    public var listenDatabaseURL: String?

    public init() {}

    /// A documented environment variable.
    public struct Variable: Sendable {
        public var name: String
        public var defaultValue: String
        public var summary: String
    }

    /// The environment variables, in the order the README lists them.
    public static let variables: [Variable] = [
        Variable(name: "DATABASE_URL", defaultValue: "(none, required)",
                 summary: "PostgreSQL connection: libpq URI (postgresql://user@host:5432/db?sslmode=require) or key=value string"),
        Variable(name: "HOST", defaultValue: "127.0.0.1", summary: "Address the HTTP server binds"),
        Variable(name: "PORT", defaultValue: "8080", summary: "Port the HTTP server binds"),
        Variable(name: "LOG_LEVEL", defaultValue: "info", summary: "trace, debug, info, notice, warning, error or critical"),
        Variable(name: "LOG_FORMAT", defaultValue: "json", summary: "json (one JSON object per line) or text"),
        Variable(name: "DB_POOL_SIZE", defaultValue: "10", summary: "Maximum PostgreSQL connections per process"),
        Variable(name: "MAX_BODY_SIZE", defaultValue: "10485760", summary: "Largest accepted request body in bytes; larger requests get 413"),
        Variable(name: "METRICS_RETENTION_DAYS", defaultValue: "30",
                 summary: "Days of metric events kept; older daily partitions are dropped and older events refused"),
        Variable(name: "ALERT_RULES_FILE", defaultValue: "rules/default.yaml",
                 summary: "Alert rules (YAML) loaded into the database when a worker starts"),
        Variable(name: "ALERT_CHECK_INTERVAL", defaultValue: "60",
                 summary: "Default evaluation interval of a rule, in seconds (a rule's interval field overrides it)"),
        Variable(name: "WORKER_CONCURRENCY", defaultValue: "4", summary: "Rules a worker evaluates at the same time"),
        Variable(name: "SLACK_WEBHOOK_URL", defaultValue: "(none)",
                 summary: "Slack incoming webhook; alone (without NOTIFY_CONFIG) it receives every alert"),
        Variable(name: "NOTIFY_CONFIG", defaultValue: "(none)",
                 summary: "Notification channels and routes (YAML): slack, webhook, pagerduty, email"),
        Variable(name: "PUBLIC_URL", defaultValue: "(none)",
                 summary: "Public address of the dashboard, for links in notifications; https makes session cookies Secure"),
        Variable(name: "NOTIFY_MAX_ATTEMPTS", defaultValue: "8", summary: "Delivery attempts before a notification is dead"),
        Variable(name: "NOTIFY_RETRY_BASE_SECONDS", defaultValue: "2",
                 summary: "First retry delay; doubles per attempt (with jitter), at most 10 minutes"),
        Variable(name: "NOTIFY_LEASE_SECONDS", defaultValue: "60",
                 summary: "How long a dispatcher owns a claimed notification before another may take it"),
        Variable(name: "NOTIFY_CONCURRENCY", defaultValue: "8", summary: "Notifications a worker sends at the same time"),
        Variable(name: "SESSION_TTL", defaultValue: "12h", summary: "How long a dashboard sign-in lasts (30m, 12h, 7d, …)"),
        Variable(name: "LISTEN_DATABASE_URL", defaultValue: "DATABASE_URL",
                 summary: "Connection for LISTEN/NOTIFY; set it when DATABASE_URL points at a transaction-pooling PgBouncer"),
        Variable(name: "METRICS_ENABLED", defaultValue: "true", summary: "false turns off GET /metrics (Prometheus text format)"),
        Variable(name: "METRICS_PORT", defaultValue: "(the main port)",
                 summary: "Serve /metrics on this port instead; the only way a `tocsin worker` exposes its metrics"),
        Variable(name: "MIGRATIONS_DIR", defaultValue: "(found beside the binary)", summary: "Directory of the NNNN_name.sql migration files"),
    ]

    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Reads the environment. Unset or empty variables keep their defaults;
    /// a malformed value is an error that names the variable.
    public static func fromEnvironment(_ environment: [String: String]) throws -> Configuration {
        var config = Configuration()
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
            return raw
        }
        config.databaseURL = value("DATABASE_URL")
        if let host = value("HOST") { config.host = host }
        if let port = value("PORT") { config.port = try parseInt(port, name: "PORT", range: 0...65535) }
        if let level = value("LOG_LEVEL") { config.logLevel = try parseLogLevel(level, name: "LOG_LEVEL") }
        if let format = value("LOG_FORMAT") { config.logFormat = try parseLogFormat(format, name: "LOG_FORMAT") }
        if let size = value("DB_POOL_SIZE") { config.databasePoolSize = try parseInt(size, name: "DB_POOL_SIZE", range: 1...1000) }
        if let body = value("MAX_BODY_SIZE") { config.maxBodyBytes = try parseInt(body, name: "MAX_BODY_SIZE", range: 1024...(1 << 30)) }
        config.migrationsDirectory = value("MIGRATIONS_DIR")
        config.alertRulesFile = value("ALERT_RULES_FILE")
        if let interval = value("ALERT_CHECK_INTERVAL") {
            config.alertCheckIntervalSeconds = try parseInt(interval, name: "ALERT_CHECK_INTERVAL", range: 1...86_400)
        }
        if let concurrency = value("WORKER_CONCURRENCY") {
            config.workerConcurrency = try parseInt(concurrency, name: "WORKER_CONCURRENCY", range: 1...256)
        }
        if let pause = value("TOCSIN_TEST_EVALUATION_PAUSE_MS") {
            config.testEvaluationPauseMs = try parseInt(pause, name: "TOCSIN_TEST_EVALUATION_PAUSE_MS", range: 0...600_000)
        }
        config.notifyConfigFile = value("NOTIFY_CONFIG")
        config.slackWebhookURL = value("SLACK_WEBHOOK_URL")
        config.publicURL = value("PUBLIC_URL")
        if let attempts = value("NOTIFY_MAX_ATTEMPTS") {
            config.notifyMaxAttempts = try parseInt(attempts, name: "NOTIFY_MAX_ATTEMPTS", range: 1...100)
        }
        if let base = value("NOTIFY_RETRY_BASE_SECONDS") {
            guard let seconds = Double(base), seconds > 0, seconds <= 3600 else {
                throw Error("NOTIFY_RETRY_BASE_SECONDS must be a number of seconds from 0 to 3600, got '\(base)'")
            }
            config.notifyRetryBaseSeconds = seconds
        }
        if let lease = value("NOTIFY_LEASE_SECONDS") {
            config.notifyLeaseSeconds = Double(try parseInt(lease, name: "NOTIFY_LEASE_SECONDS", range: 1...3600))
        }
        if let concurrency = value("NOTIFY_CONCURRENCY") {
            config.notifyConcurrency = try parseInt(concurrency, name: "NOTIFY_CONCURRENCY", range: 1...256)
        }
        if let pause = value("TOCSIN_TEST_DISPATCH_PAUSE_MS") {
            config.testDispatchPauseMs = try parseInt(pause, name: "TOCSIN_TEST_DISPATCH_PAUSE_MS", range: 0...600_000)
        }
        if let enabled = value("METRICS_ENABLED") {
            switch enabled.lowercased() {
            case "true", "1", "yes": config.metricsEnabled = true
            case "false", "0", "no": config.metricsEnabled = false
            default: throw Error("METRICS_ENABLED must be true or false, got '\(enabled)'")
            }
        }
        if let port = value("METRICS_PORT") { config.metricsPort = try parseInt(port, name: "METRICS_PORT", range: 0...65535) }
        config.listenDatabaseURL = value("LISTEN_DATABASE_URL")
        if let ttl = value("SESSION_TTL") {
            guard let seconds = DurationText.parse(ttl), seconds >= 60, seconds <= 30 * 86_400 else {
                throw Error("SESSION_TTL must be a duration from 1m to 30d such as 12h, got '\(ttl)'")
            }
            config.sessionTTLSeconds = seconds
        }
        if let days = value("METRICS_RETENTION_DAYS") {
            config.metricsRetentionDays = try parseInt(days, name: "METRICS_RETENTION_DAYS", range: 1...3650)
        }
        return config
    }

    public static func parseInt(_ text: String, name: String, range: ClosedRange<Int>) throws -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw Error("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return value
    }

    public static func parseLogLevel(_ text: String, name: String) throws -> String {
        let lowered = text.lowercased()
        guard logLevels.contains(lowered) else {
            throw Error("\(name) must be one of \(logLevels.joined(separator: ", ")), got '\(text)'")
        }
        return lowered
    }

    public static func parseLogFormat(_ text: String, name: String) throws -> LogFormat {
        guard let format = LogFormat(rawValue: text.lowercased()) else {
            throw Error("\(name) must be json or text, got '\(text)'")
        }
        return format
    }

    /// The connection LISTEN uses: LISTEN_DATABASE_URL, else DATABASE_URL.
    public func requireListenURL() throws -> String {
        try listenDatabaseURL ?? requireDatabaseURL()
    }

    /// The database URL, or an error that says how to provide one.
    public func requireDatabaseURL() throws -> String {
        guard let databaseURL else {
            throw Error("DATABASE_URL is not set: export DATABASE_URL=postgresql://user@host:5432/db or pass --database-url")
        }
        return databaseURL
    }
}
