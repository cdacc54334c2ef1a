import Foundation
import Hummingbird
import Logging
import TocsinEngine
import TestSupport
import Testing
@testable import TocsinAPI
@testable import TocsinCore
@testable import TocsinStore

/// Keeps docs/openapi.yaml honest: the (method, path) pairs it documents are
/// exactly the routes of the router the server runs, every path parameter is
/// declared, and the documented response objects have exactly the keys the
/// code encodes.
///
/// The spec is read with a small indentation-based reader (Yams is a
/// dependency of TocsinCore only), so openapi.yaml keeps to plain block
/// mappings with two-space indentation.
@Suite("docs/openapi.yaml matches the router and the encoders")
struct OpenAPITests {
    static let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]

    static func spec() throws -> SpecReader {
        let url = TestEnvironment.repositoryRoot.appendingPathComponent("docs/openapi.yaml")
        return SpecReader(text: try String(contentsOf: url, encoding: .utf8))
    }

    /// `/api/rules/{name}` → `/api/rules/{}`: parameter names do not change the route.
    static func normalise(_ path: String) -> String {
        path.replacingOccurrences(of: #"\{[^}/]*\}"#, with: "{}", options: .regularExpression)
    }

    /// The routes of the router `tocsin serve` runs, built with the default
    /// configuration (so `/metrics` is on the main port). Nothing connects
    /// to the database: the pool opens connections on first use.
    static func routerRoutes() async throws -> [(method: String, path: String)] {
        var config = Configuration()
        config.databaseURL = try TestEnvironment.adminURL()
        config.migrationsDirectory = TestEnvironment.migrationsDirectory
        var logger = Logger(label: "test.openapi")
        logger.logLevel = .critical
        let store = try Store(configuration: .init(databaseURL: try config.requireDatabaseURL()),
                              migrator: Migrator(migrations: []), logger: logger)
        let events = store.makeEventStream(topics: APIDependencies.topics)
        let dependencies = APIDependencies(
            store: store, events: events, checks: CheckRunner(evaluator: RuleEvaluator(store: store, workerID: "test")),
            backtests: BacktestRunner(store: store, retentionDays: 30))
        let router = buildRouter(config: config, dependencies: dependencies, assets: try DashboardAssets.load(),
                                 hub: AlertStreamHub(store: store, events: events, logger: logger))
        let routes = router.routes.map { (method: $0.method.rawValue.lowercased(), path: $0.path.description) }
        await store.close()
        return routes
    }

    @Test("every route of the router is in the spec, and nothing else")
    func routesMatch() async throws {
        let spec = try Self.spec()
        let documented = Set(spec.operations().map { "\($0.method) \(Self.normalise($0.path))" })
        let routes = try await Self.routerRoutes()
        let served = Set(routes.map { "\($0.method) \(Self.normalise($0.path))" })
        #expect(!served.isEmpty)
        let undocumented = served.subtracting(documented).sorted()
        let missing = documented.subtracting(served).sorted()
        #expect(undocumented.isEmpty, "routes missing from docs/openapi.yaml: \(undocumented)")
        #expect(missing.isEmpty, "docs/openapi.yaml documents routes the router does not have: \(missing)")
        // The same parameter names, too.
        let exactDocumented = Set(spec.operations().map { "\($0.method) \($0.path)" })
        let exactServed = Set(routes.map { "\($0.method) \($0.path)" })
        #expect(exactServed.subtracting(exactDocumented).isEmpty,
                "path parameters named differently: \(exactServed.subtracting(exactDocumented).sorted())")
    }

    @Test("every path parameter is declared, and every operation has responses and a unique operationId")
    func operationsAreComplete() throws {
        let spec = try Self.spec()
        var operationIDs: [String] = []
        for operation in spec.operations() {
            let body = spec.operationLines(path: operation.path, method: operation.method)
            let text = body.joined(separator: "\n")
            for match in operation.path.matches(of: /\{([^}]+)\}/) {
                let name = String(match.1)
                #expect(text.contains("- name: \(name)\n") && text.contains("in: path"),
                        "\(operation.method) \(operation.path): path parameter \(name) is not declared")
            }
            #expect(body.contains { $0.hasPrefix("      responses:") }, "\(operation.method) \(operation.path): no responses")
            if let line = body.first(where: { $0.hasPrefix("      operationId: ") }) {
                operationIDs.append(String(line.dropFirst("      operationId: ".count)))
            } else {
                Issue.record("\(operation.method) \(operation.path): no operationId")
            }
        }
        #expect(Set(operationIDs).count == operationIDs.count, "duplicate operationIds")
    }

    // MARK: Response objects

    /// Encodes `value` as the API does and returns the object's keys.
    static func keys(_ value: some Encodable) throws -> Set<String> {
        let data = try APIJSON.encoder.encode(value)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return Set(object.keys)
    }

    /// The schema's properties must be the encoded keys; its required list,
    /// the keys always present (`optional` lists those the code omits when
    /// they have no value).
    static func check(_ schema: String, _ value: some Encodable, optional: Set<String> = [],
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let spec = try spec()
        let properties = Set(spec.schemaProperties(schema))
        let required = Set(spec.schemaRequired(schema))
        let encoded = try keys(value)
        #expect(properties == encoded.union(optional), "\(schema): properties \(properties.sorted()) vs encoded \(encoded.sorted())",
                sourceLocation: sourceLocation)
        #expect(required == encoded.subtracting(optional), "\(schema): required \(required.sorted())",
                sourceLocation: sourceLocation)
    }

    static let alert = Alert(
        id: 1, rule: "high_error_rate", severity: .error, status: .firing, groupKey: "tiktok", platform: "tiktok",
        value: 0.2, threshold: 0.05, comparison: ">", samples: 10, description: "d", runbookURL: nil, startedAt: 1,
        firedAt: 1, lastEvaluatedAt: 2, acknowledgedAt: nil, acknowledgedBy: nil, acknowledgeNote: nil, resolvedAt: nil,
        resolvedBy: nil, resolution: nil, resolveNote: nil, labels: ["team": "integrations"])

    @Test("response objects: the documented keys are the encoded keys")
    func responseObjects() throws {
        try Self.check("Alert", AlertBody(Self.alert))
        try Self.check("AlertTransition", TransitionBody(AlertTransition(
            id: 1, alertID: 1, kind: .fired, from: .pending, to: .firing, value: nil, threshold: 1, samples: 3,
            actor: "worker:w", note: nil, resolution: nil, at: 1)))
        let group = GroupResult(rule: "r", groupKey: "tiktok", value: 1, samples: 2, outcome: .ok)
        try Self.check("GroupResult", GroupResultBody(group))
        #expect(try Self.keys(GroupResultBody(GroupResult(rule: "r", groupKey: nil, value: nil, samples: 0, outcome: .noData)))
                == Self.keys(GroupResultBody(group)))
        try Self.check("Notification", NotificationBody(NotificationRecord(
            id: 1, alertID: 1, rule: "r", channel: "slack", channelKind: .slack, transition: .fired, sequence: 0,
            status: .pending, attempts: 0, lastError: nil, lastStatusCode: nil, createdAt: 1, nextAttemptAt: 1, sentAt: nil)))
        try Self.check("Worker", WorkerBody(WorkerInfo(
            id: "w", host: "h", pid: 1, roles: ["worker"], startedAt: 1, lastHeartbeat: 1, lastCheckAt: nil,
            lastCheckDurationMs: nil, evaluations: 0, alertsFired: 0, stopped: false, stale: false)))
        let backtest = BacktestBody(
            rule: Rule(name: "r", kind: .count, metric: "oauth.failure", threshold: 1), range: TimeRange(since: 0, until: 60),
            result: Backtest.Result(
                steps: [Backtest.Step(at: 1, groupKey: "", transition: .fired, value: 1, samples: 1, resolution: nil)],
                alerts: [Backtest.SimulatedAlert(groupKey: "", startedAt: 1, firedAt: nil, resolvedAt: nil, resolution: nil,
                                                 worstValue: nil)],
                evaluations: 1))
        try Self.check("BacktestStep", backtest.steps[0])
        try Self.check("SimulatedAlert", backtest.alerts[0])
        try Self.check("Session", SessionBody(name: "ops", scopes: [.read], csrfToken: "t", expiresAt: 1))
        try Self.check("Silence", SilenceBody(
            Silence(id: 1, rule: "r", platform: nil, severity: nil, labels: [:], startsAt: 1, endsAt: 2,
                    comment: "c", createdBy: "ops"),
            now: 1))
        let rule = Rule(name: "r", kind: .count, metric: "oauth.failure", threshold: 1)
        let view = RuleBody(
            StoredRule(id: 1, rule: rule, enabled: true, nextDueAt: 1, lastEvaluatedAt: nil),
            groups: [RuleRepository.GroupState(groupKey: "", status: .firing, value: 2, samples: 2, since: 1, alertID: 1)],
            last: RuleRepository.LastEvaluation(at: 1, durationMs: 1, workerID: "w", trigger: .schedule, groups: [group]))
        try Self.check("RuleView", view)

        let summary = SummaryBody(MetricsSummary(range: TimeRange(since: 0, until: 60), aggregates: [
            .init(platform: "tiktok", isTotal: false, name: "upload.success", count: 1, average: 1, p95: nil),
            .init(platform: nil, isTotal: true, name: "upload.success", count: 1, average: 1, p95: nil),
        ]))
        try Self.check("MetricsSummary", summary)
        try Self.check("SummaryGroup", summary.totals)
        #expect(try Self.keys(summary.platforms[0]).contains("platform"))
    }

    @Test("the error body is {error: {code, message, details: [{index, field, reason}]}}, as documented")
    func errorBody() async throws {
        let spec = try Self.spec()
        #expect(spec.schemaRequired("Error") == ["error"])
        let text = spec.schemaLines("Error").joined(separator: "\n")
        for key in ["code:", "message:", "details:", "index:", "field:", "reason:"] {
            #expect(text.contains(key), "the Error schema lacks \(key)")
        }
        try await withTestDatabase { db in
            let key = try await db.createKey(scopes: [.ingest])
            try await withRunningApp(db) { app in
                let response = try await app.client.post("/api/metrics", json: #"[{"name": "upload.success"}, {"platform": "tiktok"}]"#,
                                                         headers: ["Authorization": "Bearer \(key)"])
                #expect(response.status == 400)
                let object = try response.json()
                #expect(Set(object.keys) == ["error"])
                let inner = try #require(object["error"] as? [String: Any])
                #expect(Set(inner.keys) == ["code", "message", "details"])
                let detail = try #require((inner["details"] as? [[String: Any]])?.first)
                #expect(Set(detail.keys) == ["index", "field", "reason"])
                #expect(detail["index"] as? Int == 1 && detail["field"] as? String == "name")
                // Without details, the key is absent.
                let unauthorized = try await app.client.get("/api/whoami")
                #expect(Set(try #require(try unauthorized.json()["error"] as? [String: Any]).keys) == ["code", "message"])
            }
        }
    }
}

