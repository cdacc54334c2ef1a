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
    /// What the worker's maintenance keeps of everything else.
    public var retention = Retention()
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
    /// How long one delivery may take in all (connect 5 s at most).
    public var notifyTimeoutSeconds: Int = 15
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
    /// Standbys for request-path reads; the primary when nil.
    public var databaseReadURL: String?
    public var readPoolSize: Int = 5
    /// How long a request-path read may run before it is cancelled.
    public var readTimeoutSeconds: Int = 5
    /// How long a metrics summary is reused by this process (0 = never).
    public var summaryCacheMilliseconds: Int = 1000
    /// Prepare statements once per connection (off behind a pooler that
    /// cannot keep them: PgBouncer before 1.21 in transaction mode).
    public var preparedStatements = true
    /// Requests per second per API key and scope (0: unlimited), for the
    /// whole deployment.
    public var rateLimits: [Scope: Double] = [.ingest: 100, .read: 50, .alerts: 50, .admin: 20]
    /// The `tocsin serve` processes sharing the rate limits.
    public var rateLimitInstances: Int = 1
    /// Peers whose X-Forwarded-For names the client (the load balancer).
    public var trustedProxies: [String] = ["127.0.0.1", "::1"]
    /// Live dashboard streams per process and per API key.
    public var maxStreams: Int = 500
    public var maxStreamsPerKey: Int = 10
    /// Only requests that did not succeed are logged (`ACCESS_LOG=errors`).
    public var quietAccessLog = false
    /// An external alert nobody re-posted (and posted without endsAt)
    /// resolves this long after it was last received (Alertmanager's
    /// `resolve_timeout`).
    public var externalResolveTimeoutSeconds: Int = 300
    /// For this long after its sender resolved an external alert, a firing
    /// post of the episode that ended (started before that end) opens
    /// nothing: the late word of the other server of an HA pair. After it,
    /// such a post re-opens the alert — the other server still sees the
    /// problem. 0 turns the check off.
    public var externalReopenGraceSeconds: Int = 30
    /// Local addresses of this server on which `POST /api/v2/alerts` needs
    /// no API key (closed networks); empty: a key is always needed.
    public var unauthenticatedAlertAddresses: [String] = []
    /// Test-only: every HTTP exchange is recorded to this file.
    public var contractLogPath: String?

    public init() {}

    /// Days kept of the tables that would otherwise grow forever.
    public struct Retention: Sendable, Equatable {
        /// Resolved alerts, with their transitions and notifications.
        public var alertDays = 400
        /// Notifications sent, dead or dropped (pending ones are never deleted).
        public var notificationDays = 30
        /// The rule evaluation log (daily partitions).
        public var evaluationDays = 30
        public init() {}
    }

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
        Variable(name: "ALERT_RETENTION_DAYS", defaultValue: "400",
                 summary: "Days resolved alerts are kept, with their history and notifications (open alerts are always kept)"),
        Variable(name: "NOTIFICATION_RETENTION_DAYS", defaultValue: "30",
                 summary: "Days sent, dead and dropped notifications are kept (pending ones are always kept)"),
        Variable(name: "EVALUATION_RETENTION_DAYS", defaultValue: "30", summary: "Days of the rule evaluation log kept"),
        Variable(name: "ALERT_RULES_FILE", defaultValue: "rules/default.yaml",
                 summary: "Alert rules (YAML) that `tocsin run` applies at start; elsewhere use `tocsin rules apply FILE`"),
        Variable(name: "ALERT_CHECK_INTERVAL", defaultValue: "60",
                 summary: "Evaluation interval of rules that name none, in seconds, when rules are applied; workers' heartbeat"),
        Variable(name: "WORKER_CONCURRENCY", defaultValue: "4", summary: "Rules a worker evaluates at the same time"),
        Variable(name: "SLACK_WEBHOOK_URL", defaultValue: "(none)",
                 summary: "Slack incoming webhook; with `tocsin run` alone (without NOTIFY_CONFIG) it receives every alert"),
        Variable(name: "NOTIFY_CONFIG", defaultValue: "(none)",
                 summary: "Notification channels and routes (YAML) that `tocsin run` applies at start; elsewhere `tocsin notify apply FILE`"),
        Variable(name: "PUBLIC_URL", defaultValue: "(none)",
                 summary: "Public address of the dashboard, for links in notifications; https makes session cookies Secure"),
        Variable(name: "NOTIFY_MAX_ATTEMPTS", defaultValue: "8", summary: "Delivery attempts before a notification is dead"),
        Variable(name: "NOTIFY_RETRY_BASE_SECONDS", defaultValue: "2",
                 summary: "First retry delay; doubles per attempt (with jitter), at most 10 minutes"),
        Variable(name: "NOTIFY_LEASE_SECONDS", defaultValue: "60",
                 summary: "How long a dispatcher owns a claimed notification before another may take it (at least NOTIFY_TIMEOUT_SECONDS + 10)"),
        Variable(name: "NOTIFY_CONCURRENCY", defaultValue: "8", summary: "Notifications a worker sends at the same time"),
        Variable(name: "NOTIFY_TIMEOUT_SECONDS", defaultValue: "15",
                 summary: "How long one delivery may take; NOTIFY_LEASE_SECONDS must exceed it by 10 s"),
        Variable(name: "SESSION_TTL", defaultValue: "12h", summary: "How long a dashboard sign-in lasts (30m, 12h, 7d, …)"),
        Variable(name: "LISTEN_DATABASE_URL", defaultValue: "DATABASE_URL",
                 summary: "Connection for LISTEN/NOTIFY; set it when DATABASE_URL points at a transaction-pooling PgBouncer"),
        Variable(name: "METRICS_ENABLED", defaultValue: "true", summary: "false turns off GET /metrics (Prometheus text format)"),
        Variable(name: "METRICS_PORT", defaultValue: "(the main port)",
                 summary: "Serve /metrics on this port instead; the only way a `tocsin worker` exposes its metrics"),
        Variable(name: "MIGRATIONS_DIR", defaultValue: "(found beside the binary)", summary: "Directory of the NNNN_name.sql migration files"),
        Variable(name: "DATABASE_READ_URL", defaultValue: "DATABASE_URL",
                 summary: "Standbys for dashboard and report reads (e.g. target_session_attrs=prefer-standby); the primary when unset or unreachable"),
        Variable(name: "DB_READ_POOL_SIZE", defaultValue: "5",
                 summary: "Connections per process for request-path reads, apart from those of writes and evaluation"),
        Variable(name: "DB_PREPARED_STATEMENTS", defaultValue: "true",
                 summary: "Prepare each statement once per connection; false behind PgBouncer older than 1.21 (or without max_prepared_statements) in transaction mode"),
        Variable(name: "READ_TIMEOUT", defaultValue: "5s", summary: "How long a request-path read may run before it is cancelled (1s to 5m)"),
        Variable(name: "SUMMARY_CACHE_MS", defaultValue: "1000",
                 summary: "How long, in milliseconds (0 to 1000), a process reuses a metrics summary it computed; 0 = never (alert state is never cached)"),
        Variable(name: "RATE_LIMITS", defaultValue: "ingest=100,read=50,alerts=50,admin=20",
                 summary: "Requests per second per API key and scope across the deployment (0 = unlimited); 429 with Retry-After beyond"),
        Variable(name: "RATE_LIMIT_INSTANCES", defaultValue: "1",
                 summary: "How many tocsin serve processes share those limits (each enforces its share)"),
        Variable(name: "TRUSTED_PROXIES", defaultValue: "127.0.0.1,::1",
                 summary: "Addresses whose X-Forwarded-For is believed (the load balancer), for sign-in limits per client"),
        Variable(name: "STREAM_MAX", defaultValue: "500", summary: "Live dashboard streams per process (503 beyond)"),
        Variable(name: "STREAM_MAX_PER_KEY", defaultValue: "10", summary: "Live dashboard streams per API key and process (429 beyond)"),
        Variable(name: "ACCESS_LOG", defaultValue: "all", summary: "all (one line per request) or errors (only requests that did not succeed)"),
        Variable(name: "EXTERNAL_RESOLVE_TIMEOUT", defaultValue: "5m",
                 summary: "An alert posted to /api/v2/alerts without endsAt resolves when not re-posted for this long (1s to 1d; Alertmanager's resolve_timeout)"),
        Variable(name: "EXTERNAL_REOPEN_GRACE", defaultValue: "30s",
                 summary: "For this long after an external alert's sender resolved it, firing posts of the ended episode (an HA pair's late word) open nothing (0s to 10m; 0s: off)"),
        Variable(name: "ALERTS_UNAUTHENTICATED_ADDRESSES", defaultValue: "(none)",
                 summary: "Local addresses of this server (e.g. 10.0.0.5,127.0.0.1) on which POST /api/v2/alerts needs no API key: closed networks only"),
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
        if let timeout = value("NOTIFY_TIMEOUT_SECONDS") {
            config.notifyTimeoutSeconds = try parseInt(timeout, name: "NOTIFY_TIMEOUT_SECONDS", range: 1...120)
        }
        if let concurrency = value("NOTIFY_CONCURRENCY") {
            config.notifyConcurrency = try parseInt(concurrency, name: "NOTIFY_CONCURRENCY", range: 1...256)
        }
        if let pause = value("TOCSIN_TEST_DISPATCH_PAUSE_MS") {
            config.testDispatchPauseMs = try parseInt(pause, name: "TOCSIN_TEST_DISPATCH_PAUSE_MS", range: 0...600_000)
        }
        if let enabled = value("METRICS_ENABLED") { config.metricsEnabled = try parseBool(enabled, name: "METRICS_ENABLED") }
        if let port = value("METRICS_PORT") { config.metricsPort = try parseInt(port, name: "METRICS_PORT", range: 0...65535) }
        config.listenDatabaseURL = value("LISTEN_DATABASE_URL")
        if let ttl = value("SESSION_TTL") {
            guard let seconds = DurationText.parse(ttl), seconds >= 60, seconds <= 30 * 86_400 else {
                throw Error("SESSION_TTL must be a duration from 1m to 30d such as 12h, got '\(ttl)'")
            }
            config.sessionTTLSeconds = seconds
        }
        try readServingSettings(value, into: &config)
        if let days = value("METRICS_RETENTION_DAYS") {
            config.metricsRetentionDays = try parseInt(days, name: "METRICS_RETENTION_DAYS", range: 1...3650)
        }
        if let days = value("ALERT_RETENTION_DAYS") {
            config.retention.alertDays = try parseInt(days, name: "ALERT_RETENTION_DAYS", range: 1...36_500)
        }
        if let days = value("NOTIFICATION_RETENTION_DAYS") {
            config.retention.notificationDays = try parseInt(days, name: "NOTIFICATION_RETENTION_DAYS", range: 1...36_500)
        }
        if let days = value("EVALUATION_RETENTION_DAYS") {
            config.retention.evaluationDays = try parseInt(days, name: "EVALUATION_RETENTION_DAYS", range: 1...3650)
        }
        return config
    }

    /// The settings of reads, limits and streams.
    static func readServingSettings(_ value: (String) -> String?, into config: inout Configuration) throws {
        config.databaseReadURL = value("DATABASE_READ_URL")
        if let prepared = value("DB_PREPARED_STATEMENTS") {
            config.preparedStatements = try parseBool(prepared, name: "DB_PREPARED_STATEMENTS")
        }
        if let size = value("DB_READ_POOL_SIZE") { config.readPoolSize = try parseInt(size, name: "DB_READ_POOL_SIZE", range: 1...1000) }
        if let timeout = value("READ_TIMEOUT") {
            guard let seconds = DurationText.parse(timeout), (1...300).contains(seconds) else {
                throw Error("READ_TIMEOUT must be a duration from 1s to 5m such as 5s, got '\(timeout)'")
            }
            config.readTimeoutSeconds = seconds
        }
        if let ms = value("SUMMARY_CACHE_MS") {
            config.summaryCacheMilliseconds = try parseInt(ms, name: "SUMMARY_CACHE_MS", range: 0...1000)
        }
        if let limits = value("RATE_LIMITS") { config.rateLimits = try parseRateLimits(limits) }
        if let instances = value("RATE_LIMIT_INSTANCES") {
            config.rateLimitInstances = try parseInt(instances, name: "RATE_LIMIT_INSTANCES", range: 1...1000)
        }
        if let proxies = value("TRUSTED_PROXIES") {
            config.trustedProxies = proxies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let max = value("STREAM_MAX") { config.maxStreams = try parseInt(max, name: "STREAM_MAX", range: 1...100_000) }
        if let max = value("STREAM_MAX_PER_KEY") {
            config.maxStreamsPerKey = try parseInt(max, name: "STREAM_MAX_PER_KEY", range: 1...10_000)
        }
        if let log = value("ACCESS_LOG") {
            switch log {
            case "all": config.quietAccessLog = false
            case "errors": config.quietAccessLog = true
            default: throw Error("ACCESS_LOG must be all or errors, got '\(log)'")
            }
        }
        config.contractLogPath = value("TOCSIN_CONTRACT_LOG")
        if let timeout = value("EXTERNAL_RESOLVE_TIMEOUT") {
            guard let seconds = DurationText.parse(timeout), (1...86_400).contains(seconds) else {
                throw Error("EXTERNAL_RESOLVE_TIMEOUT must be a duration from 1s to 1d such as 5m, got '\(timeout)'")
            }
            config.externalResolveTimeoutSeconds = seconds
        }
        if let grace = value("EXTERNAL_REOPEN_GRACE") {
            guard let seconds = DurationText.parse(grace), (0...600).contains(seconds) else {
                throw Error("EXTERNAL_REOPEN_GRACE must be a duration from 0s to 10m such as 30s, got '\(grace)'")
            }
            config.externalReopenGraceSeconds = seconds
        }
        if let addresses = value("ALERTS_UNAUTHENTICATED_ADDRESSES") {
            config.unauthenticatedAlertAddresses = addresses.split(separator: ",")
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    /// `ingest=100,read=50,admin=20`: scopes not named keep their default.
    public static func parseRateLimits(_ text: String) throws -> [Scope: Double] {
        var limits = Configuration().rateLimits
        for part in text.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, let scope = Scope(rawValue: pair[0]), let rate = Double(pair[1]), rate.isFinite,
                  (0...1_000_000).contains(rate)
            else {
                throw Error("RATE_LIMITS must look like ingest=100,read=50,alerts=50,admin=20 (requests per second, 0 = unlimited), got '\(text)'")
            }
            limits[scope] = rate
        }
        return limits
    }

    public static func parseBool(_ text: String, name: String) throws -> Bool {
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw Error("\(name) must be true or false, got '\(text)'")
        }
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
