import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import TocsinCore
import TocsinEngine
import TocsinStore

/// Delivers the outbox. Every worker runs one; they share the work through
/// the database: rows are claimed with `FOR UPDATE SKIP LOCKED` and a lease,
/// sent outside any transaction, then marked. A dispatcher that dies after
/// claiming leaves the lease to expire and another one sends the row.
///
/// The channels come from the applied configuration; a dispatcher claims
/// only rows of the channels whose secrets it can resolve here.
///
/// Delivery is at least once, and the one window for a repeat is narrow:
/// the lease is longer than the transport's total timeout plus a margin,
/// the dispatcher checks it still holds the lease right before sending, and
/// only the lease holder can mark a row sent. What remains: a dispatcher
/// killed (or cut off from the database) after the receiver got the
/// message but before its mark-sent committed; the lease expires and
/// another dispatcher sends the row again. Receivers can drop that repeat:
/// webhooks by `Idempotency-Key` (the notification id); PagerDuty folds a
/// repeated trigger into the alert's incident by its `dedup_key`.
public final class Dispatcher: Service, Sendable, CustomStringConvertible {
    public var description: String { "Dispatcher" }
    public struct Settings: Sendable {
        public var retry = RetryPolicy()
        public var leaseSeconds: Double = 60
        public var concurrency = 8
        /// Test-only: wait this long after claiming, before sending.
        public var pauseAfterClaim: Duration?
        public init() {}
    }

    public struct LeaseTooShort: Error, CustomStringConvertible {
        public var leaseSeconds: Double
        public var minimum: Double
        public var description: String {
            "NOTIFY_LEASE_SECONDS must be at least \(Int(minimum.rounded(.up))) (the transport's total timeout plus a 10 s margin), got \(Int(leaseSeconds))"
        }
    }

    /// The seconds a lease must outlast a send by.
    static let leaseMargin = 10.0

    let store: Store
    let resolver: SecretResolver
    let sender: Sender
    let events: DatabaseEvents?
    let owner: String
    let settings: Settings
    let logger: Logger
    private let wakeup = Wakeup()
    private let reported = Mutex<Set<String>>([])
    /// Deliveries running now, by channel (at most `settings.concurrency`
    /// in all, `perChannelLimit` per channel).
    private let inFlight = Mutex<[String: Int]>([:])

    /// A channel may hold at most half the delivery slots (at least one), so
    /// a receiver that hangs leaves the others theirs.
    var perChannelLimit: Int { max(1, settings.concurrency / 2) }

    /// What the dispatcher needs the process's database events to carry.
    public static let topics: Set<DatabaseEvents.Topic> = [.outbox]

    public init(store: Store, resolver: SecretResolver, sender: Sender, events: DatabaseEvents?, owner: String,
                settings: Settings, logger: Logger) throws {
        let minimum = Double(sender.transport.totalTimeoutMs) / 1000 + Self.leaseMargin
        guard settings.leaseSeconds >= minimum else { throw LeaseTooShort(leaseSeconds: settings.leaseSeconds, minimum: minimum) }
        self.store = store
        self.resolver = resolver
        self.sender = sender
        self.events = events
        self.owner = owner
        self.settings = settings
        var logger = logger
        logger[metadataKey: "worker.id"] = .string(owner)
        self.logger = logger
    }