/// Reads the parts of docs/openapi.yaml the tests need, by indentation.
struct SpecReader {
    let lines: [String]

    init(text: String) {
        lines = text.components(separatedBy: "\n")
    }

    static func indent(_ line: String) -> Int { line.prefix(while: { $0 == " " }).count }

    /// The lines of the block under `key:` at `indent` within `scope`.
    func block(_ key: String, indent: Int, in scope: ArraySlice<String>) -> ArraySlice<String> {
        let prefix = String(repeating: " ", count: indent) + key + ":"
        guard let start = scope.firstIndex(where: { $0 == prefix || $0.hasPrefix(prefix + " ") }) else { return [] }
        var end = scope.index(after: start)
        while end < scope.endIndex {
            let line = scope[end]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty && !trimmed.hasPrefix("#") && Self.indent(line) <= indent { break }
            end = scope.index(after: end)
        }
        return scope[scope.index(after: start)..<end]
    }

    /// Keys at exactly `indent` in `scope`.
    func keys(indent: Int, in scope: ArraySlice<String>) -> [String] {
        scope.compactMap { line in
            guard Self.indent(line) == indent else { return nil }
            let rest = line.dropFirst(indent)
            guard let colon = rest.firstIndex(of: ":"), !rest.hasPrefix("-"), !rest.hasPrefix("#") else { return nil }
            var key = String(rest[..<colon])
            if key.hasPrefix("\"") && key.hasSuffix("\"") && key.count >= 2 { key = String(key.dropFirst().dropLast()) }
            return key
        }
    }

