import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TocsinCore
import TocsinStore

/// The live dashboards of one API process. It follows the process's
/// database events; for each alert change it reads the alert once and fans
/// the frame out to every open stream (never one query per stream). Streams
/// are capped per key and per process, and every few seconds the hub checks
/// in one query per kind that each stream's key (or session) is still
/// valid, ending the streams whose key was revoked or session expired.
final class AlertStreamHub: Service, Sendable, CustomStringConvertible {
    var description: String { "AlertStreamHub" }

    struct Limits: Sendable {
        var perProcess = 500
        var perKey = 10
        /// How often keys and sessions are re-checked.
        var recheck: Duration = .seconds(3)
    }

    enum Refusal: Error {
        case processFull, keyFull
    }

    struct Stream: Sendable {
        var identity: Identity
        var continuation: AsyncStream<ByteBuffer>.Continuation
    }

    private let store: Store
    private let events: DatabaseEvents
    private let limits: Limits
    private let logger: Logger
    private let streams = Mutex<[Int: Stream]>([:])
    private let nextID = Atomic<Int>(0)

    init(store: Store, events: DatabaseEvents, limits: Limits = Limits(), logger: Logger) {
        self.store = store
        self.events = events
        self.limits = limits
        self.logger = logger
    }

    static func frame(event: String, data: String) -> ByteBuffer {
        ByteBuffer(string: "event: \(event)\ndata: \(data)\n\n")
    }

    /// A new stream for `identity`, or a refusal when a cap is reached.
    func open(for identity: Identity) throws(Refusal) -> (id: Int, frames: AsyncStream<ByteBuffer>) {
        let (frames, continuation) = AsyncStream<ByteBuffer>.makeStream(bufferingPolicy: .bufferingNewest(1000))
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        let refusal = streams.withLock { streams -> Refusal? in
            // The key's own cap first: a key over it is told so (429), whatever the process's load.
            if streams.values.filter({ $0.identity.keyID == identity.keyID }).count >= limits.perKey { return .keyFull }
            if streams.count >= limits.perProcess { return .processFull }
            streams[id] = Stream(identity: identity, continuation: continuation)
            return nil
        }
        if let refusal { throw refusal }
        continuation.onTermination = { [weak self] _ in self?.close(id) }
        continuation.yield(ByteBuffer(string: "retry: 2000\n\n"))
        continuation.yield(Self.frame(event: "hello", data: "{}"))
        return (id, frames)
    }

    func close(_ id: Int) {
        let stream = streams.withLock { $0.removeValue(forKey: id) }
        stream?.continuation.finish()
    }

    var count: Int { streams.withLock { $0.count } }

    private func broadcast(_ frame: ByteBuffer) {
        for stream in streams.withLock({ Array($0.values) }) { stream.continuation.yield(frame) }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.follow() }
                group.addTask { await self.ping() }
                group.addTask { await self.recheck() }
                await group.next()
                group.cancelAll()
            }
        }
        // Shutting down: end every stream so none holds the server open.
        for stream in streams.withLock({ s in defer { s = [:] }; return Array(s.values) }) { stream.continuation.finish() }
    }

    private func follow() async {
        var seenConnected = false
        for await event in events.subscribe() {
            switch event {
            case .connected:
                if seenConnected { broadcast(Self.frame(event: "hello", data: #"{"resync":true}"#)) }
                seenConnected = true
            case .alertChanged(let id, let type):
                guard count > 0, let frame = await alertFrame(id: id, type: type) else { continue }
                broadcast(frame)
            default:
                break
            }
            if Task.isCancelled { break }
        }
    }

    private func alertFrame(id: Int, type: String) async -> ByteBuffer? {
        do {
            guard let (alert, _) = try await store.alerts.get(id: id) else { return nil }
            struct Message: Encodable {
                var type: String
                var alert: AlertBody
            }
            let data = try APIJSON.encoder.encode(Message(type: type, alert: AlertBody(alert)))
            return Self.frame(event: "alert", data: String(decoding: data, as: UTF8.self))
        } catch {
            logger.warning("cannot read the alert for the live stream", metadata: ["alert.id": "\(id)", "error": "\(error)"])
            return nil
        }
    }

    private func ping() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(15))
            if Task.isCancelled { break }
            broadcast(Self.frame(event: "ping", data: "{}"))
        }
    }

    /// Ends the streams whose key was revoked or whose session ended.
    private func recheck() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: limits.recheck)
            let open = streams.withLock { $0.map { ($0.key, $0.value.identity) } }
            guard !open.isEmpty else { continue }
            do {
                let keys = try await store.apiKeys.activeIDs(among: Array(Set(open.map(\.1.keyID))))
                let sessions = try await store.sessions.liveHashes(among: Array(Set(open.compactMap(\.1.sessionID))))
                for (id, identity) in open {
                    let live = keys.contains(identity.keyID) && (identity.sessionID.map(sessions.contains) ?? true)
                    if !live {
                        streams.withLock { $0[id] }?.continuation.yield(Self.frame(event: "end", data: #"{"reason":"signed_out"}"#))
                        close(id)
                    }
                }
            } catch {
                logger.debug("live streams not rechecked", metadata: ["error": "\(error)"])
            }
        }
    }
}
