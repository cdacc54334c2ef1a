import Foundation
import Hummingbird
import HTTPTypes
import Logging
import ServiceLifecycle
import TocsinCore
import TocsinEngine
import TocsinStore

/// What the HTTP application needs from the composition root.
public struct APIDependencies: Sendable {
    public var store: Store
    /// The process's one stream of database events (it must carry `topics`).
    public var events: DatabaseEvents
    /// Runs a check request here when no worker answers it.
    public var checks: CheckRunner
    public var backtests: BacktestRunner

    public init(store: Store, events: DatabaseEvents, checks: CheckRunner, backtests: BacktestRunner) {
        self.store = store
        self.events = events
        self.checks = checks
        self.backtests = backtests
    }

    /// The database events the API needs.
    public static let topics: Set<DatabaseEvents.Topic> = [.alerts, .checks]
}

/// Builds the HTTP application: `tocsin serve`/`run` and the tests all go
/// through here.
///
/// - Parameters:
///   - services: more services to run beside the server (the pools, the
///     database events, workers in `tocsin run`). They shut down after the
///     server has drained, in reverse order.
///   - onServerRunning: called with the bound port (useful with port 0).
public func buildApplication(
    config: Configuration,
    dependencies: APIDependencies,
    services: [any Service] = [],
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let assets = try DashboardAssets.load()
    let hub = AlertStreamHub(store: dependencies.store, events: dependencies.events,
                             limits: .init(perProcess: config.maxStreams, perKey: config.maxStreamsPerKey), logger: logger)
    let router = buildRouter(config: config, dependencies: dependencies, assets: assets, hub: hub, logger: logger)
    return Application(
        router: router,
        configuration: .init(address: .hostname(config.host, port: config.port), serverName: "tocsin"),
        services: services + [hub],
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? config.port)
        },
        logger: logger
    )
}

func buildRouter(
    config: Configuration, dependencies: APIDependencies, assets: DashboardAssets, hub: AlertStreamHub,
    logger: Logger = Logger(label: "tocsin")
) -> Router<TocsinRequestContext> {
    let store = dependencies.store
    let router = Router(context: TocsinRequestContext.self)
    // Order matters: middleware added before routes wraps them and the
    // not-found responder.
    if let path = config.contractLogPath { router.add(middleware: ContractRecorder(path: path)) }
    router.add(middleware: RequestIDMiddleware(bodyLimit: config.maxBodyBytes))
    router.add(middleware: SecurityHeadersMiddleware(https: config.publicURL?.lowercased().hasPrefix("https://") == true))
    router.add(middleware: AccessLogMiddleware(quiet: config.quietAccessLog))
    let routeTable = RouteTable()
    router.add(middleware: ErrorMiddleware(routes: routeTable))
    router.add(middleware: BodyLimitMiddleware(limit: config.maxBodyBytes))
    router.add(middleware: ReadStalenessMiddleware())
    if config.metricsEnabled {
        router.add(middleware: HTTPMetricsMiddleware())
        if config.metricsPort == nil {
            PrometheusEndpoint(store: store, logger: logger).register(on: router)
        }
    }

    HealthRoutes(store: store).register(on: router)
    DashboardRoutes(store: store, config: config, assets: assets,
                    signInLimit: SignInLimiter(trustedProxies: Set(config.trustedProxies))).register(on: router)

    let limiter = KeyRateLimiter(limits: config.rateLimits, instances: config.rateLimitInstances)
    let api = router.group("api").add(middleware: AuthMiddleware(keys: store.apiKeys, sessions: store.sessions,
                                                                  rateLimiter: limiter))
    let ingest = api.group(context: IngestContext.self)
    let read = api.group(context: ReadContext.self)
    let admin = api.group(context: AdminContext.self)
    api.group(context: AuthenticatedContext.self).get("whoami") { _, context -> Response in
        struct WhoAmI: Encodable {
            var name: String
            var scopes: [Scope]
        }
        return try APIJSON.response(WhoAmI(name: context.identity.name, scopes: context.identity.scopes))
    }
    IngestRoutes(store: store, config: config).register(on: ingest)
    MetricReadRoutes(store: store, summaries: SummaryCache(ttl: .milliseconds(config.summaryCacheMilliseconds)))
        .register(on: read)
    AlertRoutes(store: store).register(read: read, admin: admin)
    RuleRoutes(store: store, config: config, backtests: dependencies.backtests).register(on: read)
    WorkerRoutes(store: store, config: config, fallback: dependencies.checks, events: dependencies.events)
        .register(read: read, admin: admin)
    NotificationRoutes(store: store).register(read: read, admin: admin)
    SilenceRoutes(store: store).register(read: read, admin: admin)
    StreamRoutes(hub: hub).register(on: read)

    // The Alertmanager v2 API: its errors are JSON strings, its clients
    // (Prometheus, Grafana, amtool) authenticate with Bearer keys.
    let v2 = router.group("api/v2")
        .add(middleware: AlertmanagerErrorMiddleware())
        .add(middleware: AuthMiddleware(keys: store.apiKeys, sessions: store.sessions, rateLimiter: limiter,
                                        unauthenticatedAlertAddresses: Set(config.unauthenticatedAlertAddresses)))
    AlertmanagerRoutes(store: store, config: config, startedAt: Date())
        .register(alerts: v2.group(context: AlertsContext.self), read: v2.group(context: ReadContext.self),
                  admin: v2.group(context: AdminContext.self))
    routeTable.load(router.routes.map { ("\($0.path)", $0.method.rawValue) })
    return router
}
