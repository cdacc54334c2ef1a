import Foundation

/// A deliberately small HTTP/1.1 client over a plain socket, for tests: it
/// sends exactly the bytes asked for (oversized bodies, odd headers) and
/// reads the whole response (`Connection: close`).
public struct TestHTTPResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data

    public var text: String { String(decoding: body, as: UTF8.self) }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    public func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw TestEnvironment.Missing(description: "response body is not a JSON object: \(text)")
        }
        return object
    }

    /// `error.code` of Tocsin's error body.
    public var errorCode: String? {
        ((try? json())?["error"] as? [String: Any])?["code"] as? String
    }
}

public struct TestHTTPClient: Sendable {
    public let host: String
    public let port: Int

    public init(host: String = "127.0.0.1", port: Int) {
        self.host = host
        self.port = port
    }

    public func get(_ path: String, headers: [String: String] = [:]) async throws -> TestHTTPResponse {
        try await request("GET", path, headers: headers)
    }

    public func post(_ path: String, json: String, headers: [String: String] = [:]) async throws -> TestHTTPResponse {
        var headers = headers
        headers["Content-Type"] = headers["Content-Type"] ?? "application/json"
        return try await request("POST", path, headers: headers, body: Data(json.utf8))
    }

    public func request(
        _ method: String, _ path: String, headers: [String: String] = [:], body: Data? = nil,
        timeout: TimeInterval = 30
    ) async throws -> TestHTTPResponse {
        let host = self.host, port = self.port
        return try await blocking {
            try Self.exchange(host: host, port: port, method: method, path: path, headers: headers, body: body, timeout: timeout)
        }
    }

    /// Opens a streaming GET (server-sent events) and reads until `until`
    /// holds for the text received so far, or `timeout` passes. `started`
    /// runs once the response head has arrived.
    public func stream(
        _ path: String, headers: [String: String] = [:], timeout: TimeInterval = 15,
        started: @escaping @Sendable () async throws -> Void, until: @escaping @Sendable (String) -> Bool
    ) async throws -> String {
        let host = self.host, port = self.port
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let reader = Task {
            try await blocking { () -> String in
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                defer { close(fd) }
                var tv = timeval(tv_sec: 0, tv_usec: 200_000)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_addr.s_addr = inet_addr(host)
                address.sin_port = UInt16(port).bigEndian
                _ = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                var head = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAccept: text/event-stream\r\n"
                for (name, value) in headers { head += "\(name): \(value)\r\n" }
                head += "\r\n"
                _ = head.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                var text = ""
                var signalled = false
                let deadline = Date().addingTimeInterval(timeout)
                var buffer = [UInt8](repeating: 0, count: 16_384)
                while Date() < deadline {
                    let n = recv(fd, &buffer, buffer.count, 0)
                    if n == 0 { break }
                    if n > 0 { text += String(decoding: buffer[0..<n], as: UTF8.self) }
                    if !signalled && text.contains("\r\n\r\n") {
                        signalled = true
                        readyContinuation.yield()
                    }
                    if until(text) { break }
                }
                readyContinuation.finish()
                return text
            }
        }
        var iterator = ready.makeAsyncIterator()
        if await iterator.next() != nil { try await started() }
        return try await reader.value
    }

    static func exchange(
        host: String, port: Int, method: String, path: String, headers: [String: String], body: Data?, timeout: TimeInterval
    ) throws -> TestHTTPResponse {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestEnvironment.Missing(description: "socket() failed") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // A server that answers early (413) stops reading: sending then stalls
        // until this timeout, after which the response is read.
        var sendTimeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestEnvironment.Missing(description: "cannot connect to \(host):\(port)") }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body, headers.keys.first(where: { $0.lowercased() == "content-length" }) == nil {
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        var outgoing = Data(head.utf8)
        if let body { outgoing.append(body) }
        // A server may answer (413) and close before reading everything:
        // a failed send is fine as long as a response comes back.
        outgoing.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n <= 0 { break }
                offset += n
            }
        }
        var incoming = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            incoming.append(buffer, count: n)
        }
        return try parse(incoming)
    }

    static func parse(_ data: Data) throws -> TestHTTPResponse {
        guard let separator = data.range(of: Data("\r\n\r\n".utf8)) else {
            throw TestEnvironment.Missing(description: "incomplete HTTP response (\(data.count) bytes)")
        }
        let head = String(decoding: data[..<separator.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw TestEnvironment.Missing(description: "bad status line")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = headers[name].map { $0 + ", " + value } ?? value
        }
        var body = Data(data[separator.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            body = dechunk(body)
        }
        return TestHTTPResponse(status: status, headers: headers, body: body)
    }

    static func dechunk(_ data: Data) -> Data {
        var out = Data()
        var index = data.startIndex
        while index < data.endIndex {
            guard let lineEnd = data[index...].range(of: Data("\r\n".utf8)) else { break }
            let sizeText = String(decoding: data[index..<lineEnd.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";")[0], radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            let end = data.index(start, offsetBy: size, limitedBy: data.endIndex) ?? data.endIndex
            out.append(data[start..<end])
            index = data.index(end, offsetBy: 2, limitedBy: data.endIndex) ?? data.endIndex
        }
        return out
    }
}
