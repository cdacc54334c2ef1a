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

    /// A gauge of `family` (help from the catalog, like every other metric).
    func gauge(_ family: MetricFamily, _ labels: [(String, String)] = []) -> Gauge {
        labels.isEmpty ? registry.makeGauge(descriptor: TocsinMetricsFactory.descriptor(family.name))
            : registry.makeGauge(descriptor: TocsinMetricsFactory.descriptor(family.name), labels: labels)
    }

    func scrape() async -> Response {
        for (name, pool) in store.poolStatistics {
            gauge(MetricsCatalog.poolConnections, [("pool", name), ("state", "in_use")]).set(Double(pool.inUse))
            gauge(MetricsCatalog.poolConnections, [("pool", name), ("state", "idle")]).set(Double(pool.idle))
            gauge(MetricsCatalog.poolConnections, [("pool", name), ("state", "open")]).set(Double(pool.open))
            gauge(MetricsCatalog.poolWaiters, [("pool", name)]).set(Double(pool.waiters))
        }
        do {
            let counts = try await store.alerts.openCounts()
            for status in AlertStatus.allCases where status.isOpen {
                gauge(MetricsCatalog.alerts, [("status", status.rawValue)]).set(Double(counts[status] ?? 0))
            }
            let backlog = try await store.outbox.backlog()
            gauge(MetricsCatalog.outboxPending).set(Double(backlog.pending))
            gauge(MetricsCatalog.outboxOldestPending).set(backlog.oldestSeconds)
            let failing = try await store.rules.failingCount()
            gauge(MetricsCatalog.rulesFailing).set(Double(failing.all))
            gauge(MetricsCatalog.rulesTooManyGroups).set(Double(failing.tooManyGroups))
            gauge(MetricsCatalog.databaseUp).set(1.0)
        } catch {
            gauge(MetricsCatalog.databaseUp).set(0.0)
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
