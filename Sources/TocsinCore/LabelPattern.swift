/// A regular expression of a label matcher (`matches:`, `not_matches:`):
/// the subset of syntax that RE2 and PostgreSQL's advanced regular
/// expressions read alike, always matched against the whole value.
///
/// Accepted: literal characters; `.` (any character, newline included);
/// classes `[abc]`, `[^a-z]` (a literal `-` first or last, `]`, `[`, `\` and
/// `^` escaped with `\`); `\d \w \s` (ASCII digits, `[0-9A-Za-z_]`, ASCII
/// white space; `\D \W \S` outside classes only); `\t \n \r \f`; any other
/// ASCII punctuation escaped with `\` as itself; groups `( )` and `(?: )`;
/// alternation `|`; quantifiers `* + ? {n} {n,} {n,m}` (n, m ≤ 255),
/// optionally followed by `?`; `^` and `$` (redundant: the match is
/// anchored). Refused: back-references, lookaround, named groups, flags,
/// `\b`, `\A`, `\z`, `\p{…}`, `\x…`, POSIX classes `[[:alpha:]]`, possessive
/// and stacked quantifiers, and anything else the two engines read
/// differently. At most 256 characters.
///
/// Matching here is a Thompson NFA simulation: time linear in the value's
/// length, never backtracking. PostgreSQL evaluates the same pattern as
/// `value ~ ('^(?:' || pattern || ')$')`.
public struct LabelPattern: Sendable, Equatable, CustomStringConvertible {
    public static let maxLength = 256
    /// The compiled automaton may have at most this many states (bounded
    /// repetitions are expanded).
    public static let maxStates = 5_000
    static let maxRepeat = 255

    public let source: String
    private let program: Program

    public var description: String { source }

    public static func == (lhs: LabelPattern, rhs: LabelPattern) -> Bool { lhs.source == rhs.source }

    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public init(_ source: String) throws(Invalid) {
        guard source.unicodeScalars.count <= Self.maxLength else {
            throw Invalid(message: "a pattern is at most \(Self.maxLength) characters")
        }
        guard !source.unicodeScalars.contains("\u{0}") else { throw Invalid(message: "a pattern must not contain NUL") }
        var parser = Parser(Array(source.unicodeScalars))
        let node = try parser.parse()
        var compiler = Compiler()
        let start = try compiler.compile(node, next: compiler.add(.match))
        self.source = source
        self.program = Program(states: compiler.states, start: start)
    }

    /// Whether the whole of `value` matches.
    public func matches(_ value: String) -> Bool { program.matches(Array(value.unicodeScalars)) }

    /// The pattern as PostgreSQL is given it: `\d`, `\w` and `\s` spelled
    /// as the ASCII classes they mean here, since PostgreSQL's follow the
    /// database's locale (`\w` matches `é` under most collations).
    public var postgresSource: String {
        let classes: [Unicode.Scalar: (inside: String, outside: String)] = [
            "d": ("0-9", "[0-9]"), "w": ("0-9A-Za-z_", "[0-9A-Za-z_]"), "s": ("\\t\\n\\v\\f\\r ", "[\\t\\n\\v\\f\\r ]"),
            "D": ("", "[^0-9]"), "W": ("", "[^0-9A-Za-z_]"), "S": ("", "[^\\t\\n\\v\\f\\r ]"),
        ]
        var out = ""
        var inClass = false
        var scalars = source.unicodeScalars.makeIterator()
        while let c = scalars.next() {
            if c == "\\", let next = scalars.next() {
                if let replacement = classes[next] {
                    out += inClass ? replacement.inside : replacement.outside
                } else {
                    out.unicodeScalars.append(c)
                    out.unicodeScalars.append(next)
                }
                continue
            }
            if c == "[" && !inClass {
                inClass = true
                out.unicodeScalars.append(c)
                // A leading ^ (and nothing else) keeps its meaning.
                continue
            }
            if c == "]" && inClass { inClass = false }
            out.unicodeScalars.append(c)
        }
        return out
    }

    // MARK: Syntax

