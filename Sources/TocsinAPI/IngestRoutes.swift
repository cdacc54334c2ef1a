import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import TocsinCore
import TocsinCrypto
import TocsinStore

/// `POST /api/metrics`: validated in full, then stored with COPY in one
/// transaction — or nothing is.
struct IngestRoutes {
    let store: Store
    let config: Configuration

    func register(on api: RouterGroup<IngestContext>) {
        api.post("metrics", use: ingest)
    }

    @Sendable func ingest(_ request: Request, context: IngestContext) async throws -> Response {
        let key = try idempotencyKey(request)
        var request = request
        let buffer = try await request.collectBody(upTo: context.bodyLimit)
        let body = Array(buffer.readableBytesView)
        let idempotency = key.map {
            MetricEventRepository.Idempotency(apiKeyID: context.identity.keyID, key: $0, requestHash: Crypto.hex(Crypto.sha256(body)))
        }
        var limits = EventBatchParser.Limits()
        limits.retentionDays = config.metricsRetentionDays
        let now = store.clock.now()
        switch EventBatchParser(now: now, limits: limits).parse(body) {
        case .malformed(let reason):
            IngestMetrics.rejected(reason: "malformed")
            throw APIError(.badRequest, code: "malformed_json", message: reason)
        case .tooManyEvents(let limit):
            IngestMetrics.rejected(reason: "too_many")
            throw APIError(.badRequest, code: "too_many_events", message: "a request carries at most \(limit) events")
        case .invalid(let issues, let total):
            IngestMetrics.rejected(reason: "invalid")
            throw APIError(.badRequest, code: "invalid_events",
                           message: "\(total) problem\(total == 1 ? "" : "s") found; nothing was stored", details: issues)
        case .valid(let events):
            return try await save(events, now: now, idempotency: idempotency)
        }
    }

    func idempotencyKey(_ request: Request) throws -> String? {
        guard let key = request.headers[.idempotencyKey] else { return nil }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw APIError.badRequest("Idempotency-Key must be 1 to 255 printable ASCII characters without spaces")
        }
        return key
    }

    func save(_ events: [MetricEvent], now: Date, idempotency: MetricEventRepository.Idempotency?) async throws -> Response {
        let outcome: MetricEventRepository.IngestOutcome
        do {
            outcome = try await store.events.ingest(events, now: now, idempotency: idempotency)
        } catch let conflict as MetricEventRepository.IdempotencyConflict {
            throw APIError(.unprocessableContent, code: "idempotency_key_reused", message: conflict.description)
        }
        switch outcome {
        case .stored(let count):
            IngestMetrics.ingested(count)
            return try APIJSON.response(["accepted": count], status: .accepted)
        case .replayed(let count):
            return try APIJSON.response(["accepted": count], status: .accepted, headers: [.idempotentReplayed: "true"])
        }
    }
}

/// Ingestion metrics, through swift-metrics.
enum IngestMetrics {
    static func ingested(_ count: Int) {
        Counter(label: MetricsCatalog.eventsIngested.name).increment(by: count)
    }

    /// A request to POST /api/metrics refused: malformed, invalid, too_many, too_large.
    static func rejected(reason: String) {
        Counter(label: MetricsCatalog.ingestRejected.name, dimensions: [("reason", reason)]).increment()
    }
}

extension HTTPField.Name {
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
    static let xNextCursor = Self("X-Next-Cursor")!
}
