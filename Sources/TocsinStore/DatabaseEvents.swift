import Foundation
import Logging
import PostgresClient
import ServiceLifecycle

/// What the database tells a process as it happens (LISTEN/NOTIFY), typed.
/// One per process, on one connection, whatever its roles; the channel names
/// and payload formats are this module's business.
public final class DatabaseEvents: Service, Sendable, CustomStringConvertible {
    public var description: String { "DatabaseEvents(\(topics.map(\.rawValue).sorted()))" }

    public enum Topic: String, Sendable, CaseIterable {
        /// Batches ingested (payload: their metric names).
        case events
        /// "Run checks now" requested (payload: its id) or answered
        /// (payload: `done:<id>`).
        case checks
        /// Notifications became due.
        case outbox
        /// An alert changed (payload: the transition and the alert id).
        case alerts

        var channel: String { "tocsin_" + rawValue }
    }

    public enum Event: Sendable, Equatable {
        /// Listening (first connect or after a reconnect, possibly to a new
        /// primary): anything may have been missed, so re-read.
        case connected
        case eventsArrived(names: [String])
        case checkRequested
        /// A check request was answered (its requester stops waiting).
        case checkCompleted(id: Int)
        case outboxDue
        case alertChanged(alertID: Int, type: String)
    }

    public let topics: Set<Topic>
    private let listener: PostgresListener

    init(conninfo: String, topics: Set<Topic>, logger: Logger) {
        self.topics = topics
        self.listener = PostgresListener(conninfo: conninfo, channels: topics.map(\.channel).sorted(), logger: logger)
    }

    /// A new subscription; it ends when the service stops or the consumer
    /// stops iterating.
    public func subscribe() -> AsyncStream<Event> {
        let raw = listener.events()
        return AsyncStream(bufferingPolicy: .bufferingNewest(10_000)) { continuation in
            let task = Task {
                for await event in raw {
                    if let typed = Self.typed(event) { continuation.yield(typed) }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    static func typed(_ event: PostgresListener.Event) -> Event? {
        switch event {
        case .listening:
            return .connected
        case .notification(let n):
            switch n.channel {
            case Topic.events.channel: return .eventsArrived(names: n.payload.split(separator: ",").map(String.init))
            case Topic.checks.channel:
                if n.payload.hasPrefix("done:") { return Int(n.payload.dropFirst(5)).map { .checkCompleted(id: $0) } }
                return .checkRequested
            case Topic.outbox.channel: return .outboxDue
            case Topic.alerts.channel:
                guard let object = try? JSONSerialization.jsonObject(with: Data(n.payload.utf8)) as? [String: Any],
                      let type = object["type"] as? String, let id = object["alert_id"] as? Int
                else { return nil }
                return .alertChanged(alertID: id, type: type)
            default: return nil
            }
        }
    }

    public func run() async throws {
        try await listener.run()
    }
}
