import Foundation

/// A PostgreSQL server of a test's own, for tests that stop or restart the
/// server (the shared test server must stay up for the others).
public final class PrivatePostgres: Sendable {
    public let directory: String
    public let port: Int
    let bin: String

    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }

    /// A new server. With `replication`, it can have standbys
    /// (`startStandby()`); with `synchronousStandby` too, a commit waits
    /// until a standby has it, as with Patroni's synchronous mode.
    public static func start(replication: Bool = false, synchronousStandby: Bool = false) async throws -> PrivatePostgres {
        let bin = try TestEnvironment.postgresBinDirectory()
        let directory = TestEnvironment.temporaryDirectory + "/pg-" + randomSuffix()
        let port = try freePort()
        let server = PrivatePostgres(directory: directory, port: port, bin: bin)
        try await blocking {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if getuid() == 0 {
                try server.run("/bin/chown", ["postgres", directory], asPostgres: false)
            }
            try server.run(bin + "/initdb", ["-D", directory + "/data", "-U", "postgres", "--auth=trust", "-E", "UTF8",
                                             "--locale=C.UTF-8", "--no-sync"])
            var conf = """

                listen_addresses = '127.0.0.1'
                unix_socket_directories = ''
                port = \(port)
                fsync = off
                max_connections = 100

                """
            if replication {
                conf += "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nwal_receiver_status_interval = 1s\n"
            }
            conf += synchronousStandby ? "synchronous_standby_names = '*'\nsynchronous_commit = on\n" : "synchronous_commit = off\n"
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/data/postgresql.conf"))
            handle.seekToEndOfFile()
            handle.write(Data(conf.utf8))
            try handle.close()
            try server.runStart()
        }
        return server
    }

    /// A streaming standby of this server (pg_basebackup -R), started.
    public func startStandby() async throws -> PrivatePostgres {
        let directory = TestEnvironment.temporaryDirectory + "/pg-standby-" + randomSuffix()
        let port = try freePort()
        let standby = PrivatePostgres(directory: directory, port: port, bin: bin)
        try await blocking {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if getuid() == 0 { try standby.run("/bin/chown", ["postgres", directory], asPostgres: false) }
            try standby.run(self.bin + "/pg_basebackup", ["-h", "127.0.0.1", "-p", "\(self.port)", "-U", "postgres",
                                                          "-D", directory + "/data", "-R", "-X", "stream", "--no-sync"])
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/data/postgresql.conf"))
            handle.seekToEndOfFile()
            handle.write(Data("\nport = \(port)\nsynchronous_standby_names = ''\n".utf8))
            try handle.close()
            try standby.runStart()
        }
        return standby
    }

    /// Makes a standby the primary (pg_ctl promote, waiting until it accepts writes).
    public func promote() async throws {
        try await blocking { try self.run(self.bin + "/pg_ctl", ["-D", self.directory + "/data", "-w", "-t", "60", "promote"]) }
    }

    /// Stops the server at once (the postmaster and every backend, no
    /// checkpoint), as a crash would.
    public func crash() async throws {
        try await blocking {
            try self.run(self.bin + "/pg_ctl", ["-D", self.directory + "/data", "-m", "immediate", "-w", "stop"])
        }
    }

    init(directory: String, port: Int, bin: String) {
        self.directory = directory
        self.port = port
        self.bin = bin
    }

    private func runStart() throws {
        try run(bin + "/pg_ctl", ["-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60", "start"])
    }

    public func startAgain() async throws {
        try await blocking { try self.runStart() }
    }

    public func stop() async throws {
        try await blocking {
            try self.run(self.bin + "/pg_ctl", ["-D", self.directory + "/data", "-m", "fast", "-w", "stop"])
        }
    }

    public func restart() async throws {
        try await blocking {
            try self.run(self.bin + "/pg_ctl", ["-D", self.directory + "/data", "-m", "fast", "-w", "-t", "60",
                                                "-l", self.directory + "/server.log", "restart"])
        }
    }

    /// Stops the server and removes its files.
    public func destroy() async {
        _ = try? await stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func run(_ executable: String, _ arguments: [String], asPostgres: Bool = true) throws {
        var command = [executable] + arguments
        if asPostgres && getuid() == 0 {
            command = ["/usr/sbin/runuser", "-u", "postgres", "--"] + command
        }
        let log = TestEnvironment.temporaryDirectory + "/pgctl-" + randomSuffix() + ".log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let pid = try Spawn.start(command[0], Array(command.dropFirst()), environment: ProcessInfo.processInfo.environment,
                                  stdout: log, stderr: log)
        let status = Spawn.waitBlocking(pid)
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw TestEnvironment.Missing(description: "\(executable) failed (\(status)): \(output)")
        }
    }
}

/// A TCP port nothing listens on at 127.0.0.1 right now.
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestEnvironment.Missing(description: "cannot bind a port") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
