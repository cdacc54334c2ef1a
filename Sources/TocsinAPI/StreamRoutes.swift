import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresClient
import ServiceLifecycle
import TocsinCore
import TocsinStore

/// `GET /api/monitoring/stream`: server-sent events for the live dashboard.
///
/// Every API process LISTENs on the alerts channel (one connection, shared
/// by all its streams); a transition committed by any worker or API process
/// reaches every open dashboard, whichever instance serves it:
///
///     event: hello   data: {}                      on connect ({"resync":true} after a reconnect to the database)
///     event: alert   data: {"type": "alert.fired", "alert": {…}}
///     event: ping    data: {}                      every 15 s
///
/// Streams end on graceful shutdown, so they never hold the server open.
struct StreamRoutes {
    let store: Store
    let listener: PostgresListener

    func register(on api: RouterGroup<TocsinRequestContext>) {
        api.get("monitoring/stream", use: stream)
    }

    static func frame(event: String, data: String) -> ByteBuffer {
        ByteBuffer(string: "event: \(event)\ndata: \(data)\n\n")
    }

    @Sendable func stream(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        let events = listener.events()
        let (frames, continuation) = AsyncStream<ByteBuffer>.makeStream(bufferingPolicy: .bufferingNewest(1000))
        continuation.yield(ByteBuffer(string: "retry: 2000\n\n"))
        continuation.yield(Self.frame(event: "hello", data: "{}"))
        let alerts = store.alerts, logger = context.logger
        let producer = Task {
            await cancelWhenGracefulShutdown {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: .seconds(15))
                            if Task.isCancelled { break }
                            continuation.yield(Self.frame(event: "ping", data: "{}"))
                        }
                    }
                    group.addTask {
                        var seenListening = false
                        for await event in events {
                            switch event {
                            case .listening:
                                if seenListening { continuation.yield(Self.frame(event: "hello", data: #"{"resync":true}"#)) }
                                seenListening = true
                            case .notification(let notification):
                                guard let frame = await Self.alertFrame(notification.payload, alerts: alerts, logger: logger) else { continue }
                                continuation.yield(frame)
                            }
                        }
                    }
                    await group.next()
                    group.cancelAll()
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in producer.cancel() }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache",
                      HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: ResponseBody(asyncSequence: frames))
    }

    /// `{"type":"alert.fired","alert_id":12}` → the alert event with the
    /// alert as it is now.
    static func alertFrame(_ payload: String, alerts: AlertStore, logger: Logger) async -> ByteBuffer? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any],
              let type = object["type"] as? String, let id = object["alert_id"] as? Int
        else { return nil }
        do {
            guard let (alert, _) = try await alerts.get(id: id) else { return nil }
            struct Message: Encodable {
                var type: String
                var alert: Alert
            }
            let data = try APIJSON.encoder.encode(Message(type: type, alert: alert))
            return frame(event: "alert", data: String(decoding: data, as: UTF8.self))
        } catch {
            logger.warning("cannot read the alert for the live stream", metadata: ["alert.id": "\(id)", "error": "\(error)"])
            return nil
        }
    }
}
