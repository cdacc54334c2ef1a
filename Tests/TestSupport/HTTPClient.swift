import CCurl
import Foundation
import Synchronization

/// An HTTP response as the tests read it.
public struct TestHTTPResponse: Sendable {
    public var status: Int
    /// Lowercased names; repeated headers joined with ", ".
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

/// A real HTTP/1.1 client (libcurl), for tests: it sends the headers asked
/// for (odd ones included: a declared Content-Length that lies, say) and
/// reads the whole response, or streams it.
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
        let url = "http://\(host):\(port)\(path)"
        return try await blocking {
            try Self.perform(method: method, url: url, headers: headers, body: body, timeout: timeout, onBody: nil)
        }
    }

    /// Opens a streaming GET (server-sent events) and reads until `until`
    /// holds for the text received so far (the response head, then the
    /// body), or `timeout` passes. `started` runs once the first bytes of
    /// the body have arrived.
    public func stream(
        _ path: String, headers: [String: String] = [:], timeout: TimeInterval = 15,
        started: @escaping @Sendable () async throws -> Void, until: @escaping @Sendable (String) -> Bool
    ) async throws -> String {
        let url = "http://\(host):\(port)\(path)"
        var headers = headers
        headers["Accept"] = "text/event-stream"
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let received = Locked("")
        let fixedHeaders = headers
        let reader = Task {
            try await blocking { () -> TestHTTPResponse in
                defer { readyContinuation.finish() }
                return try Self.perform(method: "GET", url: url, headers: fixedHeaders, body: nil, timeout: timeout) { chunk in
                    let text = received.withLock { text -> String in
                        if text.isEmpty { readyContinuation.yield() }
                        text += chunk
                        return text
                    }
                    return !until(text)
                }
            }
        }
        var iterator = ready.makeAsyncIterator()
        if await iterator.next() != nil { try await started() }
        let response = try await reader.value
        let head = response.headers.map { "\($0.key): \($0.value)" }.sorted().joined(separator: "\r\n")
        return "HTTP/1.1 \(response.status)\r\n\(head)\r\n\r\n" + received.value
    }

    /// Receives body chunks; returning false stops the transfer.
    final class BodySink: @unchecked Sendable {
        let onBody: (String) -> Bool
        init(_ onBody: @escaping (String) -> Bool) { self.onBody = onBody }
    }

    static func perform(method: String, url: String, headers: [String: String], body: Data?, timeout: TimeInterval,
                        onBody: ((String) -> Bool)?) throws -> TestHTTPResponse {
        var lines = headers.map { "\($0.key): \($0.value)" }
        if body == nil, method != "GET" { lines.append("Content-Length: 0") }
        let cHeaders = lines.map { strdup($0) }
        defer { cHeaders.forEach { free($0) } }
        let sink = onBody.map(BodySink.init)
        let context = sink.map { Unmanaged.passRetained($0).toOpaque() }
        defer { if let context { Unmanaged<BodySink>.fromOpaque(context).release() } }
        let callback: tocsin_body_callback? = sink == nil ? nil : { context, data, length in
            guard let context, let data else { return 1 }
            let sink = Unmanaged<BodySink>.fromOpaque(context).takeUnretainedValue()
            let text = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
            return sink.onBody(text) ? 0 : 1
        }
        let payload = body ?? Data()
        var response = tocsin_http_response()
        method.withCString { cMethod in
            url.withCString { cURL in
                payload.withUnsafeBytes { raw in
                    cHeaders.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer { headerPointers in
                        var request = tocsin_http_request(
                            method: cMethod, url: cURL, headers: headerPointers.baseAddress, header_count: headerPointers.count,
                            body: body == nil ? nil : raw.baseAddress?.assumingMemoryBound(to: CChar.self), body_length: raw.count,
                            connect_timeout_ms: 5_000, total_timeout_ms: Int(timeout * 1000), max_response_bytes: 1 << 26,
                            share: nil, collect_headers: 1, on_body: callback, on_body_context: context)
                        tocsin_http_perform(&request, &response)
                    }
                }
            }
        }
        defer { tocsin_http_response_free(&response) }
        // A stopped stream (23: the callback said stop) or one that ran to its
        // timeout (28) still has its response.
        let code = response.curl_code
        guard code == 0 || ((code == 23 || code == 28) && onBody != nil) else {
            let message = withUnsafeBytes(of: response.error) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw TestEnvironment.Missing(description: "HTTP request to \(url) failed: \(message)")
        }
        let headerText = response.headers.map { String(cString: $0) } ?? ""
        let bodyData = response.body.map { Data(bytes: $0, count: response.body_length) } ?? Data()
        return TestHTTPResponse(status: Int(response.status), headers: parseHeaders(headerText), body: bodyData)
    }

    /// The headers of the last response in the text (a 100 Continue, if
    /// any, comes before it).
    static func parseHeaders(_ text: String) -> [String: String] {
        let blocks = text.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
        var headers: [String: String] = [:]
        for line in (blocks.last ?? "").components(separatedBy: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = headers[name].map { $0 + ", " + value } ?? value
        }
        return headers
    }
}
