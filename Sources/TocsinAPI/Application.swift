import Foundation
import HTTPTypes
import NIOCore
import PostgresClient
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import TocsinCore
import TocsinStore

/// Builds the HTTP application. `tocsin serve`/`run` and the tests all go
/// through here.
///
/// - Parameters:
///   - config: the process configuration.
///   - store: the database side; when nil one is made from `config` and its
///     pool is run (and closed last) by the application.
///   - services: more services to run beside the server (workers in
///     `tocsin run`). They shut down after the server has drained, in
///     reverse order.
///   - onServerRunning: called with the bound port (useful with port 0).
public func buildApplication(
    config: Configuration,
    store: Store? = nil,
    services: [any Service] = [],
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    var services = services
    let store = try store ?? {
        let made = try Store.make(config: config, logger: logger)
        services.insert(contentsOf: made.services, at: 0)
        return made
    }()
    let notify = try NotifyConfig.load(config: config, environment: ProcessInfo.processInfo.environment)
    let assets = try DashboardAssets.load()
    // One LISTEN connection per API process feeds every live dashboard.
    let listener = PostgresListener(conninfo: try config.requireListenURL(), channels: [AlertStore.alertsChannel],
                                    logger: logger)
    services.append(listener)
    let router = buildRouter(config: config, store: store, notify: notify, assets: assets, listener: listener, logger: logger)
    return Application(
        router: router,
        configuration: .init(
            address: .hostname(config.host, port: config.port),
            serverName: "tocsin"
        ),
        services: services,
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? config.port)
        },
        logger: logger
    )
}

func buildRouter(
    config: Configuration, store: Store, notify: NotifyConfig, assets: DashboardAssets, listener: PostgresListener,
    logger: Logger = Logger(label: "tocsin")
) -> Router<TocsinRequestContext> {
    let router = Router(context: TocsinRequestContext.self)
    // Order matters: middleware added before routes wraps them and the
    // not-found responder.
    router.add(middleware: RequestIDMiddleware(bodyLimit: config.maxBodyBytes))
    router.add(middleware: AccessLogMiddleware())
    let routeTable = RouteTable()
    router.add(middleware: ErrorMiddleware(routes: routeTable))
    router.add(middleware: BodyLimitMiddleware(limit: config.maxBodyBytes))
    if config.metricsEnabled {
        router.add(middleware: MetricsMiddleware())
        if config.metricsPort == nil {
            PrometheusEndpoint(store: store, logger: logger).register(on: router)
        }
    }

    HealthRoutes(store: store).register(on: router)
    DashboardRoutes(store: store, config: config, assets: assets).register(on: router)

    let api = router.group("api").add(middleware: AuthMiddleware(keys: store.apiKeys, sessions: store.sessions))
    api.get("whoami") { _, context -> Response in
        let identity = try context.requireIdentity()
        struct WhoAmI: Encodable {
            var name: String
            var scopes: [String]
        }
        return try APIJSON.response(WhoAmI(name: identity.name, scopes: identity.scopes.map(\.rawValue)))
    }
    MetricsRoutes(store: store, config: config).register(on: api)
    let hooks = TransitionHooks(outbox: NotificationStore.outboxHook(config: notify))
    AlertRoutes(store: store, config: config, hooks: hooks,
                fallbackEvaluator: RuleEvaluator(pool: store.pool, workerID: "api-" + WorkerStore.makeID(), hooks: hooks))
        .register(on: api)
    NotificationRoutes(store: store, notify: notify).register(on: api)
    StreamRoutes(store: store, listener: listener).register(on: api)
    routeTable.load(router.routes.map { ("\($0.path)", $0.method.rawValue) })
    return router
}
