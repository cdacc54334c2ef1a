import Foundation
import HTTPTypes
import Hummingbird
import ServiceLifecycle

/// `GET /api/monitoring/stream`: server-sent events for the live dashboard.
///
/// Every API process follows the alerts channel on its one LISTEN
/// connection; a transition committed by any worker or API process reaches
/// every open dashboard, whichever instance serves it:
///
///     event: hello   data: {}                      on connect ({"resync":true} after a reconnect to the database)
///     event: alert   data: {"type": "alert.fired", "alert": {…}}
///     event: ping    data: {}                      every 15 s
///     event: end     data: {"reason":"signed_out"} the key was revoked or the session ended; the stream closes
///
/// Streams end on graceful shutdown, so they never hold the server open.
struct StreamRoutes {
    let hub: AlertStreamHub

    func register(on read: RouterGroup<ReadContext>) {
        read.get("monitoring/stream", use: stream)
    }

    @Sendable func stream(_ request: Request, context: ReadContext) async throws -> Response {
        let opened: (id: Int, frames: AsyncStream<ByteBuffer>)
        do {
            opened = try hub.open(for: context.identity)
        } catch .keyFull {
            throw APIError(.tooManyRequests, code: "too_many_streams",
                           message: "this API key has too many live streams open; close one first", headers: [.retryAfter: "10"])
        } catch .processFull {
            // Like every 503 of the API: the same Retry-After as a database that is away.
            throw APIError(.serviceUnavailable, code: "too_many_streams",
                           message: "this server has too many live streams open; retry later", headers: [.retryAfter: "5"])
        }
        let hub = self.hub, id = opened.id
        // The request's task knows when the server shuts down gracefully.
        let watcher = Task {
            try? await gracefulShutdown()
            hub.close(id)
        }
        let frames = opened.frames
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache",
                      HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: ResponseBody { writer in
                defer { watcher.cancel(); hub.close(id) }
                for await frame in frames { try await writer.write(frame) }
                try await writer.finish(nil)
            })
    }
}
