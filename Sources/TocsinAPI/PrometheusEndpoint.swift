import Foundation
import Hummingbird
import Logging
import NIOCore
import Prometheus
import TocsinCore
import TocsinStore

/// GET /metrics: Prometheus text format. Counters and histograms come from
/// swift-metrics as they happen; the state gauges (alerts by status, the
/// outbox, the pool) are read when scraped.
struct PrometheusEndpoint: Sendable {
    let store: Store
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    init(store: Store, registry: PrometheusCollectorRegistry = PrometheusMetricsFactory.defaultRegistry, logger: Logger) {
        self.store = store
        self.registry = registry
        self.logger = logger
    }

    func register(on router: Router<TocsinRequestContext>) {
        router.get("metrics") { _, _ in await self.scrape() }
    }

    func scrape() async -> Response {
        let pool = store.pool.statistics
        registry.makeGauge(name: "tocsin_db_pool_connections", labels: [("state", "in_use")]).set(Double(pool.inUse))
        registry.makeGauge(name: "tocsin_db_pool_connections", labels: [("state", "idle")]).set(Double(pool.idle))
        registry.makeGauge(name: "tocsin_db_pool_connections", labels: [("state", "open")]).set(Double(pool.open))
        registry.makeGauge(name: "tocsin_db_pool_waiters").set(Double(pool.waiters))
        do {
            let rows = try await store.pool.query("SELECT status, count(*) AS n FROM alerts WHERE status <> 'resolved' GROUP BY 1")
            var counts: [String: Int] = [:]
            for row in rows { counts[try row.decode("status")] = try row.decode("n") }
            for status in AlertStatus.allCases where status.isOpen {
                registry.makeGauge(name: "tocsin_alerts", labels: [("status", status.rawValue)]).set(Double(counts[status.rawValue] ?? 0))
            }
            let backlog = try await store.notifications.backlog()
            registry.makeGauge(name: "tocsin_outbox_pending").set(Double(backlog.pending))
            registry.makeGauge(name: "tocsin_outbox_oldest_pending_seconds").set(backlog.oldestSeconds)
            registry.makeGauge(name: "tocsin_database_up").set(1.0)
        } catch {
            registry.makeGauge(name: "tocsin_database_up").set(0.0)
            logger.debug("metrics: database gauges not refreshed", metadata: ["error": "\(error)"])
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }
}

/// A second HTTP server with only /metrics and /healthz, on METRICS_PORT.
public func buildMetricsApplication(config: Configuration, store: Store, logger: Logger) -> some ApplicationProtocol {
    let router = Router(context: TocsinRequestContext.self)
    router.add(middleware: RequestIDMiddleware(bodyLimit: 1024))
    router.add(middleware: ErrorMiddleware())
    router.get("healthz") { _, _ in try APIJSON.response(["status": "ok"]) }
    PrometheusEndpoint(store: store, logger: logger).register(on: router)
    return Application(
        router: router,
        configuration: .init(address: .hostname(config.host, port: config.metricsPort ?? 9090), serverName: "tocsin-metrics"),
        logger: logger)
}
