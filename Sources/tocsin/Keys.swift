import ArgumentParser
import Foundation
import TocsinCore
import TocsinStore

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke API keys.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key. The key is printed once, alone on the last line of stdout; only its hash is stored.")

        @OptionGroup var global: GlobalOptions

        @Option(name: .customLong("scope"), help: ArgumentHelp(
            "Comma-separated scopes: ingest (push metrics), read (dashboard and API reads), alerts (post alerts to /api/v2/alerts: Prometheus, Grafana, amtool), admin (everything).",
            valueName: "scope[,scope]"))
        var scope: String

        @Option(name: .customLong("name"), help: ArgumentHelp(
            "A unique name for the key, e.g. uploader-prod (letters, digits, . _ @ -).", valueName: "name"))
        var name: String

        func run() async throws {
            try await runCommand {
                let scopes = try Scope.parseList(scope)
                try APIKeyRepository.validate(name: name)
                try await withOneShotStore(global) { store in
                    let (key, record) = try await store.apiKeys.create(name: name, scopes: scopes)
                    print("created key '\(record.name)' with scopes \(record.scopes.map(\.rawValue).joined(separator: ",")); store it now, it is not shown again:")
                    print(key)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (names and scopes; never the keys).")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await runCommand {
                try await withOneShotStore(global) { store in
                    let records = try await store.apiKeys.list()
                    let rows = [["NAME", "SCOPES", "CREATED", "LAST USED", "STATUS"]] + records.map { record in
                        [
                            record.name,
                            record.scopes.map(\.rawValue).joined(separator: ","),
                            Self.format(record.createdAt),
                            record.lastUsedAt.map(Self.format) ?? "never",
                            record.revokedAt.map { "revoked " + Self.format($0) } ?? "active",
                        ]
                    }
                    print(TextTable.render(rows))
                }
            }
        }

        static func format(_ date: Date) -> String {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime]
            return formatter.string(from: date)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke the active key with this name; it stops working at once.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The key's name.")
        var name: String

        func run() async throws {
            try await runCommand {
                try await withOneShotStore(global) { store in
                    try await store.apiKeys.revoke(name: name)
                    print("revoked key '\(name)'")
                }
            }
        }
    }
}
