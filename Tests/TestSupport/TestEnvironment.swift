import Foundation
import PostgresClient
import Synchronization

/// Where the tests find PostgreSQL, the tocsin binary and the repository.
/// `scripts/test.sh` sets the variables; a test that needs one and finds it
/// missing fails with a message saying so (never silently skips).
public enum TestEnvironment {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    /// The admin connection of the test server (`DATABASE_URL`).
    public static func adminURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
            throw Missing(description: "DATABASE_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
        }
        return url
    }

    /// The repository root, found from this file's path.
    public static let repositoryRoot: URL = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }()

    public static var migrationsDirectory: String {
        repositoryRoot.appendingPathComponent("migrations").path
    }

    public static func tocsinBinary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["TOCSIN_BIN"], !path.isEmpty { return path }
        let fallback = repositoryRoot.appendingPathComponent(".build/debug/tocsin").path
        guard FileManager.default.isExecutableFile(atPath: fallback) else {
            throw Missing(description: "tocsin binary not found: run `swift build` first or set TOCSIN_BIN")
        }
        return fallback
    }

    public static func postgresBinDirectory() throws -> String {
        if let dir = ProcessInfo.processInfo.environment["TOCSIN_TEST_PG_BINDIR"], !dir.isEmpty { return dir }
        let candidates = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = candidates.sorted(by: { $0.compare($1, options: .numeric) == .orderedAscending }).last else {
            throw Missing(description: "PostgreSQL server binaries not found: set TOCSIN_TEST_PG_BINDIR")
        }
        return "/usr/lib/postgresql/\(version)/bin"
    }

    public static var temporaryDirectory: String {
        ProcessInfo.processInfo.environment["TOCSIN_TEST_TMPDIR"] ?? NSTemporaryDirectory()
    }

    /// Replaces the database name in a libpq URI.
    public static func url(_ base: String, database: String) -> String {
        guard var components = URLComponents(string: base) else { return base + " dbname=\(database)" }
        components.path = "/" + database
        return components.string ?? base
    }
}

/// Runs blocking work (libpq, sockets, waiting for processes) off Swift's
/// cooperative threads, which the server under test needs.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try body() })
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes.
public func eventually(
    timeout: Duration = .seconds(20),
    interval: Duration = .milliseconds(50),
    _ condition: @Sendable () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}

public func randomSuffix() -> String {
    String(UInt64.random(in: 0...UInt64.max), radix: 36)
}

/// A value shared between concurrent test tasks.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    public init(_ value: Value) { mutex = Mutex(value) }
    public func withLock<T: Sendable>(_ body: (inout Value) throws -> T) rethrows -> T {
        try mutex.withLock { try body(&$0) }
    }
    public var value: Value { mutex.withLock { $0 } }
}
