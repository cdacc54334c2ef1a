import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// Test-only (`TOCSIN_CONTRACT_LOG`): appends every exchange — method, path,
/// status, content type, headers, body — as a JSON line, so the test run
/// can check every response the suite received against docs/openapi.yaml
/// (scripts/check_contract.py). Streaming bodies are recorded without
/// their content.
struct ContractRecorder: RouterMiddleware {
    typealias Context = TocsinRequestContext
    let path: String

    static let lock = Mutex(())

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        let contentType = response.headers[.contentType] ?? ""
        guard !contentType.hasPrefix("text/event-stream") else {
            write(request, response, body: nil)
            return response
        }
        // Collect the body (it is a buffer for every non-streaming answer),
        // record it, and send the same bytes.
        var collected = ByteBuffer()
        var body = response.body
        let writer = CollectingWriter()
        try await body.write(writer)
        collected = writer.buffer.withLock { $0 }
        body = ResponseBody(byteBuffer: collected)
        write(request, response, body: String(buffer: collected))
        var copy = response
        copy.body = body
        return copy
    }

    func write(_ request: Request, _ response: Response, body: String?) {
        var headers: [String: String] = [:]
        for field in response.headers { headers[field.name.canonicalName] = field.value }
        var record: [String: Any] = [
            "method": request.method.rawValue, "path": request.uri.description, "status": Int(response.status.code),
            "content_type": response.headers[.contentType] ?? "", "headers": headers,
        ]
        if let body { record["body"] = body }
        guard var line = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else { return }
        line.append(0x0A)
        // One write(2) of the whole line with O_APPEND: the tocsin processes a
        // test launches record to the same file, and a seek to the end then a
        // write would interleave their lines.
        Self.lock.withLock { _ in
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
            guard fd >= 0 else { return }
            defer { close(fd) }
            line.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written <= 0 { return }
                    offset += written
                }
            }
        }
    }
}

/// A response body writer that keeps what is written.
final class CollectingWriter: ResponseBodyWriter, Sendable {
    let buffer = Mutex(ByteBuffer())
    func write(_ buffer: ByteBuffer) async throws {
        _ = self.buffer.withLock { $0.writeImmutableBuffer(buffer) }
    }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
