import Foundation
import Testing
import TocsinCore

@Suite("Configuration and scopes")
struct ConfigurationTests {
    @Test("defaults apply when variables are unset or empty")
    func defaults() throws {
        let config = try Configuration.fromEnvironment(["PORT": "", "HOST": "  "])
        #expect(config.port == 8080)
        #expect(config.host == "127.0.0.1")
        #expect(config.logFormat == .json)
        #expect(config.databasePoolSize == 10)
        #expect(config.maxBodyBytes == 10 * 1024 * 1024)
        #expect(config.databaseURL == nil)
        #expect(throws: Configuration.Error.self) { try config.requireDatabaseURL() }
    }

    @Test("malformed values name the variable", arguments: [
        ("PORT", "eighty"), ("PORT", "70000"), ("DB_POOL_SIZE", "0"), ("LOG_LEVEL", "loud"), ("LOG_FORMAT", "xml"),
        ("MAX_BODY_SIZE", "-1"),
    ])
    func malformed(name: String, value: String) {
        do {
            _ = try Configuration.fromEnvironment([name: value])
            Issue.record("\(name)=\(value) accepted")
        } catch {
            #expect(String(describing: error).contains(name))
        }
    }

    @Test("scopes parse and admin implies the others")
    func scopes() throws {
        #expect(try Scope.parseList("read,ingest,read") == [.ingest, .read])
        #expect(throws: ScopeError.self) { try Scope.parseList("read,write") }
        #expect(throws: ScopeError.self) { try Scope.parseList("") }
        #expect(throws: ScopeError.self) { try Scope.parseList("read,") }
        #expect([Scope.admin].grants(.ingest))
        #expect([Scope.admin].grants(.read))
        #expect(![Scope.read].grants(.ingest))
        #expect(![Scope.ingest, .read].grants(.admin))
    }

    @Test("every variable is documented once")
    func documented() {
        let names = Configuration.variables.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.contains("DATABASE_URL"))
    }
}

@Suite("README")
struct ReadmeTests {
    @Test("the README's table lists every environment variable with its default")
    func table() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let readme = try String(contentsOf: url, encoding: .utf8)
        for variable in Configuration.variables {
            let defaultText = variable.defaultValue.hasPrefix("(") ? variable.defaultValue : "`\(variable.defaultValue)`"
            #expect(readme.contains("| `\(variable.name)` | \(defaultText) |"), "\(variable.name) is missing from the README")
        }
    }
}
