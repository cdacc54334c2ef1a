import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresClient
import TocsinCore
import TocsinStore

/// Alerts, rules, backtests and the alert checker.
struct AlertRoutes {
    let store: Store
    let config: Configuration
    let hooks: TransitionHooks
    /// Who evaluates when no worker answers a check request in time.
    let fallbackEvaluator: RuleEvaluator

    func register(on api: RouterGroup<TocsinRequestContext>) {
        api.get("monitoring/alerts", use: listAlerts)
        api.get("monitoring/alerts/{id}", use: getAlert)
        api.post("monitoring/alerts", use: actOnAlert)
        api.get("rules", use: listRules)
        api.get("rules/{name}", use: getRule)
        api.post("rules/backtest", use: backtest)
        api.get("workers/alert-checker", use: listWorkers)
        api.post("workers/alert-checker", use: runChecks)
    }

    // MARK: Alerts

    @Sendable func listAlerts(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        let query = request.uri.queryParameters
        var issues: [ValidationIssue] = []
        var filter = AlertStore.Filter()
        func list<T: RawRepresentable & CaseIterable>(_ name: String, _ type: T.Type) -> [T] where T.RawValue == String {
            guard let text = query.get(name), !text.isEmpty else { return [] }
            var values: [T] = []
            for part in text.split(separator: ",") {
                if let value = T(rawValue: String(part)) { values.append(value) } else {
                    issues.append(ValidationIssue(field: name, reason: "must be one or more of \(T.allCases.map(\.rawValue).joined(separator: ", "))"))
                }
            }
            return values
        }
        filter.statuses = list("status", AlertStatus.self)
        filter.severities = list("severity", Rule.Severity.self)
        filter.rule = query.get("rule")
        if let platform = query.get("platform") {
            if PlatformName.isValid(platform) { filter.platform = platform } else {
                issues.append(ValidationIssue(field: "platform", reason: "is not a valid platform label"))
            }
        }
        if query.get("window") != nil || query.get("since") != nil || query.get("until") != nil {
            do {
                let range = try TimeRange.parse(window: query.get("window"), since: query.get("since"), until: query.get("until"),
                                                now: store.clock.now())
                filter.since = range.since
                filter.until = range.until
            } catch {
                issues += error.issues
            }
        }
        if let text = query.get("limit") {
            if let limit = Int(text), (1...1000).contains(limit) { filter.limit = limit } else {
                issues.append(ValidationIssue(field: "limit", reason: "must be an integer from 1 to 1000"))
            }
        }
        if let cursor = query.get("cursor") {
            if AlertStore.decodeCursor(cursor) == nil {
                issues.append(ValidationIssue(field: "cursor", reason: "is not a cursor returned by this endpoint"))
            }
            filter.cursor = cursor
        }
        if !issues.isEmpty { throw APIError.badRequest("invalid query", details: issues) }
        let page = try await store.alerts.list(filter)
        if request.wantsCSV {
            var text = CSV.row(["id", "rule", "severity", "status", "group_key", "platform", "value", "threshold", "samples",
                                "started_at", "fired_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
                                "resolution"])
            for a in page.alerts {
                text += CSV.row([String(a.id), a.rule, a.severity.rawValue, a.status.rawValue, a.groupKey, a.platform,
                                 a.value.map { String($0) }, String(a.threshold), String(a.samples), RFC3339.format(a.startedAt),
                                 a.firedAt.map(RFC3339.format), a.acknowledgedAt.map(RFC3339.format), a.acknowledgedBy,
                                 a.resolvedAt.map(RFC3339.format), a.resolvedBy, a.resolution?.rawValue])
            }
            var headers: HTTPFields = [.contentType: "text/csv; charset=utf-8", .cacheControl: "no-store",
                                       .contentDisposition: "attachment; filename=\"alerts.csv\""]
            if let next = page.nextCursor { headers[HTTPField.Name("X-Next-Cursor")!] = next }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return try APIJSON.response(AlertPage(alerts: page.alerts, nextCursor: page.nextCursor))
    }

    struct AlertPage: Encodable {
        var alerts: [Alert]
        var nextCursor: String?
        enum CodingKeys: String, CodingKey {
            case alerts
            case nextCursor = "next_cursor"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(alerts, forKey: .alerts)
            try c.encode(nextCursor, forKey: .nextCursor)
        }
    }

    @Sendable func getAlert(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        guard let id = context.parameters.get("id").flatMap(Int.init) else {
            throw APIError.badRequest("the alert id must be an integer")
        }
        guard let (alert, transitions) = try await store.alerts.get(id: id) else {
            throw APIError.notFound("no alert with id \(id)")
        }
        struct Body: Encodable {
            var alert: Alert
            var transitions: [AlertTransition]
        }
        return try APIJSON.response(Body(alert: alert, transitions: transitions))
    }

    @Sendable func actOnAlert(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        let identity = try context.require(.admin)
        var body = try await JSONBody.read(request, context: context, allowed: ["id", "action", "note"])
        let id = body.integer("id", required: true)
        let actionText = body.string("action", required: true)
        let note = body.string("note", maxLength: 2000)
        var action: AlertStore.Action?
        if let actionText {
            action = AlertStore.Action(rawValue: actionText)
            if action == nil {
                body.issues.append(ValidationIssue(field: "action", reason: "must be acknowledge or resolve"))
            }
        }
        try body.check()
        guard let id, let action else { throw APIError.badRequest("invalid request body") }
        do {
            let alert = try await store.alerts.act(action, alertID: id, actor: identity.name, note: note, hooks: hooks)
            context.logger.info("alert updated", metadata: ["alert.id": "\(id)", "action": .string(action.rawValue)])
            return try APIJSON.response(["alert": alert])
        } catch AlertStore.ActionError.notFound {
            throw APIError.notFound("no alert with id \(id)")
        } catch AlertStore.ActionError.conflict(let reason) {
            throw APIError.conflict(reason)
        }
    }

    // MARK: Rules

    struct RuleView: Encodable {
        var stored: StoredRule
        var groups: [RuleStore.GroupState]
        var last: RuleStore.LastEvaluation?

        enum Keys: String, CodingKey {
            case name, description, kind, metric, numerator, denominator, function, comparison, threshold, severity
            case labels, enabled, groups, last
            case lookback = "lookback_s"
            case runbookURL = "runbook_url", windowSeconds = "window_s", minSamples = "min_samples"
            case recoveryThreshold = "recovery_threshold", groupBy = "group_by", forSeconds = "for_s"
            case noData = "no_data", intervalSeconds = "interval_s", nextDueAt = "next_due_at"
            case lastEvaluatedAt = "last_evaluated_at", lastEvaluation = "last_evaluation"
        }

        func encode(to encoder: any Encoder) throws {
            let rule = stored.rule
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(rule.name, forKey: .name)
            try c.encode(rule.description, forKey: .description)
            try c.encode(rule.runbookURL, forKey: .runbookURL)
            try c.encode(rule.kind.rawValue, forKey: .kind)
            try c.encode(rule.metric, forKey: .metric)
            try c.encode(rule.numerator, forKey: .numerator)
            try c.encode(rule.denominator, forKey: .denominator)
            try c.encode(rule.function?.rawValue, forKey: .function)
            try c.encode(rule.windowSeconds, forKey: .windowSeconds)
            try c.encode(rule.lastEvents, forKey: .last)
            try c.encode(rule.lastEvents == nil ? nil : rule.lookbackSeconds, forKey: .lookback)
            try c.encode(rule.minSamples, forKey: .minSamples)
            try c.encode(rule.comparison.rawValue, forKey: .comparison)
            try c.encode(rule.threshold, forKey: .threshold)
            try c.encode(rule.recoveryThreshold, forKey: .recoveryThreshold)
            try c.encode(rule.groupBy.rawValue, forKey: .groupBy)
            try c.encode(rule.severity.rawValue, forKey: .severity)
            try c.encode(rule.forSeconds, forKey: .forSeconds)
            try c.encode(rule.noData.rawValue, forKey: .noData)
            try c.encode(rule.intervalSeconds, forKey: .intervalSeconds)
            try c.encode(rule.labels, forKey: .labels)
            try c.encode(stored.enabled, forKey: .enabled)
            try c.encode(RFC3339.format(stored.nextDueAt), forKey: .nextDueAt)
            try c.encode(stored.lastEvaluatedAt.map(RFC3339.format), forKey: .lastEvaluatedAt)
            try c.encode(groups.map(GroupView.init), forKey: .groups)
            try c.encode(last.map(LastView.init), forKey: .lastEvaluation)
        }
    }

    struct GroupView: Encodable {
        var state: RuleStore.GroupState
        enum Keys: String, CodingKey {
            case status, value, samples, since
            case groupKey = "group_key", alertID = "alert_id"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(state.groupKey, forKey: .groupKey)
            try c.encode(state.status, forKey: .status)
            try c.encode(state.value, forKey: .value)
            try c.encode(state.samples, forKey: .samples)
            try c.encode(RFC3339.format(state.since), forKey: .since)
            try c.encode(state.alertID, forKey: .alertID)
        }
    }

    struct LastView: Encodable {
        var last: RuleStore.LastEvaluation
        enum Keys: String, CodingKey {
            case at, trigger, groups
            case durationMs = "duration_ms", workerID = "worker_id"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(RFC3339.format(last.at), forKey: .at)
            try c.encode(last.durationMs, forKey: .durationMs)
            try c.encode(last.workerID, forKey: .workerID)
            try c.encode(last.trigger, forKey: .trigger)
            try c.encode(last.groups, forKey: .groups)
        }
    }

    func views(_ rules: [StoredRule]) async throws -> [RuleView] {
        let (states, last) = try await store.rules.states(ruleIDs: rules.map(\.id))
        return rules.map { RuleView(stored: $0, groups: states[$0.id] ?? [], last: last[$0.id]) }
    }

    @Sendable func listRules(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        let includeDisabled = request.uri.queryParameters.get("include_disabled") == "true"
        let rules = try await store.rules.list(includeDisabled: includeDisabled)
        return try APIJSON.response(["rules": try await views(rules)])
    }

    @Sendable func getRule(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        let name = context.parameters.get("name") ?? ""
        guard let rule = try await store.rules.get(name: name) else {
            throw APIError.notFound("no rule named \(name)")
        }
        return try APIJSON.response(["rule": try await views([rule])[0]])
    }

    // MARK: Backtest

    @Sendable func backtest(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        var body = try await JSONBody.read(request, context: context, allowed: ["rule", "since", "until"])
        let since = body.string("since", required: true)
        let until = body.string("until")
        var rule: Rule?
        switch body.fields["rule"] {
        case let name as String:
            rule = try await store.rules.get(name: name)?.rule
            if rule == nil { throw APIError.notFound("no rule named \(name)") }
        case let definition as [String: Any]:
            // JSON is YAML: the definition goes through the rules file checks.
            let data = try JSONSerialization.data(withJSONObject: ["rules": [definition]])
            let parsed = RuleFile.parse(yaml: String(decoding: data, as: UTF8.self),
                                        defaultIntervalSeconds: config.alertCheckIntervalSeconds)
            for problem in parsed.problems {
                body.issues.append(ValidationIssue(field: "rule." + (problem.field ?? ""), reason: problem.message))
            }
            rule = parsed.rules.first
        case nil:
            body.issues.append(ValidationIssue(field: "rule", reason: "is required: a rule name or a rule definition"))
        default:
            body.issues.append(ValidationIssue(field: "rule", reason: "must be a rule name or a rule definition object"))
        }
        var range: TimeRange?
        if let since {
            do {
                range = try TimeRange.parse(window: nil, since: since, until: until, now: store.clock.now(),
                                            maxSeconds: 31 * 86_400)
            } catch {
                body.issues += error.issues
            }
        }
        try body.check()
        guard let rule, let range else { throw APIError.badRequest("invalid request body") }
        guard range.seconds / Double(rule.intervalSeconds) <= 100_000 else {
            throw APIError.badRequest("too many steps: use a shorter range or a longer interval")
        }
        let result: Backtest.Result
        do {
            result = try await store.metricReads.backtest(rule, range: range)
        } catch let error as MetricReads.TooManyPoints {
            throw APIError.badRequest(error.description)
        }
        struct Body: Encodable {
            var rule: String
            var since: String
            var until: String
            var interval_s: Int
            var evaluations: Int
            var steps: [Backtest.Step]
            var alerts: [Backtest.SimulatedAlert]
        }
        return try APIJSON.response(Body(
            rule: rule.name, since: RFC3339.format(range.since), until: RFC3339.format(range.until),
            interval_s: rule.intervalSeconds, evaluations: result.evaluations, steps: result.steps, alerts: result.alerts))
    }

    // MARK: Workers

    @Sendable func listWorkers(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        try context.require(.read)
        let workers = try await store.workers.list(intervalSeconds: config.alertCheckIntervalSeconds)
        struct Body: Encodable {
            var interval_s: Int
            var workers: [WorkerInfo]
        }
        return try APIJSON.response(Body(interval_s: config.alertCheckIntervalSeconds, workers: workers))
    }

    /// Queues an immediate check; exactly one worker claims it. When none has
    /// claimed it after 5 s (no worker running), this process runs it.
    @Sendable func runChecks(_ request: Request, context: TocsinRequestContext) async throws -> Response {
        let identity = try context.require(.admin)
        let query = request.uri.queryParameters
        let ruleName = query.get("rule")
        if let ruleName, try await store.rules.get(name: ruleName) == nil {
            throw APIError.notFound("no rule named \(ruleName)")
        }
        let wait = query.get("wait") == "true"
        let id = try await store.checks.create(ruleName: ruleName, requestedBy: identity.name)
        let checks = store.checks, rules = store.rules, evaluator = fallbackEvaluator, logger = context.logger
        let fallback = Task {
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                if Task.isCancelled { return }
                if let current = try? await checks.get(id: id), current.claimedBy != nil { return }
                try? await Task.sleep(for: .milliseconds(100))
            }
            if Task.isCancelled { return }
            if let claimed = try? await checks.claim(id: id, by: evaluator.workerID) {
                logger.info("no worker claimed the check; running it in the API process", metadata: ["check.id": "\(id)"])
                await checks.run(claimed, evaluator: evaluator, rules: rules)
            }
        }
        guard wait else {
            return try APIJSON.response(["id": id], status: .accepted)
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let current = try await checks.get(id: id), current.completed {
                // Answered: the fallback, if it is still watching, has nothing to do.
                fallback.cancel()
                if let error = current.error, current.results?.isEmpty ?? true {
                    throw APIError(.internalServerError, code: "check_failed", message: error)
                }
                struct Body: Encodable {
                    var id: Int
                    var evaluatedBy: String?
                    var evaluated: Int
                    var results: [RuleEvaluator.GroupResult]
                    enum CodingKeys: String, CodingKey {
                        case id, evaluated, results
                        case evaluatedBy = "evaluated_by"
                    }
                    func encode(to encoder: any Encoder) throws {
                        var c = encoder.container(keyedBy: CodingKeys.self)
                        try c.encode(id, forKey: .id)
                        try c.encode(evaluatedBy, forKey: .evaluatedBy)
                        try c.encode(evaluated, forKey: .evaluated)
                        try c.encode(results, forKey: .results)
                    }
                }
                let results = current.results ?? []
                return try APIJSON.response(Body(id: id, evaluatedBy: current.claimedBy,
                                                 evaluated: Set(results.map(\.rule)).count, results: results))
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw APIError(.gatewayTimeout, code: "check_timeout", message: "the check did not finish within 60 seconds; it continues")
    }

}
