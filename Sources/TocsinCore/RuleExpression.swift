import Foundation

/// The expression of a composite rule over other rules' states:
/// `a and b`, `a or b`, `a unless b`, parentheses. `and` and `unless` bind
/// tighter than `or` (as in PromQL); operators of one level associate to
/// the left.
public indirect enum RuleExpression: Sendable, Equatable, CustomStringConvertible {
    case rule(String)
    case and(RuleExpression, RuleExpression)
    case or(RuleExpression, RuleExpression)
    case unless(RuleExpression, RuleExpression)

    /// The longest expression text, and the most rule references in one.
    public static let maxLength = 1000
    public static let maxReferences = 16

    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Every rule name the expression reads, in order of first use.
    public var references: [String] {
        var out: [String] = []
        func walk(_ e: RuleExpression) {
            switch e {
            case .rule(let name): if !out.contains(name) { out.append(name) }
            case .and(let l, let r), .or(let l, let r), .unless(let l, let r):
                walk(l)
                walk(r)
            }
        }
        walk(self)
        return out
    }

    /// The canonical text, fully parenthesised where operators nest.
    public var description: String {
        func text(_ e: RuleExpression, nested: Bool) -> String {
            switch e {
            case .rule(let name): return name
            case .and(let l, let r): return wrap("\(text(l, nested: true)) and \(text(r, nested: true))", nested)
            case .or(let l, let r): return wrap("\(text(l, nested: true)) or \(text(r, nested: true))", nested)
            case .unless(let l, let r): return wrap("\(text(l, nested: true)) unless \(text(r, nested: true))", nested)
            }
        }
        func wrap(_ s: String, _ nested: Bool) -> String { nested ? "(" + s + ")" : s }
        return text(self, nested: false)
    }

    /// Evaluates the expression over the groups where each input holds:
    /// `and` keeps the groups in both, `or` those in either, `unless` those
    /// of the left that are not in the right.
    public func evaluate(_ holding: [String: Set<String>]) -> Set<String> {
        switch self {
        case .rule(let name): return holding[name] ?? []
        case .and(let l, let r): return l.evaluate(holding).intersection(r.evaluate(holding))
        case .or(let l, let r): return l.evaluate(holding).union(r.evaluate(holding))
        case .unless(let l, let r): return l.evaluate(holding).subtracting(r.evaluate(holding))
        }
    }

    public static func parse(_ text: String) throws(Invalid) -> RuleExpression {
        guard text.utf8.count <= maxLength else { throw Invalid(message: "an expression is at most \(maxLength) characters") }
        var tokens: [String] = []
        var current = ""
        for c in text.unicodeScalars {
            if c == "(" || c == ")" || c == " " || c == "\t" || c == "\n" {
                if !current.isEmpty { tokens.append(current); current = "" }
                if c == "(" || c == ")" { tokens.append(String(c)) }
            } else {
                current.unicodeScalars.append(c)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        guard !tokens.isEmpty else { throw Invalid(message: "the expression is empty") }
        var parser = Parser(tokens: tokens)
        let expression = try parser.or()
        if parser.position < tokens.count {
            throw Invalid(message: "unexpected '\(tokens[parser.position].prefix(64))' after a complete expression")
        }
        guard expression.references.count <= maxReferences else {
            throw Invalid(message: "an expression reads at most \(maxReferences) rules")
        }
        return expression
    }

    struct Parser {
        let tokens: [String]
        var position = 0
        var depth = 0

        mutating func next() -> String? {
            guard position < tokens.count else { return nil }
            defer { position += 1 }
            return tokens[position]
        }

        func peek() -> String? { position < tokens.count ? tokens[position] : nil }

        mutating func or() throws(Invalid) -> RuleExpression {
            var left = try andUnless()
            while peek() == "or" {
                position += 1
                left = .or(left, try andUnless())
            }
            return left
        }

        mutating func andUnless() throws(Invalid) -> RuleExpression {
            var left = try operand()
            while let op = peek(), op == "and" || op == "unless" {
                position += 1
                let right = try operand()
                left = op == "and" ? .and(left, right) : .unless(left, right)
            }
            return left
        }

        mutating func operand() throws(Invalid) -> RuleExpression {
            guard let token = next() else { throw Invalid(message: "the expression ends where a rule name or ( was expected") }
            if token == "(" {
                depth += 1
                guard depth <= 16 else { throw Invalid(message: "parentheses nest at most 16 deep") }
                let inner = try or()
                guard next() == ")" else { throw Invalid(message: "a ( is not closed") }
                depth -= 1
                return inner
            }
            if ["and", "or", "unless", ")"].contains(token) {
                throw Invalid(message: "'\(token)' where a rule name or ( was expected")
            }
            guard token.range(of: "^[a-z][a-z0-9_]{0,63}\\z", options: .regularExpression) != nil else {
                throw Invalid(message: "'\(token.prefix(64))' is not a rule name (a-z, 0-9 and _, starting with a letter)")
            }
            return .rule(token)
        }
    }
}

/// An SLO burn-rate rule's objective and alerting conditions: good events
/// over total events should be at least `objective` over `period`; each
/// burn rate alerts when the error budget burns `factor` times too fast
/// over both its long and its short window.
public struct ServiceLevelObjective: Sendable, Equatable, Codable {
    public struct BurnRate: Sendable, Equatable, Codable {
        public var severity: Rule.Severity
        public var factor: Double
        public var longSeconds: Int
        public var shortSeconds: Int

        public init(severity: Rule.Severity, factor: Double, longSeconds: Int, shortSeconds: Int) {
            self.severity = severity
            self.factor = factor
            self.longSeconds = longSeconds
            self.shortSeconds = shortSeconds
        }

        enum CodingKeys: String, CodingKey {
            case severity, factor
            case longSeconds = "long_seconds", shortSeconds = "short_seconds"
        }

        /// "1h/5m", as shown in messages and evidence.
        public var windowText: String { "\(DurationText.format(longSeconds))/\(DurationText.format(shortSeconds))" }
    }

    public var good: [String]
    public var total: [String]
    public var objective: Double
    public var periodSeconds: Int
    public var burnRates: [BurnRate]

    /// The multiwindow, multi-burn-rate defaults of the Google SRE workbook:
    /// 2 % of a 30-day budget in an hour pages, 5 % in 6 hours, 10 % in 3 days.
    public static let defaultBurnRates = [
        BurnRate(severity: .critical, factor: 14.4, longSeconds: 3600, shortSeconds: 300),
        BurnRate(severity: .error, factor: 6, longSeconds: 6 * 3600, shortSeconds: 1800),
        BurnRate(severity: .warning, factor: 1, longSeconds: 3 * 86_400, shortSeconds: 6 * 3600),
    ]

    public static let objectiveRange = 0.5...0.99999
    public static let periodRange = 86_400...(31 * 86_400)
    public static let factorRange = 0.01...1000.0

    public init(good: [String], total: [String], objective: Double, periodSeconds: Int = 30 * 86_400,
                burnRates: [BurnRate] = ServiceLevelObjective.defaultBurnRates) {
        self.good = good
        self.total = total
        self.objective = objective
        self.periodSeconds = periodSeconds
        self.burnRates = burnRates
    }

    enum CodingKeys: String, CodingKey {
        case good, total, objective
        case periodSeconds = "period_seconds", burnRates = "burn_rates"
    }

    /// Every window the rule reads, shortest first, without repeats.
    public var windows: [Int] { Array(Set(burnRates.flatMap { [$0.longSeconds, $0.shortSeconds] })).sorted() }

    /// The burn rate of `bad` out of `total` events: the error rate over
    /// the error budget (1 - objective); 0 without events.
    public func burnRate(good: Int, total: Int) -> Double {
        guard total > 0 else { return 0 }
        let bad = Double(max(0, total - good))
        return bad / Double(total) / (1 - objective)
    }

    /// The share of the period's error budget left: 1 - bad ÷ (budget ×
    /// total); 1 without events, negative once overspent.
    public func budgetRemaining(good: Int, total: Int) -> Double {
        guard total > 0 else { return 1 }
        let bad = Double(max(0, total - good))
        return 1 - bad / ((1 - objective) * Double(total))
    }
}
