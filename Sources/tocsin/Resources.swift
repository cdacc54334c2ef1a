import Foundation

/// Finds the files Tocsin ships beside its binary: `migrations/`, `rules/`
/// and the dashboard's `assets/`.
///
/// Looked up in order: the explicit directory (an environment variable such
/// as `MIGRATIONS_DIR`), `<prefix>/share/tocsin/<name>` next to the
/// executable's `bin/`, then `<name>` in each directory above the executable
/// (a source checkout running `.build/…/tocsin`), then the working directory.
enum Resources {
    static func locate(_ name: String, explicit: String? = nil, marker: String) throws -> URL {
        let fm = FileManager.default
        if let explicit, !explicit.isEmpty {
            let url = URL(fileURLWithPath: explicit)
            guard fm.fileExists(atPath: url.appendingPathComponent(marker).path) else {
                throw ResourceError("\(explicit) does not contain \(marker)")
            }
            return url
        }
        var candidates: [URL] = []
        let executable = URL(fileURLWithPath: executablePath()).resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        candidates.append(directory.deletingLastPathComponent().appendingPathComponent("share/tocsin/\(name)"))
        while directory.path != "/" && !directory.path.isEmpty {
            candidates.append(directory.appendingPathComponent(name))
            directory = directory.deletingLastPathComponent()
        }
        candidates.append(URL(fileURLWithPath: fm.currentDirectoryPath).appendingPathComponent(name))
        for candidate in candidates where fm.fileExists(atPath: candidate.appendingPathComponent(marker).path) {
            return candidate
        }
        throw ResourceError("cannot find the \(name)/ directory beside the tocsin binary or in the working directory")
    }

    static func executablePath() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }
}

struct ResourceError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
