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

    /// (Computed: the library's descriptor type is not Sendable.)
    enum Gauges {
        static var pool: MetricNameDescriptor { MetricNameDescriptor(namespace: "tocsin", metricName: "db_pool", unitName: "connections",
                                               helpText: "Database connections of this process, by state") }
        static var waiters: MetricNameDescriptor { MetricNameDescriptor(namespace: "tocsin", metricName: "db_pool", unitName: "waiters",
                                                  helpText: "Tasks of this process waiting for a database connection") }
        static var alerts: MetricNameDescriptor { MetricNameDescriptor(namespace: "tocsin", metricName: "alerts", unitName: "",
                                                 helpText: "Open alerts, by status") }
        static var pending: MetricNameDescriptor { MetricNameDescriptor(namespace: "tocsin", metricName: "outbox", unitName: "pending",
                                                  helpText: "Notifications waiting to be delivered") }
        static var oldest: MetricNameDescriptor { MetricNameDescriptor(namespace: "tocsin", metricName: "outbox_oldest_pending", unitName: "seconds",
                                                 helpText: "Age of the oldest notification waiting to be delivered") }
        static var failingRules: MetricNameDescriptor { MetricNameDescriptor(namespace: "tocsin", metricName: "rules_failing", unitName: "",
                                                       helpText: "Enabled rules whose last evaluation failed (see GET /api/rules/{name})") }
        static var up: MetricNameDescriptor { MetricNameDescriptor(namespace: "tocsin", metricName: "database", unitName: "up",
                                             helpText: "1 when the last scrape could read the database") }
    }

    func scrape() async -> Response {
        for (name, pool) in store.poolStatistics {
            registry.makeGauge(descriptor: Gauges.pool, labels: [("pool", name), ("state", "in_use")]).set(Double(pool.inUse))
            registry.makeGauge(descriptor: Gauges.pool, labels: [("pool", name), ("state", "idle")]).set(Double(pool.idle))
            registry.makeGauge(descriptor: Gauges.pool, labels: [("pool", name), ("state", "open")]).set(Double(pool.open))
            registry.makeGauge(descriptor: Gauges.waiters, labels: [("pool", name)]).set(Double(pool.waiters))
        }
        do {
            let counts = try await store.alerts.openCounts()
            for status in AlertStatus.allCases where status.isOpen {
                registry.makeGauge(descriptor: Gauges.alerts, labels: [("status", status.rawValue)]).set(Double(counts[status] ?? 0))
            }
            let backlog = try await store.outbox.backlog()
            registry.makeGauge(descriptor: Gauges.pending).set(Double(backlog.pending))
            registry.makeGauge(descriptor: Gauges.oldest).set(backlog.oldestSeconds)
            registry.makeGauge(descriptor: Gauges.failingRules).set(Double(try await store.rules.failingCount()))
            registry.makeGauge(descriptor: Gauges.up).set(1.0)
        } catch {
            registry.makeGauge(descriptor: Gauges.up).set(0.0)
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
