import Foundation
import HTTPTypes
import Hummingbird
import TocsinCore
import TocsinEngine
import TocsinStore

/// Rules with their state, the applied rule versions, and backtests.
struct RuleRoutes {
    let store: Store
    let config: Configuration
    let backtests: BacktestRunner

    func register(on read: RouterGroup<ReadContext>) {
        read.get("rules", use: listRules)
        read.get("rules/versions", use: versions)
        read.get("rules/{name}", use: getRule)
        read.post("rules/backtest", use: backtest)
    }

    func bodies(_ rules: [StoredRule]) async throws -> [RuleBody] {
        let (states, last) = try await store.rules.states(ruleIDs: rules.map(\.id))
        return rules.map { RuleBody($0, groups: states[$0.id] ?? [], last: last[$0.id]) }
    }

    @Sendable func listRules(_ request: Request, context: ReadContext) async throws -> Response {
        var query = QueryReader(request)
        let includeDisabled = query.bool("include_disabled") ?? false
        try query.check()
        return try APIJSON.response(["rules": try await bodies(try await store.rules.list(includeDisabled: includeDisabled))])
    }

    @Sendable func getRule(_ request: Request, context: ReadContext) async throws -> Response {
        guard let name = PathParameter.name(context.parameters.get("name")), let rule = try await store.rules.get(name: name) else {
            throw APIError.notFound("no rule named \((context.parameters.get("name") ?? "").prefix(64))")
        }
        return try APIJSON.response(["rule": try await bodies([rule])[0]])
    }

    @Sendable func versions(_ request: Request, context: ReadContext) async throws -> Response {
        var query = QueryReader(request)
        let limit = query.integer("limit", 1...1000) ?? 100
        try query.check()
        let versions = try await store.config.versions(.rules, limit: limit)
        return try APIJSON.response(["versions": versions.map(ConfigVersionBody.init)])
    }

    @Sendable func backtest(_ request: Request, context: ReadContext) async throws -> Response {
        var body = try await JSONBody.read(request, context: context, allowed: ["rule", "since", "until"])
        let since = body.string("since", required: true, maxLength: 64)
        let until = body.string("until", maxLength: 64)
        let rule = try await self.rule(from: &body)
        var range: TimeRange?
        if let since {
            do {
                range = try TimeRange.parse(window: nil, since: since, until: until, now: store.clock.now(),
                                            maxSeconds: Double(BacktestRunner.maxDays * 86_400))
            } catch {
                body.issues += error.issues
            }
        }
        try body.check()
        guard let rule, let range else { throw APIError.badRequest("invalid request body") }
        let result: Backtest.Result
        do {
            result = try await backtests.run(rule, range: range, keyID: context.identity.keyID)
        } catch let refusal as BacktestRunner.Refusal {
            if refusal == .busy {
                throw APIError(.tooManyRequests, code: "backtest_running", message: refusal.description, headers: [.retryAfter: "5"])
            }
            throw APIError.badRequest(refusal.description)
        } catch let error as MetricEventRepository.TooManyPoints {
            throw APIError.badRequest(error.description)
        }
        return try APIJSON.response(BacktestBody(rule: rule, range: range, result: result))
    }

    /// The rule to replay: a stored rule by name, or a definition checked
    /// like a rules file entry.
    func rule(from body: inout JSONBody) async throws -> Rule? {
        switch body.fields["rule"] {
        case let name as String:
            guard name.utf8.count <= 64, let stored = try await store.rules.get(name: name)?.rule else {
                throw APIError.notFound("no rule named \(name.prefix(64))")
            }
            return stored
        case let definition as [String: Any]:
            // The definition goes through the rules file checks; a composite
            // may read the applied rules.
            let known = definition["kind"] as? String == "composite" ? try await store.rules.list().map(\.rule) : []
            let parsed = RuleFile.parse(json: ["rules": [definition]], defaultIntervalSeconds: config.alertCheckIntervalSeconds,
                                        known: known)
            for problem in parsed.problems {
                body.issues.append(ValidationIssue(field: "rule." + (problem.field ?? ""), reason: problem.message))
            }
            return parsed.rules.first
        case nil, is NSNull:
            body.issues.append(ValidationIssue(field: "rule", reason: "is required: a rule name or a rule definition"))
        default:
            body.issues.append(ValidationIssue(field: "rule", reason: "must be a rule name or a rule definition object"))
        }
        return nil
    }
}
