import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TocsinCore
import TocsinStore

/// `POST /api/metrics` and the metric reads of `/api/monitoring`.
struct MetricsRoutes {
    let store: Store
    let config: Configuration

    func register(on api: RouterGroup<TocsinRequestContext>) {
        api.post("metrics", use: ingest)
        api.get("monitoring/metrics", use: summary)
        api.get("monitoring/metrics/series", use: series)
        api.get("monitoring/events", use: events)
    }

    // MARK: Ingest

    @Sendable func ingest(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        let identity = try context.require(.ingest)
        var idempotency: MetricStore.Idempotency?
        let key = request.headers[HTTPField.Name("Idempotency-Key")!]
        if let key {
            guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
                throw APIError.badRequest("Idempotency-Key must be 1 to 255 printable ASCII characters without spaces")
            }
        }
        var request = request
        let buffer = try await request.collectBody(upTo: context.bodyLimit)
        let body = Array(buffer.readableBytesView)
        if let key {
            idempotency = .init(apiKeyID: identity.keyID, key: key, requestHash: Crypto.hex(Crypto.sha256(body)))
        }
        var limits = EventBatchParser.Limits()
        limits.retentionDays = config.metricsRetentionDays
        let now = store.clock.now()
        switch EventBatchParser(now: now, limits: limits).parse(body) {
        case .malformed(let reason):
            Telemetry.ingestRejected(reason: "malformed")
            throw APIError(.badRequest, code: "malformed_json", message: reason)
        case .tooManyEvents(let limit):
            Telemetry.ingestRejected(reason: "too_many")
            throw APIError(.badRequest, code: "too_many_events", message: "a request carries at most \(limit) events")
        case .invalid(let issues, let total):
            Telemetry.ingestRejected(reason: "invalid")
            throw APIError(.badRequest, code: "invalid_events",
                           message: "\(total) problem\(total == 1 ? "" : "s") found; nothing was stored",
                           details: issues)
        case .valid(let events):
            let outcome: MetricStore.IngestOutcome
            do {
                outcome = try await store.metrics.ingest(events, now: now, idempotency: idempotency)
            } catch let conflict as MetricStore.IdempotencyConflict {
                throw APIError(.unprocessableContent, code: "idempotency_key_reused", message: conflict.description)
            }
            switch outcome {
            case .stored(let count):
                Telemetry.eventsIngested(count)
                return try APIJSON.response(["accepted": count], status: .accepted)
            case .replayed(let count):
                return try APIJSON.response(["accepted": count], status: .accepted,
                                            headers: [HTTPField.Name("Idempotent-Replayed")!: "true"])
            }
        }
    }

    // MARK: Reads

    @Sendable func summary(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        let query = request.uri.queryParameters
        let range = try timeRange(query)
        let platform = try platformFilter(query)
        let summary = try await store.metricReads.summary(range: range, platform: platform)
        return try APIJSON.response(summary)
    }

    @Sendable func events(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        let query = request.uri.queryParameters
        var issues: [ValidationIssue] = []
        let name = query.get("name")
        if let name {
            let bare = name.hasSuffix(".*") ? String(name.dropLast(2)) : name
            if !MetricName.isValid(bare) {
                issues.append(ValidationIssue(field: "name", reason: "must be a metric name or a prefix such as upload.*"))
            }
        }
        var limit = 100
        if let text = query.get("limit") {
            if let value = Int(text), (1...1000).contains(value) { limit = value } else {
                issues.append(ValidationIssue(field: "limit", reason: "must be an integer from 1 to 1000"))
            }
        }
        let cursor = query.get("cursor")
        if let cursor, MetricReads.decodeCursor(cursor) == nil {
            issues.append(ValidationIssue(field: "cursor", reason: "is not a cursor returned by this endpoint"))
        }
        let range: TimeRange
        let platform: String?
        do {
            range = try timeRange(query)
            platform = try platformFilter(query)
        } catch let error as APIError {
            throw APIError.badRequest("invalid query", details: issues + error.details)
        }
        if !issues.isEmpty { throw APIError.badRequest("invalid query", details: issues) }

        let page = try await store.metricReads.events(
            .init(name: name, platform: platform, range: range, limit: limit, cursor: cursor))
        if request.wantsCSV {
            var text = CSV.row(["id", "occurred_at", "received_at", "name", "platform", "value", "labels"])
            for event in page.events {
                text += CSV.row([String(event.id), RFC3339.format(event.occurredAt), RFC3339.format(event.receivedAt),
                                 event.name, event.platform, String(event.value), event.labelsJSON])
            }
            var headers: HTTPFields = [.contentType: "text/csv; charset=utf-8", .cacheControl: "no-store"]
            if let next = page.nextCursor { headers[HTTPField.Name("X-Next-Cursor")!] = next }
            headers[.contentDisposition] = "attachment; filename=\"events.csv\""
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        struct EventBody: Encodable {
            var id: Int
            var occurredAt: String
            var receivedAt: String
            var name: String
            var platform: String?
            var value: Double
            var labels: [String: String]
            enum CodingKeys: String, CodingKey {
                case id, name, platform, value, labels
                case occurredAt = "occurred_at"
                case receivedAt = "received_at"
            }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(id, forKey: .id)
                try c.encode(occurredAt, forKey: .occurredAt)
                try c.encode(receivedAt, forKey: .receivedAt)
                try c.encode(name, forKey: .name)
                try c.encode(platform, forKey: .platform)
                try c.encode(value, forKey: .value)
                try c.encode(labels, forKey: .labels)
            }
        }
        struct PageBody: Encodable {
            var events: [EventBody]
            var nextCursor: String?
            enum CodingKeys: String, CodingKey {
                case events
                case nextCursor = "next_cursor"
            }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(events, forKey: .events)
                try c.encode(nextCursor, forKey: .nextCursor)
            }
        }
        let body = PageBody(
            events: page.events.map { event in
                EventBody(
                    id: event.id, occurredAt: RFC3339.format(event.occurredAt), receivedAt: RFC3339.format(event.receivedAt),
                    name: event.name, platform: event.platform, value: event.value,
                    labels: (try? JSONDecoder().decode([String: String].self, from: Data(event.labelsJSON.utf8))) ?? [:])
            },
            nextCursor: page.nextCursor)
        return try APIJSON.response(body)
    }

    @Sendable func series(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        let query = request.uri.queryParameters
        let range = try timeRange(query)
        let seriesQuery: SeriesQuery
        do {
            seriesQuery = try SeriesQuery.parse(
                name: query.get("name"), agg: query.get("agg"), numerator: query.get("numerator"),
                denominator: query.get("denominator"), bucket: query.get("bucket"), platform: query.get("platform"),
                range: range)
        } catch {
            throw APIError.badRequest("invalid query", details: error.issues)
        }
        let series = try await store.metricReads.series(seriesQuery, range: range)
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
        struct Point: Encodable {
            var t: String
            var value: Double?
            var samples: Int
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(t, forKey: .t)
                try c.encode(value, forKey: .value)
                try c.encode(samples, forKey: .samples)
            }
            enum CodingKeys: String, CodingKey { case t, value, samples }
        }
        struct Line: Encodable {
            var platform: String?
            var points: [Point]
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(platform, forKey: .platform)
                try c.encode(points, forKey: .points)
            }
            enum CodingKeys: String, CodingKey { case platform, points }
        }
        struct Body: Encodable {
            var since: String
            var until: String
            var bucket: String
            var agg: String
            var series: [Line]
        }
        let aggName: String = {
            switch seriesQuery.aggregation {
            case .count: "count"
            case .sum: "sum"
            case .avg: "avg"
            case .p95: "p95"
            case .max: "max"
            case .min: "min"
            case .ratio: "ratio"
            }
        }()
        return try APIJSON.response(Body(
            since: RFC3339.format(range.since), until: RFC3339.format(range.until),
            bucket: query.get("bucket") ?? "5m", agg: aggName,
            series: series.map { line in
                Line(platform: line.platform, points: line.points.map {
                    Point(t: RFC3339.format($0.start), value: $0.value, samples: $0.samples)
                })
            }))
    }

    // MARK: Helpers

    func timeRange(_ query: Parameters) throws -> TimeRange {
        do {
            return try TimeRange.parse(window: query.get("window"), since: query.get("since"), until: query.get("until"),
                                       now: store.clock.now())
        } catch {
            throw APIError.badRequest("invalid time range", details: error.issues)
        }
    }

    func platformFilter(_ query: Parameters) throws -> String? {
        guard let platform = query.get("platform") else { return nil }
        guard PlatformName.isValid(platform) else {
            throw APIError.badRequest("invalid query", details: [.init(field: "platform", reason: "is not a valid platform label")])
        }
        return platform
    }

}
