import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import TocsinCore
import TocsinStore

/// Delivers the outbox. Every worker runs one; they share the work through
/// the database: rows are claimed with `FOR UPDATE SKIP LOCKED` and a lease,
/// sent outside any transaction, then marked. A dispatcher that dies after
/// claiming leaves the lease to expire and another one sends the row.
///
/// Delivery is at least once: a dispatcher killed after the receiver got the
/// message but before marking it sent leaves a row that is sent again after
/// its lease. Receivers can drop that repeat: webhooks by `Idempotency-Key`
/// (the notification id); PagerDuty folds a repeated trigger into the
/// alert's incident by its `dedup_key`.
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

    let store: Store
    let config: NotifyConfig
    let sender: Sender
    let listener: PostgresListener?
    let owner: String
    let settings: Settings
    let logger: Logger
    private let wakeup = Wakeup()

    public init(store: Store, config: NotifyConfig, sender: Sender, listener: PostgresListener?, owner: String,
                settings: Settings, logger: Logger) {
        self.store = store
        self.config = config
        self.sender = sender
        self.listener = listener
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
                if let listener = self.listener {
                    group.addTask {
                        for await event in listener.events() {
                            switch event {
                            case .listening: self.wakeup.signal()
                            case .notification(let n) where n.channel == NotificationStore.channel: self.wakeup.signal()
                            case .notification: break
                            }
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

    /// Repeats for alerts still firing, and release of silenced rows.
    private func housekeeping() async {
        while !stopping {
            do {
                let repeats = try await store.notifications.queueRepeats(config: config)
                let (released, dropped) = try await store.notifications.releaseSilenced()
                if repeats + released > 0 { wakeup.signal() }
                if released + dropped > 0 {
                    logger.info("silenced notifications released", metadata: ["released": "\(released)", "dropped": "\(dropped)"])
                }
            } catch {
                logger.warning("notification housekeeping failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(2))
        }
    }

    private func deliverLoop() async {
        while !stopping {
            do {
                let claimed = try await store.notifications.claim(owner: owner, limit: settings.concurrency,
                                                                  leaseSeconds: settings.leaseSeconds)
                if !claimed.isEmpty {
                    let silences = try await store.silences.list(includeExpired: false)
                    await withTaskGroup(of: Void.self) { group in
                        for notification in claimed {
                            group.addTask { await self.deliver(notification, silences: silences) }
                        }
                    }
                    continue
                }
                let wait = try await store.pool.query(
                    """
                    SELECT least(1, greatest(0, extract(epoch FROM min(next_attempt_at) - now())))::float8 AS wait
                    FROM notifications WHERE status = 'pending'
                    """)[0].decode("wait", as: Double?.self) ?? 1
                await wakeup.wait(timeout: .milliseconds(Int(wait * 1000) + 5))
            } catch {
                logger.warning("notification dispatch failed; retrying", metadata: ["error": "\(error)"])
                await wakeup.wait(timeout: .seconds(1))
            }
        }
    }

    private func deliver(_ notification: ClaimedNotification, silences: [Silence]) async {
        let alert = notification.content.alert
        var metadata: Logger.Metadata = [
            "notification.id": "\(notification.id)", "alert.id": "\(alert.id)", "rule": .string(alert.rule),
            "channel": .string(notification.channel), "attempt": "\(notification.attempts)",
        ]
        do {
            if let pause = settings.pauseAfterClaim { try await Task.sleep(for: pause) }
            let now = store.clock.now()
            if let silence = silences.first(where: { $0.isActive(at: now) && $0.matches(alert) }) {
                try await store.notifications.hold(id: notification.id, owner: owner, silenceID: silence.id)
                Telemetry.notificationAttempt(channel: notification.channel, outcome: "silenced")
                return
            }
            guard let channel = config.channel(named: notification.channel) else {
                try await store.notifications.markFailed(id: notification.id, owner: owner,
                                                         error: "channel \(notification.channel) is no longer configured",
                                                         statusCode: nil, retryIn: nil)
                return
            }
            if let wait = try await store.notifications.takeToken(destination: "channel:" + channel.name,
                                                                  rate: channel.ratePerSecond, burst: channel.burst) {
                try await store.notifications.postpone(id: notification.id, owner: owner, seconds: wait)
                Telemetry.notificationAttempt(channel: channel.name, outcome: "rate_limited")
                return
            }
            let outcome = await sender.send(notification.content, to: channel)
            metadata["http.status"] = outcome.statusCode.map { "\($0)" } ?? "none"
            switch outcome.verdict {
            case .delivered:
                try await shielded { [store] in try await store.notifications.markSent(id: notification.id, statusCode: outcome.statusCode) }
                Telemetry.notificationAttempt(channel: channel.name, outcome: "sent")
                logger.info("notification sent", metadata: metadata)
            case .retry(let requested):
                let delay = settings.retry.delay(afterAttempt: notification.attempts, requested: requested)
                try await shielded { [store, owner] in
                    try await store.notifications.markFailed(id: notification.id, owner: owner, error: outcome.error ?? "failed",
                                                             statusCode: outcome.statusCode, retryIn: delay)
                }
                metadata["error"] = .string(outcome.error ?? "failed")
                Telemetry.notificationAttempt(channel: channel.name, outcome: delay == nil ? "dead" : "retry")
                if let delay {
                    metadata["retry_in_s"] = .string(String(format: "%.1f", delay))
                    logger.warning("notification failed; will retry", metadata: metadata)
                } else {
                    logger.error("notification dead after its last attempt", metadata: metadata)
                }
            case .fail:
                try await shielded { [store, owner] in
                    try await store.notifications.markFailed(id: notification.id, owner: owner, error: outcome.error ?? "failed",
                                                             statusCode: outcome.statusCode, retryIn: nil)
                }
                metadata["error"] = .string(outcome.error ?? "failed")
                Telemetry.notificationAttempt(channel: channel.name, outcome: "dead")
                logger.error("notification refused by the receiver; not retried", metadata: metadata)
            }
        } catch {
            // The lease runs out and the row is claimed again.
            metadata["error"] = "\(error)"
            logger.warning("notification outcome not recorded; the lease will expire and it is retried", metadata: metadata)
        }
    }
}
