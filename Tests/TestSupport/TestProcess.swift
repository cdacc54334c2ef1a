import Foundation
import Synchronization

/// A child process (usually the tocsin binary) with its output collected.
///
/// Output goes to files, not pipes: children started concurrently by other
/// tests inherit open pipe ends, which would keep a pipe from ever reaching
/// end-of-file.
public final class TestProcess: Sendable {
    public let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    private let exited = Mutex<Int32?>(nil)

    /// Starts `executable` (default: the tocsin binary) with `arguments` and
    /// the test's environment plus `environment`.
    public static func launch(
        _ arguments: [String], executable: String? = nil, environment: [String: String] = [:]
    ) throws -> TestProcess {
        var env = ProcessInfo.processInfo.environment
        env["LOG_FORMAT"] = env["LOG_FORMAT"] ?? "json"
        for (key, value) in environment { env[key] = value }
        let base = TestEnvironment.temporaryDirectory + "/proc-" + randomSuffix()
        let pid = try Spawn.start(
            try executable ?? TestEnvironment.tocsinBinary(), arguments, environment: env,
            stdout: base + ".out", stderr: base + ".err")
        return TestProcess(pid: pid, stdoutPath: base + ".out", stderrPath: base + ".err")
    }

    init(pid: pid_t, stdoutPath: String, stderrPath: String) {
        self.pid = pid
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
    }

    deinit {
        // Never leave a child behind, whatever the test did.
        if exitStatus == nil {
            kill(pid, SIGKILL)
            _ = Spawn.waitBlocking(pid)
        }
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    public var exitStatus: Int32? {
        exited.withLock { status in
            if status == nil { status = Spawn.poll(pid) }
            return status
        }
    }

    /// Waits for the process to end and returns its exit status.
    @discardableResult
    public func wait(timeout: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = exitStatus { return status }
            try await Task.sleep(for: .milliseconds(20))
        }
        signal(SIGKILL)
        throw TestEnvironment.Missing(description: "process did not exit within \(timeout); stderr: \(stderr)")
    }

    /// Sends `signal` unless the process has ended and been reaped: its pid
    /// may belong to another process by then (a PostgreSQL backend of the
    /// shared test server, say, which a stray SIGTERM ends while it starts).
    /// Reaping and signalling take the same lock, so they cannot cross.
    public func signal(_ signal: Int32) {
        exited.withLock { status in
            if status == nil { status = Spawn.poll(pid) }
            if status == nil { kill(pid, signal) }
        }
    }

    /// Runs a tocsin command to completion.
    public static func run(
        _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try launch(arguments, environment: environment)
        let status = try await process.wait(timeout: timeout)
        return (status, process.stdout, process.stderr)
    }
}
