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
        var sockets: [Int32] = []
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

    /// How many connections have been cut.
    public var cuts: Int { state.withLock { $0.cuts } }

    public func stop() {
        let sockets = state.withLock { s -> [Int32] in
            s.stopped = true
            return s.sockets
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        _ = sockets
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
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
            state.withLock { $0.sockets += [client, server] }
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

    /// Copies bytes one way; on the client side, cuts both directions once
    /// the marker has gone through.
    private func pump(from source: Int32, to destination: Int32, watch: Bool, pair: Pair) {
        defer { pair.end() }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(source, &buffer, buffer.count)
            guard n > 0 else { return }
            if !watch, case let delay = state.withLock({ $0.latency }), delay > 0 { Thread.sleep(forTimeInterval: delay) }
            let chunk = Array(buffer[0..<n])
            var written = 0
            while written < n {
                let w = chunk[written...].withUnsafeBufferPointer { write(destination, $0.baseAddress, n - written) }
                guard w > 0 else { return }
                written += w
            }
            if watch, let marker = state.withLock({ $0.cutAfter }), Self.contains(chunk, marker) {
                state.withLock {
                    $0.cutAfter = nil
                    $0.cuts += 1
                }
                // The server has the request; the client gets nothing back.
                return
            }
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
