import Foundation
import TocsinCore
import TocsinStore

/// Answers "run checks now" requests: evaluates what a request asks for
/// (every enabled rule, or one) and records the results on it.
public struct CheckRunner: Sendable {
    public let evaluator: RuleEvaluator

    public init(evaluator: RuleEvaluator) {
        self.evaluator = evaluator
    }

    var store: Store { evaluator.store }

    /// Claims and runs every unclaimed request.
    public func answerPending() async throws -> Int {
        var answered = 0
        while let request = try await store.checks.claim(by: evaluator.workerID) {
            await run(request)
            answered += 1
        }
        return answered
    }

    /// Runs request `id` here if nobody has claimed it (the API process, when
    /// no worker answered). Returns false when another process had it.
    public func runIfUnclaimed(id: Int) async throws -> Bool {
        guard let request = try await store.checks.claim(id: id, by: evaluator.workerID) else { return false }
        await run(request)
        return true
    }

    func run(_ request: CheckRequestRepository.Request) async {
        var results: [GroupResult] = []
        var failure: String?
        do {
            let targets = Self.inputsFirst(try await store.rules.list())
                .filter { request.ruleName == nil || $0.rule.name == request.ruleName }
            if let name = request.ruleName, targets.isEmpty {
                failure = "no enabled rule named \(name)"
            }
            // The rules other than composites in batches (one transaction
            // each, rather than one per rule), then the composites, each
            // after the rules it reads.
            let batched = targets.filter(\.rule.inputs.isEmpty)
            let outcomes = try await evaluator.evaluate(batch: batched.map(\.id), trigger: .manual, force: true)
            for target in batched {
                switch outcomes[target.id] {
                case .success(.evaluated(let groups, _, _)): results += groups
                case .failure(let error): failure = failure ?? "\(error)"
                default: break
                }
            }
            for target in targets where !target.rule.inputs.isEmpty {
                if case .evaluated(let groups, _, _) = try await evaluator.evaluate(ruleID: target.id, trigger: .manual, force: true) {
                    results += groups
                }
            }
        } catch {
            failure = "\(error)"
        }
        try? await store.checks.complete(id: request.id, results: results, error: failure)
    }

    /// Rules in an order that evaluates every composite after the rules it
    /// reads (composites reading composites after those).
    static func inputsFirst(_ rules: [StoredRule]) -> [StoredRule] {
        let byName = Dictionary(rules.map { ($0.rule.name, $0.rule) }) { a, _ in a }
        var depth: [String: Int] = [:]
        func level(_ name: String, _ seen: Set<String>) -> Int {
            if let known = depth[name] { return known }
            guard let rule = byName[name], rule.kind == .composite, !seen.contains(name) else { return 0 }
            let value = 1 + (rule.inputs.map { level($0, seen.union([name])) }.max() ?? 0)
            depth[name] = value
            return value
        }
        return rules.enumerated().sorted { a, b in
            let (x, y) = (level(a.element.rule.name, []), level(b.element.rule.name, []))
            return x != y ? x < y : a.offset < b.offset
        }.map(\.element)
    }
}
