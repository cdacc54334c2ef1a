import CCurl
import Foundation
import NIOPosix
import Synchronization

/// HTTP and SMTP through libcurl, on a thread pool of their own (curl's
/// easy interface blocks). Every call has a 5 s connect timeout and a 15 s
/// total timeout unless told otherwise. HTTP connections are kept alive and
/// reused per destination (a curl share of the connection, DNS and TLS
/// session caches), so a burst of messages to Slack opens one connection,
/// not one per message.
///
/// libcurl does not support one connection cache used by concurrent
/// threads (CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT: a known bug, which can
/// close a connection twice, that is, someone else's file descriptor), so
/// each transfer holds a share of its own while it runs: the most recently
/// returned one, whose connections are the warmest. There are never more
/// shares than transfers that ran at once.
public final class Transport: Sendable {
    public struct HTTPResult: Sendable, Equatable {
        /// 0 when no response arrived.
        public var status: Int
        /// Set when curl failed (timeout, connection refused, …). Never
        /// contains the URL's path or query.
        public var transportError: String?
        public var retryAfter: String?
        public var body: String
        /// The request went over a connection kept from an earlier one.
        public var reusedConnection = false
    }

    public struct MailResult: Sendable, Equatable {
        public var smtpCode: Int
        public var transportError: String?
    }

    public let connectTimeoutMs: Int
    public let totalTimeoutMs: Int
    private let threads: NIOThreadPool
    private let shares = Shares()

    /// A curl share, freed when its pool is. Used by one transfer at a time.
    final class Share: @unchecked Sendable {
        let handle: OpaquePointer?
        init() { handle = tocsin_curl_share_new() }
        deinit { tocsin_curl_share_free(handle) }
    }

    /// The shares not in use, most recently returned last.
    final class Shares: Sendable {
        private let idle = Mutex<[Share]>([])
        private let made = Atomic<Int>(0)

        /// Runs `body` with a share no other transfer uses meanwhile.
        func with<T>(_ body: (Share) -> T) -> T {
            let share = idle.withLock { $0.popLast() } ?? {
                made.add(1, ordering: .relaxed)
                return Share()
            }()
            defer { idle.withLock { $0.append(share) } }
            return body(share)
        }

        /// How many shares were made: at most the transfers that ran at once.
        var count: Int { made.load(ordering: .relaxed) }
    }

    /// How many curl shares the transport made (tests).
    public var shareCount: Int { shares.count }

    public init(threads: Int = 8, connectTimeoutMs: Int = 5_000, totalTimeoutMs: Int = 15_000) {
        _ = Self.initialised
        self.connectTimeoutMs = connectTimeoutMs
        self.totalTimeoutMs = totalTimeoutMs
        self.threads = NIOThreadPool(numberOfThreads: threads)
        self.threads.start()
    }

    /// The time a message may take in all: the dispatcher's lease must be
    /// longer than this.
    public var totalTimeout: Duration { .milliseconds(totalTimeoutMs) }

    private static let initialised: Bool = {
        tocsin_curl_global_init() == 0
    }()

    public func shutdown() async {
        try? await threads.shutdownGracefully()
    }

    public func post(url: String, headers: [String], body: Data) async throws -> HTTPResult {
        let connect = connectTimeoutMs, total = totalTimeoutMs, shares = self.shares
        return try await threads.runIfActive {
            shares.with { share in
                Self.perform(method: "POST", url: url, headers: headers, body: body, connectTimeoutMs: connect,
                             totalTimeoutMs: total, share: share)
            }
        }
    }

    static func perform(method: String, url: String, headers: [String], body: Data, connectTimeoutMs: Int,
                        totalTimeoutMs: Int, share: Share?) -> HTTPResult {
        let cHeaders = headers.map { strdup($0) }
        defer { cHeaders.forEach { free($0) } }
        var response = tocsin_http_response()
        method.withCString { cMethod in
            url.withCString { cURL in
                body.withUnsafeBytes { raw in
                    cHeaders.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer { headerPointers in
                        var request = tocsin_http_request(
                            method: cMethod, url: cURL, headers: headerPointers.baseAddress, header_count: headerPointers.count,
                            body: raw.baseAddress?.assumingMemoryBound(to: CChar.self), body_length: raw.count,
                            connect_timeout_ms: connectTimeoutMs, total_timeout_ms: totalTimeoutMs, max_response_bytes: 65_536,
                            share: share?.handle, collect_headers: 0, on_body: nil, on_body_context: nil)
                        tocsin_http_perform(&request, &response)
                    }
                }
            }
        }
        defer { tocsin_http_response_free(&response) }
        let error = response.curl_code == 0 ? nil : withUnsafeBytes(of: response.error) { Self.string($0) }
        let retryAfter = withUnsafeBytes(of: response.retry_after) { Self.string($0) }
        let bodyText = response.body.map { String(cString: $0) } ?? ""
        return HTTPResult(status: Int(response.status), transportError: error.map(Self.scrub),
                          retryAfter: retryAfter.isEmpty ? nil : retryAfter, body: bodyText, reusedConnection: response.reused == 1)
    }

    public func sendMail(url: String, username: String?, password: String?, from: String, to: [String], message: String,
                         startTLS: Int, caFile: String? = nil) async throws -> MailResult {
        let connect = connectTimeoutMs, total = totalTimeoutMs
        return try await threads.runIfActive {
            let recipients = to.map { strdup("<\($0)>") }
            defer { recipients.forEach { free($0) } }
            var response = tocsin_mail_response()
            let bytes = Array(message.utf8)
            url.withCString { cURL in
              (caFile ?? "").withCString { cCAFile in
                (username ?? "").withCString { cUser in
                    (password ?? "").withCString { cPassword in
                        "<\(from)>".withCString { cFrom in
                            recipients.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer { rcpt in
                                bytes.withUnsafeBufferPointer { body in
                                    body.baseAddress!.withMemoryRebound(to: CChar.self, capacity: body.count) { cBody in
                                        var request = tocsin_mail_request(
                                            url: cURL, username: username == nil ? nil : cUser,
                                            password: password == nil ? nil : cPassword, from: cFrom,
                                            recipients: rcpt.baseAddress, recipient_count: rcpt.count, message: cBody,
                                            message_length: body.count, starttls: Int32(startTLS),
                                            ca_file: caFile == nil ? nil : cCAFile,
                                            connect_timeout_ms: connect, total_timeout_ms: total)
                                        tocsin_mail_send(&request, &response)
                                    }
                                }
                            }
                        }
                    }
                }
              }
            }
            let error = response.curl_code == 0 ? nil : withUnsafeBytes(of: response.error) { Self.string($0) }
            return MailResult(smtpCode: Int(response.smtp_code), transportError: error.map(Self.scrub))
        }
    }

    static func string(_ raw: UnsafeRawBufferPointer) -> String {
        let bytes = raw.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// curl's messages name hosts and ports, never paths; this also cuts
    /// anything URL-like to its host, to be sure no secret path leaks.
    static func scrub(_ message: String) -> String {
        message.split(separator: " ").map { word -> String in
            guard word.contains("://"), let components = URLComponents(string: String(word)), let host = components.host else {
                return String(word)
            }
            return "\(components.scheme ?? "http")://\(host)"
        }.joined(separator: " ")
    }
}