    var paths: ArraySlice<String> { block("paths", indent: 0, in: lines[...]) }

    func operations() -> [(method: String, path: String)] {
        keys(indent: 2, in: paths).filter { $0.hasPrefix("/") }.flatMap { path in
            keys(indent: 4, in: block(path, indent: 2, in: paths))
                .filter { OpenAPITests.methods.contains($0) }
                .map { (method: $0, path: path) }
        }
    }

    func operationLines(path: String, method: String) -> [String] {
        Array(block(method, indent: 4, in: block(path, indent: 2, in: paths)))
    }

    func schemaLines(_ name: String) -> ArraySlice<String> {
        let components = block("components", indent: 0, in: lines[...])
        return block(name, indent: 4, in: block("schemas", indent: 2, in: components))
    }

    func schemaProperties(_ name: String) -> [String] {
        keys(indent: 8, in: block("properties", indent: 6, in: schemaLines(name)))
    }

    /// `required: [a, b, …]` of a schema, possibly over several lines.
    func schemaRequired(_ name: String) -> [String] {
        let schema = schemaLines(name)
        guard let start = schema.firstIndex(where: { $0.hasPrefix("      required:") }) else { return [] }
        var text = ""
        for line in schema[start...] {
            text += line
            if line.contains("]") { break }
        }
        guard let open = text.firstIndex(of: "["), let close = text.firstIndex(of: "]") else { return [] }
        return text[text.index(after: open)..<close].split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }
}
