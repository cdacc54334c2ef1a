import Hummingbird
import Metrics
import TocsinCore

/// Request metrics: counts by method, route template and status, durations
/// by method and route, and requests in flight (MetricsCatalog's http
/// families). The route is the template (`/api/rules/{name}`), so the label
/// set stays bounded whatever the paths requested; unknown paths are
/// `NotFound`.
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let inFlight = Meter(label: MetricsCatalog.httpRequestsInFlight.name)
        inFlight.increment()
        defer { inFlight.decrement() }
        let started = ContinuousClock.now
        let method = request.method.rawValue
        do {
            let response = try await next(request, context)
            record(method: method, route: context.endpointPath, status: response.status.code, since: started)
            return response
        } catch let error as any HTTPResponseError {
            record(method: method, route: context.endpointPath, status: error.status.code, since: started)
            throw error
        } catch {
            record(method: method, route: context.endpointPath, status: 500, since: started)
            throw error
        }
    }

    func record(method: String, route: String?, status: Int, since started: ContinuousClock.Instant) {
        let route = route ?? "NotFound"
        Counter(label: MetricsCatalog.httpRequests.name,
                dimensions: [("method", method), ("route", route), ("status", String(status))]).increment()
        Timer(label: MetricsCatalog.httpRequestDuration.name, dimensions: [("method", method), ("route", route)])
            .recordNanoseconds(Int64(clamping: (ContinuousClock.now - started).components.seconds) * 1_000_000_000
                               + (ContinuousClock.now - started).components.attoseconds / 1_000_000_000)
    }
}
