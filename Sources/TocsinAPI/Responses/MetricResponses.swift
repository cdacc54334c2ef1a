import Foundation
import TocsinCore
import TocsinStore

/// `GET /api/monitoring/metrics`.
struct SummaryBody: Encodable, Sendable {
    struct Rate: Encodable, Sendable {
        var success: Int
        var failure: Int
        @NullEncoded var successRate: Double?
        enum CodingKeys: String, CodingKey {
            case success, failure
            case successRate = "success_rate"
        }
    }

    struct Webhook: Encodable, Sendable {
        var received: Int
        var processed: Int
        @NullEncoded var avgLatency: Double?
        @NullEncoded var p95Latency: Double?
        enum CodingKeys: String, CodingKey {
            case received, processed
            case avgLatency = "avg_latency_s", p95Latency = "p95_latency_s"
        }
    }

    struct TokenRefresh: Encodable, Sendable {
        var success: Int
        var failure: Int
    }

    struct API: Encodable, Sendable {
        var calls: Int
        @NullEncoded var avgLatency: Double?
        @NullEncoded var p95Latency: Double?
        enum CodingKeys: String, CodingKey {
            case calls
            case avgLatency = "avg_latency_s", p95Latency = "p95_latency_s"
        }
    }

    struct Worker: Encodable, Sendable {
        var runs: Int
        @NullEncoded var avgDuration: Double?
        enum CodingKeys: String, CodingKey {
            case runs
            case avgDuration = "avg_duration_s"
        }
    }

    struct Group: Encodable, Sendable {
        @NullEncoded var platform: String?
        var oauth: Rate
        var upload: Rate
        var webhook: Webhook
        var tokenRefresh: TokenRefresh
        var api: API
        var worker: Worker
        enum CodingKeys: String, CodingKey {
            case platform, oauth, upload, webhook, api, worker
            case tokenRefresh = "token_refresh"
        }

        init(_ g: MetricsSummary.Group) {
            platform = g.platform
            oauth = Rate(success: g.oauth.success, failure: g.oauth.failure, successRate: g.oauth.successRate)
            upload = Rate(success: g.upload.success, failure: g.upload.failure, successRate: g.upload.successRate)
            webhook = Webhook(received: g.webhook.received, processed: g.webhook.processed, avgLatency: g.webhook.avgLatency,
                              p95Latency: g.webhook.p95Latency)
            tokenRefresh = TokenRefresh(success: g.tokenRefresh.success, failure: g.tokenRefresh.failure)
            api = API(calls: g.api.calls, avgLatency: g.api.avgLatency, p95Latency: g.api.p95Latency)
            worker = Worker(runs: g.worker.runs, avgDuration: g.worker.avgDuration)
        }
    }

    var since: Date
    var until: Date
    var platforms: [Group]
    var totals: Group

    init(_ summary: MetricsSummary) {
        since = summary.since
        until = summary.until
        platforms = summary.platforms.map(Group.init)
        totals = Group(summary.totals)
    }
}

/// `GET /api/monitoring/events`.
struct EventPageBody: Encodable, Sendable {
    struct Event: Encodable, Sendable {
        var id: Int
        var occurredAt: Date
        var receivedAt: Date
        var name: String
        @NullEncoded var platform: String?
        var value: Double
        var labels: [String: String]
        enum CodingKeys: String, CodingKey {
            case id, name, platform, value, labels
            case occurredAt = "occurred_at", receivedAt = "received_at"
        }
    }

    var events: [Event]
    @NullEncoded var nextCursor: String?
    enum CodingKeys: String, CodingKey {
        case events
        case nextCursor = "next_cursor"
    }

    init(_ page: MetricEventRepository.EventPage) {
        events = page.events.map { event in
            Event(id: event.id, occurredAt: event.occurredAt, receivedAt: event.receivedAt, name: event.name,
                  platform: event.platform, value: event.value,
                  labels: (try? JSONDecoder().decode([String: String].self, from: Data(event.labelsJSON.utf8))) ?? [:])
        }
        nextCursor = page.nextCursor
    }
}

/// `GET /api/monitoring/metrics/series`.
struct SeriesBody: Encodable, Sendable {
    struct Point: Encodable, Sendable {
        var t: Date
        @NullEncoded var value: Double?
        var samples: Int
    }

    struct Line: Encodable, Sendable {
        @NullEncoded var platform: String?
        var points: [Point]
    }

    var since: Date
    var until: Date
    var bucket: String
    var agg: String
    var series: [Line]
}