    indirect enum Node {
        case empty
        case set(CharacterSet)
        case concat([Node])
        case alternation([Node])
        case repetition(Node, min: Int, max: Int?)
        case start
        case end
    }

    /// A set of characters: ranges and named classes, possibly negated.
    struct CharacterSet: Sendable {
        var ranges: [ClosedRange<UInt32>] = []
        var negated = false

        static let any = CharacterSet(ranges: [0...0x10FFFF])
        static let digit: [ClosedRange<UInt32>] = [0x30...0x39]
        static let word: [ClosedRange<UInt32>] = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]
        static let space: [ClosedRange<UInt32>] = [0x09...0x0D, 0x20...0x20]

        func contains(_ scalar: Unicode.Scalar) -> Bool {
            let v = scalar.value
            return ranges.contains { $0.contains(v) } != negated
        }

        static func complement(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
            var out: [ClosedRange<UInt32>] = []
            var next: UInt32 = 0
            for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if range.lowerBound > next { out.append(next...(range.lowerBound - 1)) }
                next = max(next, range.upperBound + 1)
            }
            if next <= 0x10FFFF { out.append(next...0x10FFFF) }
            return out
        }
    }

    struct Parser {
        let text: [Unicode.Scalar]
        var i = 0
        var depth = 0

        init(_ text: [Unicode.Scalar]) { self.text = text }

        var atEnd: Bool { i >= text.count }
        func peek(_ offset: Int = 0) -> Unicode.Scalar? { i + offset < text.count ? text[i + offset] : nil }

        func fail(_ message: String) -> Invalid { Invalid(message: message) }

        mutating func parse() throws(Invalid) -> Node {
            let node = try alternation()
            if !atEnd { throw fail("unbalanced ) at character \(i + 1)") }
            return node
        }

        mutating func alternation() throws(Invalid) -> Node {
            var branches = [try concatenation()]
            while peek() == "|" {
                i += 1
                branches.append(try concatenation())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func concatenation() throws(Invalid) -> Node {
            var items: [Node] = []
            while let c = peek(), c != "|", c != ")" {
                let atom = try self.atom()
                items.append(try quantified(atom))
            }
            switch items.count {
            case 0: return .empty
            case 1: return items[0]
            default: return .concat(items)
            }
        }

        mutating func quantified(_ atom: Node) throws(Invalid) -> Node {
            guard let c = peek() else { return atom }
            var min = 0, max: Int? = nil
            switch c {
            case "*": i += 1
            case "+": i += 1; min = 1
            case "?": i += 1; max = 1
            case "{":
                guard let bounds = try bound() else { throw fail("a literal { must be escaped as \\{ (character \(i + 1))") }
                (min, max) = bounds
            default: return atom
            }
            switch atom {
            case .start, .end, .empty: throw fail("a quantifier must follow something to repeat (character \(i))")
            default: break
            }
            // A lazy quantifier matches the same values when the whole value
            // must match.
            if peek() == "?" { i += 1 }
            if let next = peek(), ["*", "+", "?", "{"].contains(next) {
                throw fail("stacked or possessive quantifiers are not supported (character \(i + 1)); use a group: (a*)*")
            }
            return .repetition(atom, min: min, max: max)
        }

        /// `{n}`, `{n,}`, `{n,m}` at the cursor, or nil (cursor unmoved) when
        /// the text is not a bound.
        mutating func bound() throws(Invalid) -> (Int, Int?)? {
            let start = i
            i += 1
            func number(_ parser: inout Parser) -> Int? {
                var value = 0, digits = 0
                while let c = parser.peek(), let d = Int(String(c)), c.isASCII {
                    value = value * 10 + d
                    digits += 1
                    parser.i += 1
                    if digits > 3 { return 1000 }
                }
                return digits == 0 ? nil : value
            }
            guard let low = number(&self) else { i = start; return nil }
            var high: Int? = low
            if peek() == "," {
                i += 1
                high = number(&self)
            }
            guard peek() == "}" else { i = start; return nil }
            i += 1
            if low > Self.maxRepeatCount || (high ?? 0) > Self.maxRepeatCount {
                throw fail("repetition counts are at most \(Self.maxRepeatCount)")
            }
            if let high, high < low { throw fail("in {n,m}, m must not be less than n") }
            return (low, high)
        }

        static var maxRepeatCount: Int { LabelPattern.maxRepeat }

        mutating func atom() throws(Invalid) -> Node {
            let c = text[i]
            switch c {
            case "(":
                i += 1
                if peek() == "?" {
                    guard peek(1) == ":" else {
                        throw fail("only (?:…) groups are supported: lookaround, named groups and flags are not (character \(i + 1))")
                    }
                    i += 2
                }
                depth += 1
                if depth > 32 { throw fail("groups nest at most 32 deep") }
                let inner = try alternation()
                guard peek() == ")" else { throw fail("unclosed (") }
                i += 1
                depth -= 1
                return inner
            case "[":
                i += 1
                return .set(try characterClass())
            case ".":
                i += 1
                return .set(.any)
            case "^":
                i += 1
                return .start
            case "$":
                i += 1
                return .end
            case "\\":
                i += 1
                guard let escaped = peek() else { throw fail("the pattern ends with a lone \\") }
                i += 1
                return .set(try escape(escaped, inClass: false))
            case "*", "+", "?":
                throw fail("a quantifier must follow something to repeat (character \(i + 1))")
            case "{", "}", "]":
                throw fail("a literal \(c) must be escaped as \\\(c) (character \(i + 1))")
            default:
                i += 1
                return .set(CharacterSet(ranges: [c.value...c.value]))
            }
        }

        mutating func escape(_ c: Unicode.Scalar, inClass: Bool) throws(Invalid) -> CharacterSet {
            switch c {
            case "d": return CharacterSet(ranges: CharacterSet.digit)
            case "w": return CharacterSet(ranges: CharacterSet.word)
            case "s": return CharacterSet(ranges: CharacterSet.space)
            case "D", "W", "S":
                if inClass { throw fail("\\\(c) is not supported inside […]") }
                let base = c == "D" ? CharacterSet.digit : c == "W" ? CharacterSet.word : CharacterSet.space
                return CharacterSet(ranges: base, negated: true)
            case "t": return CharacterSet(ranges: [0x09...0x09])
            case "n": return CharacterSet(ranges: [0x0A...0x0A])
            case "r": return CharacterSet(ranges: [0x0D...0x0D])
            case "f": return CharacterSet(ranges: [0x0C...0x0C])
            case "0"..."9":
                throw fail("back-references (\\\(c)) are not supported")
            default:
                guard c.isASCII, !c.properties.isAlphabetic, c.value > 0x20, c.value < 0x7F else {
                    throw fail("\\\(c) is not a supported escape (character \(i))")
                }
                return CharacterSet(ranges: [c.value...c.value])
            }
        }

        mutating func characterClass() throws(Invalid) -> CharacterSet {
            var set = CharacterSet()
            if peek() == "^" {
                set.negated = true
                i += 1
            }
            var first = true
            while true {
                guard let c = peek() else { throw fail("unclosed [") }
                if c == "]" {
                    if first { throw fail("an empty class [] matches nothing; escape a literal ] as \\]") }
                    i += 1
                    return set
                }
                if c == "[" { throw fail("a literal [ inside […] must be escaped as \\[; POSIX classes like [[:alpha:]] are not supported") }
                if c == "&" && peek(1) == "&" { throw fail("&& inside […] must be escaped") }
                first = false
                let low: Unicode.Scalar
                i += 1
                if c == "\\" {
                    guard let e = peek() else { throw fail("unclosed [") }
                    i += 1
                    let escaped = try escape(e, inClass: true)
                    if escaped.ranges.count != 1 || escaped.ranges[0].count != 1 {
                        set.ranges += escaped.ranges
                        continue
                    }
                    low = Unicode.Scalar(escaped.ranges[0].lowerBound)!
                } else {
                    low = c
                }
                // A range a-z (a '-' before the closing ] is literal).
                if peek() == "-", let after = peek(1), after != "]" {
                    i += 1
                    var high = after
                    i += 1
                    if after == "\\" {
                        guard let e = peek() else { throw fail("unclosed [") }
                        i += 1
                        let escaped = try escape(e, inClass: true)
                        guard escaped.ranges.count == 1, escaped.ranges[0].count == 1 else {
                            throw fail("a range must end with a single character")
                        }
                        high = Unicode.Scalar(escaped.ranges[0].lowerBound)!
                    } else if after == "[" {
                        throw fail("a literal [ inside […] must be escaped as \\[")
                    } else if after == "-" {
                        throw fail("-- inside […] must be escaped")
                    }
                    guard low.value <= high.value else { throw fail("the range \(low)-\(high) is out of order") }
                    set.ranges.append(low.value...high.value)
                } else {
                    if c == "-" && peek() == "-" { throw fail("-- inside […] must be escaped") }
                    set.ranges.append(low.value...low.value)
                }
            }
        }
    }

    // MARK: Automaton

    enum State: Sendable {
        case consume(CharacterSet, Int)
        case split(Int, Int)
        case start(Int)
        case end(Int)
        case match
        /// A placeholder, patched once its target is known.
        case jump(Int)
    }

    struct Compiler {
        var states: [State] = []

        mutating func add(_ state: State) throws(Invalid) -> Int {
            guard states.count < LabelPattern.maxStates else {
                throw Invalid(message: "the pattern is too complex (its repetitions expand beyond \(LabelPattern.maxStates) states)")
            }
            states.append(state)
            return states.count - 1
        }

        /// Compiles `node` so that it continues at `next`; returns its entry.
        mutating func compile(_ node: Node, next: Int) throws(Invalid) -> Int {
            switch node {
            case .empty:
                return next
            case .set(let set):
                return try add(.consume(set, next))
            case .start:
                return try add(.start(next))
            case .end:
                return try add(.end(next))
            case .concat(let items):
                var entry = next
                for item in items.reversed() { entry = try compile(item, next: entry) }
                return entry
            case .alternation(let branches):
                var entry = try compile(branches[branches.count - 1], next: next)
                for branch in branches.dropLast().reversed() {
                    let first = try compile(branch, next: next)
                    entry = try add(.split(first, entry))
                }
                return entry
            case .repetition(let inner, let min, let max):
                var entry = next
                if let max {
                    // Optional copies: x? x? … (max - min of them), nested.
                    for _ in 0..<(max - min) {
                        let body = try compile(inner, next: entry)
                        entry = try add(.split(body, next))
                    }
                } else {
                    // x*: a loop.
                    let loop = try add(.jump(-1))
                    let body = try compile(inner, next: loop)
                    states[loop] = .split(body, entry)
                    entry = loop
                }
                for _ in 0..<min { entry = try compile(inner, next: entry) }
                return entry
            }
        }
    }

    struct Program: Sendable {
        let states: [State]
        let start: Int

        func matches(_ text: [Unicode.Scalar]) -> Bool {
            var current: [Int] = []
            var seen = [Int](repeating: -1, count: states.count)
            var generation = 0
            func add(_ index: Int, at position: Int, into list: inout [Int]) {
                var stack = [index]
                while let s = stack.popLast() {
                    guard seen[s] != generation else { continue }
                    seen[s] = generation
                    switch states[s] {
                    case .split(let a, let b):
                        stack.append(b)
                        stack.append(a)
                    case .jump(let a):
                        stack.append(a)
                    case .start(let a):
                        if position == 0 { stack.append(a) }
                    case .end(let a):
                        if position == text.count { stack.append(a) }
                    case .consume, .match:
                        list.append(s)
                    }
                }
            }
            add(start, at: 0, into: &current)
            for (position, scalar) in text.enumerated() {
                generation += 1
                var next: [Int] = []
                for s in current {
                    if case .consume(let set, let target) = states[s], set.contains(scalar) {
                        add(target, at: position + 1, into: &next)
                    }
                }
                if next.isEmpty { return false }
                current = next
            }
            return current.contains { if case .match = states[$0] { true } else { false } }
        }
    }
}
