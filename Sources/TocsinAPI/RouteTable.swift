import Synchronization

/// The router's routes, filled in once every route is registered.
final class RouteTable: Sendable {
    private let entries = Mutex<[(segments: [String], method: String)]>([])

    func load(_ routes: [(path: String, method: String)]) {
        entries.withLock { $0 = routes.map { (Self.segments($0.path), $0.method) } }
    }

    static func segments(_ path: String) -> [String] { path.split(separator: "/").map(String.init) }

    /// The methods registered for the route `path` reaches. Like the
    /// router, a constant segment wins over a parameter ("{x}"): only the
    /// most specific matching path counts.
    func methods(for path: String) -> [String] {
        let parts = Self.segments(path)
        let methods: [String] = entries.withLock { entries in
            let matching = entries.filter { entry in
                entry.segments.count == parts.count
                    && zip(entry.segments, parts).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
            }
            // Specificity: which segments are constants, compared left to right.
            func key(_ segments: [String]) -> [Bool] { segments.map { !$0.hasPrefix("{") } }
            guard let best = matching.map({ key($0.segments) }).max(by: { $0.lexicographicallyPrecedes($1) { !$0 && $1 } })
            else { return [] }
            return matching.filter { key($0.segments) == best }.map(\.method)
        }
        return Array(Set(methods)).sorted()
    }
}
