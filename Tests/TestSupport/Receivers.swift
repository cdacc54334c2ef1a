import Foundation

/// Finds python3 on PATH (the receivers are Python standard-library scripts).
func python3() throws -> String {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let path = "\(dir)/python3"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw TestEnvironment.Missing(description: "python3 not found on PATH")
}

/// Starts scripts/receivers/NAME with python3 and waits for its port.
func launchReceiverScript(_ name: String, _ arguments: [String] = []) async throws -> (TestProcess, Int) {
    let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/receivers/" + name).path
    let process = try TestProcess.launch([script] + arguments, executable: try python3())
    return (process, try await listeningPort(process))
}

/// Waits for a child that prints "listening PORT" and returns the port.
func listeningPort(_ process: TestProcess) async throws -> Int {
    let ok = try await eventually(timeout: .seconds(20)) { process.stdout.contains("listening ") }
    guard ok, let line = process.stdout.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }),
          let port = Int(line.dropFirst("listening ".count)) else {
        throw TestEnvironment.Missing(description: "receiver did not start: \(process.stderr)")
    }
    return port
}

/// A real HTTP receiver on 127.0.0.1 (scripts/receivers/http_receiver.py)
/// that records every request and answers 200, 500, 429 or hangs as told.
public final class HTTPReceiver: Sendable {
    public let process: TestProcess
    public let port: Int
    let client: TestHTTPClient

    public struct Received: Sendable {
        public var at: Double
        public var method: String
        public var path: String
        public var headers: [String: String]
        public var body: String
        public var status: Int

        public func json() throws -> [String: Any] {
            guard let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
                throw TestEnvironment.Missing(description: "request body is not a JSON object")
            }
            return object
        }
    }

    public static func start() async throws -> HTTPReceiver {
        let (process, port) = try await launchReceiverScript("http_receiver.py")
        return HTTPReceiver(process: process, port: port)
    }

    init(process: TestProcess, port: Int) {
        self.process = process
        self.port = port
        self.client = TestHTTPClient(port: port)
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Sets how the receiver answers (see the script's header).
    public func control(_ json: String) async throws {
        _ = try await client.post("/_control", json: json)
    }

    public func requests() async throws -> [Received] {
        let response = try await client.get("/_requests")
        guard let list = try JSONSerialization.jsonObject(with: response.body) as? [[String: Any]] else { return [] }
        return list.map { item in
            Received(at: item["at"] as? Double ?? 0, method: item["method"] as? String ?? "", path: item["path"] as? String ?? "",
                     headers: item["headers"] as? [String: String] ?? [:], body: item["body"] as? String ?? "",
                     status: item["status"] as? Int ?? 0)
        }
    }

    public func stop() {
        process.signal(SIGKILL)
    }
}

/// A one-gauge Prometheus exporter on 127.0.0.1
/// (scripts/receivers/gauge_exporter.py) whose value a test flips.
public struct GaugeExporter: Sendable {
    public let process: TestProcess
    public let port: Int
    let client: TestHTTPClient

    public static func start(name: String = "tocsin_test_gauge") async throws -> GaugeExporter {
        let (process, port) = try await launchReceiverScript("gauge_exporter.py", ["--name", name])
        return GaugeExporter(process: process, port: port, client: TestHTTPClient(port: port))
    }

    /// host:port, for a scrape config.
    public var target: String { "127.0.0.1:\(port)" }

    public func set(_ value: Double) async throws {
        _ = try await client.request("POST", "/set", body: Data("\(value)".utf8))
    }

    public func stop() {
        process.signal(SIGKILL)
    }
}

/// A real SMTP server on 127.0.0.1 (scripts/receivers/smtp_sink.py) that
/// writes every message it accepts to a directory.
public final class SMTPSink: Sendable {
    public let process: TestProcess
    public let port: Int
    public let directory: String

    /// The certificate the sink presents with STARTTLS (self-signed for
    /// 127.0.0.1): the `tls_ca_file` a channel trusts it with. nil without TLS.
    public let caFile: String?

    /// A sink on 127.0.0.1; with `tls`, it offers STARTTLS with a fresh
    /// self-signed certificate and refuses AUTH before it.
    public static func start(user: String? = nil, password: String? = nil, tls: Bool = false) async throws -> SMTPSink {
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/receivers/smtp_sink.py").path
        let directory = TestEnvironment.temporaryDirectory + "/mail-" + randomSuffix()
        var arguments = [script, "--dir", directory]
        if let user, let password { arguments += ["--user", user, "--password", password] }
        var caFile: String?
        if tls {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let cert = directory + "/cert.pem", key = directory + "/key.pem"
            let openssl = try TestProcess.launch(
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                executable: "/usr/bin/openssl")
            guard try await openssl.wait() == 0 else {
                throw TestEnvironment.Missing(description: "openssl could not make a certificate: \(openssl.stderr)")
            }
            arguments += ["--tls-cert", cert, "--tls-key", key]
            caFile = cert
        }
        let process = try TestProcess.launch(arguments, executable: try python3())
        return SMTPSink(process: process, port: try await listeningPort(process), directory: directory, caFile: caFile)
    }

    init(process: TestProcess, port: Int, directory: String, caFile: String? = nil) {
        self.process = process
        self.port = port
        self.directory = directory
        self.caFile = caFile
    }

    /// The messages received so far: (envelope JSON, raw message).
    public func messages() throws -> [(envelope: [String: Any], raw: String)] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".eml") }.sorted()
        return try names.map { name in
            let base = directory + "/" + name.dropLast(4)
            let envelope = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + ".json"))) as? [String: Any] ?? [:]
            return (envelope, try String(contentsOfFile: base + ".eml", encoding: .utf8))
        }
    }

    public func stop() {
        process.signal(SIGKILL)
    }
}
