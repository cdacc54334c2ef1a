import Foundation
import Synchronization

/// A TCP proxy on 127.0.0.1 in front of a real server, that can cut a
/// connection at a chosen moment: after it has forwarded client bytes
/// containing a marker (say, a COMMIT), before any answer comes back. The
/// server sees the whole request; the client never sees the reply — the
/// "reply lost" failure of a primary that dies right after a commit. It can
/// also hold every answer back for a while (`latency`): a slow, overloaded
/// server.
public final class FaultProxy: Sendable {
    public let port: Int
    private let upstreamPort: Int
    private let listener: Int32
    private let state = Mutex(State())

    struct State {
        var cutAfter: [UInt8]?
        var cuts = 0
        var latency: Double = 0
        var stopped = false
        /// The accept loop has closed the listening socket: its number may
        /// belong to someone else now.
        var closed = false
    }

    public init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { throw TestEnvironment.Missing(description: "the proxy cannot listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in self.acceptLoop() }
    }

    /// Cuts the next connection that sends `marker`, right after forwarding it.
    public func cutAfter(_ marker: String) {
        state.withLock { $0.cutAfter = Array(marker.utf8) }
    }

    /// Every chunk the server sends waits this long before it is forwarded.
    public func setLatency(_ seconds: Double) {
        state.withLock { $0.latency = seconds }
    }

    /// The accept loop has ended and closed the listening socket.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// The listening socket's descriptor number (closed once `isClosed`).
    public var listeningDescriptor: Int32 { listener }

    /// How many connections have been cut.
    public var cuts: Int { state.withLock { $0.cuts } }

    /// Stops accepting. The listening socket is shut down here (which wakes
    /// the accept loop) and closed by the accept loop itself: closing it here
    /// would let the loop call accept() on a descriptor number the process
    /// may already have reused — another server's listening socket, whose
    /// connections it would then take and drop. For the same reason a second
    /// stop, or a stop after the loop ended on its own, touches nothing: a
    /// shutdown of a reused number would cut another server's connection
    /// (seen as "Empty reply from server" in a test running beside).
    public func stop() {
        state.withLock { s in
            guard !s.stopped else { return }
            s.stopped = true
            if !s.closed { shutdown(listener, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        defer {
            state.withLock { s in
                s.closed = true
                close(listener)
            }
        }
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if state.withLock({ $0.stopped }) { return }
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            if state.withLock({ $0.stopped }) {
                close(client)
                return
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(upstreamPort).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                close(client)
                close(server)
                continue
            }
            let pair = Pair(client: client, server: server)
            Thread.detachNewThread { [self] in self.pump(from: client, to: server, watch: true, pair: pair) }
            Thread.detachNewThread { [self] in self.pump(from: server, to: client, watch: false, pair: pair) }
        }
    }

    /// The two sockets of one proxied connection. They are shut down by
    /// whichever pump ends first and closed by the last one, so no thread
    /// ever touches a descriptor number the system may have reused.
    final class Pair: Sendable {
        let client: Int32
        let server: Int32
        private let finished = Mutex(0)
        private let wasCut = Mutex(false)

        func cut() { wasCut.withLock { $0 = true } }
        var isCut: Bool { wasCut.withLock { $0 } }

        init(client: Int32, server: Int32) {
            self.client = client
            self.server = server
        }

        func end() {
            let last = finished.withLock { n -> Bool in
                n += 1
                if n == 1 {
                    shutdown(client, Int32(SHUT_RDWR))
                    shutdown(server, Int32(SHUT_RDWR))
                }
                return n == 2
            }
            if last {
                close(client)
                close(server)
            }
        }
    }

    /// Copies bytes one way. On the client side, a chunk holding the marker
    /// marks the pair cut *before* it is forwarded, so the other direction
    /// drops whatever the server answers to it (however fast that answer
    /// is), and then both directions end.
    private func pump(from source: Int32, to destination: Int32, watch: Bool, pair: Pair) {
        defer { pair.end() }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(source, &buffer, buffer.count)
            guard n > 0 else { return }
            if !watch, case let delay = state.withLock({ $0.latency }), delay > 0 { Thread.sleep(forTimeInterval: delay) }
            let chunk = Array(buffer[0..<n])
            var cut = false
            if watch, let marker = state.withLock({ $0.cutAfter }), Self.contains(chunk, marker) {
                state.withLock {
                    $0.cutAfter = nil
                    $0.cuts += 1
                }
                pair.cut()
                cut = true
            }
            if !watch, pair.isCut { return }
            var written = 0
            while written < n {
                let w = chunk[written...].withUnsafeBufferPointer { send(destination, $0.baseAddress, n - written, Int32(MSG_NOSIGNAL)) }
                guard w > 0 else { return }
                written += w
            }
            // The server has the request; the client gets nothing back.
            if cut { return }
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return true }
        }
        return false
    }
}