    /// On graceful shutdown the dispatcher stops claiming and lets the
    /// deliveries in flight finish and be recorded.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                if let events = self.events {
                    group.addTask {
                        for await event in events.subscribe() {
                            if event == .connected || event == .outboxDue { self.wakeup.signal() }
                            if Task.isCancelled { break }
                        }
                    }
                }
                group.addTask { await self.housekeeping() }
                await self.deliverLoop()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.wakeup.signal()
        }
    }

    private var stopping: Bool { Task.isCancelled || Task.isShuttingDownGracefully }

    /// Repeats for alerts still firing, escalations, and the release of
    /// rows held by silences, inhibition and time intervals. Every second:
    /// a held notification goes out within a second of its window closing.
    private func housekeeping() async {
        while !stopping {
            do {
                let repeats = try await store.outbox.queueRepeats()
                let escalations = try await store.outbox.queueEscalations()
                let (released, dropped) = try await store.outbox.releaseSilenced()
                let (freed, discarded) = try await store.outbox.releaseHeld()
                if repeats + escalations + released + freed > 0 { wakeup.signal() }
                if released + dropped + freed + discarded > 0 {
                    logger.info("held notifications released", metadata: [
                        "released": "\(released + freed)", "dropped": "\(dropped + discarded)",
                    ])
                }
                if escalations > 0 { logger.info("alerts escalated", metadata: ["levels": "\(escalations)"]) }
            } catch {
                logger.warning("notification housekeeping failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// The channels this process can deliver to now; the ones it cannot
    /// are logged once each.
    private func channels() async throws -> (channels: [String: ResolvedChannel], templates: [NotifyConfig.Channel.Kind: NotifyConfig.MessageTemplate]) {
        let config = try await store.config.activeNotify().config
        let (channels, unresolved) = resolver.deliverable(config)
        for problem in unresolved where reported.withLock({ $0.insert(problem.description).inserted }) {
            logger.warning("a channel's secret is not available here; this worker does not deliver to it",
                           metadata: ["problem": .string(problem.description)])
        }
        return (channels, config.templates)
    }

    /// Claims as many rows as there are free delivery slots
    /// (`settings.concurrency`, at most `perChannelLimit` per channel) and
    /// sends each in its own task; a slot freed by a finished delivery is
    /// filled at once, so a receiver that hangs (up to its timeout) holds
    /// its channel's slots, not the rows of other channels claimed after it.
    private func deliverLoop() async {
        await withDiscardingTaskGroup { group in
            while !stopping {
                do {
                    let running = inFlight.withLock { $0 }
                    let free = settings.concurrency - running.values.reduce(0, +)
                    guard free > 0 else {
                        // Woken by the next delivery to finish.
                        await wakeup.wait(timeout: .seconds(1))
                        continue
                    }
                    let (channels, templates) = try await channels()
                    let open = channels.keys.filter { running[$0, default: 0] < perChannelLimit }.sorted()
                    // Due groups become outbox rows first, so they are claimed now.
                    _ = try await store.outbox.flushGroups()
                    let limit = min(free, open.count * perChannelLimit)
                    var claimed = open.isEmpty ? [] : try await store.outbox.claim(
                        owner: owner, channels: open, limit: limit, leaseSeconds: settings.leaseSeconds)
                    // Beyond a channel's share the rows go back, due again at once.
                    var taken = running
                    var returned: [Int] = []
                    claimed.removeAll { notification in
                        taken[notification.channel, default: 0] += 1
                        guard taken[notification.channel, default: 0] > perChannelLimit else { return false }
                        returned.append(notification.id)
                        return true
                    }
                    if !returned.isEmpty { try await store.outbox.release(ids: returned, owner: owner) }
                    if !claimed.isEmpty {
                        let silences = try await store.silences.active()
                        for notification in claimed {
                            let channel = channels[notification.channel]
                            let template = channel.flatMap { templates[$0.kind] }
                            inFlight.withLock { $0[notification.channel, default: 0] += 1 }
                            group.addTask {
                                await self.deliver(notification, channel: channel, template: template, silences: silences)
                                self.inFlight.withLock { $0[notification.channel, default: 0] -= 1 }
                                self.wakeup.signal()
                            }
                        }
                        continue
                    }
                    let wait = try await store.outbox.secondsUntilNextDue(channels: open) ?? 1
                    await wakeup.wait(timeout: .milliseconds(Int(min(1, max(0, wait)) * 1000) + 5))
                } catch {
                    logger.warning("notification dispatch failed; retrying", metadata: ["error": "\(error)"])
                    await wakeup.wait(timeout: .seconds(1))
                }
            }
            // Leaving the group waits for the deliveries in flight.
        }
    }

    private func deliver(_ notification: ClaimedNotification, channel: ResolvedChannel?,
                         template: NotifyConfig.MessageTemplate?, silences: [Silence]) async {
        let alert = notification.payload.alert
        var metadata: Logger.Metadata = [
            "notification.id": "\(notification.id)", "alert.id": "\(alert.id)", "rule": .string(alert.rule),
            "channel": .string(notification.channel), "attempt": "\(notification.attempts)",
        ]
        do {
            if let pause = settings.pauseAfterClaim { try await Task.sleep(for: pause) }
            let now = store.clock.now()
            // A group's message was checked against silences when it was built.
            if notification.payload.group == nil,
               let silence = silences.first(where: { $0.isActive(at: now) && $0.matches(alert) }) {
                try await store.outbox.hold(id: notification.id, owner: owner, silenceID: silence.id)
                DeliveryMetrics.attempt(channel: notification.channel, outcome: "silenced")
                return
            }
            guard let channel else {
                try await store.outbox.markFailed(id: notification.id, owner: owner,
                                                  error: "channel \(notification.channel) is no longer configured",
                                                  statusCode: nil, retryIn: nil)
                return
            }
            if let wait = try await store.outbox.takeToken(destination: "channel:" + channel.name,
                                                           rate: channel.ratePerSecond, burst: channel.burst) {
                try await store.outbox.postpone(id: notification.id, owner: owner, seconds: wait)
                DeliveryMetrics.attempt(channel: channel.name, outcome: "rate_limited")
                return
            }
            // The lease must outlast the send; a dispatcher that lost it (a
            // long pause) leaves the row to whoever holds it now.
            let margin = Double(sender.transport.totalTimeoutMs) / 1000 + 1
            guard try await store.outbox.holdsLease(id: notification.id, owner: owner, margin: margin) else {
                logger.warning("lease lost before sending; the row is left to its new holder", metadata: metadata)
                return
            }
            let outcome = await sender.send(notification.payload, id: notification.id, to: channel, template: template)
            metadata["http.status"] = outcome.statusCode.map { "\($0)" } ?? "none"
            try await record(outcome, notification, channel: channel.name, metadata: &metadata)
        } catch {
            // The lease runs out and the row is claimed again.
            metadata["error"] = "\(error)"
            logger.warning("notification outcome not recorded; the lease will expire and it is retried", metadata: metadata)
        }
    }

    private func record(_ outcome: Sender.Outcome, _ notification: ClaimedNotification, channel: String,
                        metadata: inout Logger.Metadata) async throws {
        let store = self.store, owner = self.owner, id = notification.id
        switch outcome.verdict {
        case .delivered:
            let marked = try await shielded { try await store.outbox.markSent(id: id, owner: owner, statusCode: outcome.statusCode) }
            DeliveryMetrics.attempt(channel: channel, outcome: "sent")
            if marked {
                logger.info("notification sent", metadata: metadata)
            } else {
                logger.warning("notification sent after its lease was lost; it may be sent again", metadata: metadata)
            }
        case .retry(let requested):
            let delay = settings.retry.delay(afterAttempt: notification.attempts, requested: requested)
            try await shielded {
                try await store.outbox.markFailed(id: id, owner: owner, error: outcome.error ?? "failed",
                                                  statusCode: outcome.statusCode, retryIn: delay)
            }
            metadata["error"] = .string(outcome.error ?? "failed")
            DeliveryMetrics.attempt(channel: channel, outcome: delay == nil ? "dead" : "retry")
            if let delay {
                metadata["retry_in_s"] = .string(String(format: "%.1f", delay))
                logger.warning("notification failed; will retry", metadata: metadata)
            } else {
                logger.error("notification dead after its last attempt", metadata: metadata)
            }
        case .fail:
            try await shielded {
                try await store.outbox.markFailed(id: id, owner: owner, error: outcome.error ?? "failed",
                                                  statusCode: outcome.statusCode, retryIn: nil)
            }
            metadata["error"] = .string(outcome.error ?? "failed")
            DeliveryMetrics.attempt(channel: channel, outcome: "dead")
            logger.error("notification refused by the receiver; not retried", metadata: metadata)
        }
    }
}

/// Delivery metrics, through swift-metrics.
enum DeliveryMetrics {
    /// sent, retry, dead, rate_limited, silenced.
    static func attempt(channel: String, outcome: String) {
        Counter(label: MetricsCatalog.notificationAttempts.name, dimensions: [("channel", channel), ("outcome", outcome)]).increment()
    }
}
