import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TocsinCore
import TocsinStore

/// The metric reads of `/api/monitoring`: the summary, chart series and
/// event pages (JSON or CSV).
struct MetricReadRoutes {
    let store: Store
    let summaries: SummaryCache

    func register(on api: RouterGroup<ReadContext>) {
        api.get("monitoring/metrics", use: summary)
        api.get("monitoring/metrics/series", use: series)
        api.get("monitoring/events", use: events)
    }

    @Sendable func summary(_ request: Request, context: ReadContext) async throws -> Response {
        var query = QueryReader(request)
        let now = store.clock.now()
        let range = query.timeRange(now: now)
        let platform = query.platform()
        try query.check()
        // Keyed by the query as sent: `window=24h` is the same summary for
        // every client until the entry is a second old.
        let bypass = request.headers[.cacheControl]?.lowercased().contains("no-cache") ?? false
        let summary = try await summaries.summary(key: request.uri.query ?? "", bypass: bypass) { [store] in
            try await store.events.summary(range: range!, platform: platform, now: now)
        }
        return try APIJSON.response(SummaryBody(summary))
    }

    @Sendable func events(_ request: Request, context: ReadContext) async throws -> Response {
        var query = QueryReader(request)
        let name = query.string("name", maxLength: MetricName.maxLength + 2)
        if let name {
            let bare = name.hasSuffix(".*") ? String(name.dropLast(2)) : name
            if !MetricName.isValid(bare) { query.issue("name", "must be a metric name or a prefix such as upload.*") }
        }
        let limit = query.integer("limit", 1...1000) ?? 100
        let cursor = query.string("cursor", maxLength: 64)
        if let cursor, MetricEventRepository.decodeCursor(cursor) == nil {
            query.issue("cursor", "is not a cursor returned by this endpoint")
        }
        let range = query.timeRange(now: store.clock.now())
        let platform = query.platform()
        try query.check()
        let page = try await store.events.events(.init(name: name, platform: platform, range: range!, limit: limit, cursor: cursor))
        guard request.wantsCSV else { return try APIJSON.response(EventPageBody(page)) }
        var text = CSV.row(["id", "occurred_at", "received_at", "name", "platform", "value", "labels"])
        for event in page.events {
            text += CSV.row([String(event.id), RFC3339.format(event.occurredAt), RFC3339.format(event.receivedAt),
                             event.name, event.platform, String(event.value), event.labelsJSON])
        }
        var headers: HTTPFields = [.contentType: "text/csv; charset=utf-8", .cacheControl: "no-store",
                                   .contentDisposition: "attachment; filename=\"events.csv\""]
        if let next = page.nextCursor { headers[.xNextCursor] = next }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    @Sendable func series(_ request: Request, context: ReadContext) async throws -> Response {
        var query = QueryReader(request)
        let range = query.timeRange(now: store.clock.now())
        let name = query.raw("name"), agg = query.raw("agg"), numerator = query.raw("numerator")
        let denominator = query.raw("denominator"), bucket = query.raw("bucket"), platform = query.raw("platform")
        try query.check()
        let seriesQuery: SeriesQuery
        do {
            seriesQuery = try SeriesQuery.parse(name: name, agg: agg, numerator: numerator, denominator: denominator,
                                                bucket: bucket, platform: platform, range: range!)
        } catch {
            throw APIError.badRequest("invalid query", details: error.issues)
        }
        let series = try await store.events.series(seriesQuery, range: range!)
        if request.wantsCSV {
            var text = CSV.row(["platform", "bucket_start", "value", "samples"])
            for line in series {
                for point in line.points {
                    text += CSV.row([line.platform, RFC3339.format(point.start), point.value.map { String($0) }, String(point.samples)])
                }
            }
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .cacheControl: "no-store",
                                                   .contentDisposition: "attachment; filename=\"series.csv\""],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return try APIJSON.response(SeriesBody(
            since: range!.since, until: range!.until, bucket: bucket ?? "5m", agg: Self.name(seriesQuery.aggregation),
            series: series.map { line in
                SeriesBody.Line(platform: line.platform, points: line.points.map {
                    SeriesBody.Point(t: $0.start, value: $0.value, samples: $0.samples)
                })
            }))
    }

    static func name(_ aggregation: SeriesQuery.Aggregation) -> String {
        switch aggregation {
        case .count: "count"
        case .sum: "sum"
        case .avg: "avg"
        case .p95: "p95"
        case .max: "max"
        case .min: "min"
        case .ratio: "ratio"
        }
    }
}
