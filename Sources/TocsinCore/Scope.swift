import Foundation

/// What an API key may do. `admin` implies the others.
public enum Scope: String, Sendable, CaseIterable, Codable, Comparable {
    case ingest
    case read
    /// Post alerts to the Alertmanager API (`POST /api/v2/alerts`): the
    /// key Prometheus, Grafana and amtool send.
    case alerts
    case admin

    public static func < (lhs: Scope, rhs: Scope) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Parses "ingest,read" (order and repeats do not matter).
    public static func parseList(_ text: String) throws -> [Scope] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else {
            throw ScopeError("at least one scope is required: ingest, read, alerts or admin")
        }
        var scopes: Set<Scope> = []
        for part in parts {
            guard let scope = Scope(rawValue: part) else {
                throw ScopeError("unknown scope '\(part)': expected ingest, read, alerts or admin")
            }
            scopes.insert(scope)
        }
        return scopes.sorted()
    }
}

public struct ScopeError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Collection where Element == Scope {
    /// True when these scopes grant `required`.
    public func grants(_ required: Scope) -> Bool {
        contains(.admin) || contains(required)
    }
}
