import Foundation
import Yams

/// Configuration files (rules, notifications) are operator input: read
/// with limits, every problem reported with its line.
enum YAMLDocument {
    /// Files are at most 4 MiB: a thousand rules take about 500 KiB.
    static let maxBytes = 4 << 20
    /// Nesting deeper than this is refused before the parser builds it (a
    /// deep document would otherwise exhaust the stack).
    static let maxDepth = 64
    /// Aliases could expand a small file into an enormous tree.
    static let maxAliases = 100

    /// The root node, or the problem that stops the file from being read.
    static func compose(_ yaml: String) -> Result<Node?, RuleProblem> {
        guard yaml.utf8.count <= maxBytes else {
            return .failure(RuleProblem(line: nil, rule: nil, field: nil, message: "the file is larger than 4 MiB"))
        }
        if let problem = structuralProblem(yaml) { return .failure(problem) }
        do {
            return .success(try Yams.compose(yaml: yaml))
        } catch let error as YamlError {
            return .failure(yamlProblem(error))
        } catch {
            return .failure(RuleProblem(line: nil, rule: nil, field: nil, message: "not valid YAML"))
        }
    }

    /// Flow nesting (`[`, `{`), indentation depth, aliases and NUL, checked
    /// on the text in one pass. Brackets are counted everywhere, also in
    /// strings: a file that nests sixty-four brackets deep in a
    /// description is refused with the rest.
    ///
    /// An anchor names a scalar only: an anchored list or mapping can hold
    /// aliases of other lists, and a few lines of them compose into a tree
    /// of billions of nodes, which Yams hashes when it is a mapping key
    /// (its duplicate-key check). Where a list or mapping ends cannot be
    /// told from the text without parsing it; where a scalar starts can.
    static func structuralProblem(_ yaml: String) -> RuleProblem? {
        let b = Array(yaml.utf8)
        var depth = 0, aliases = 0, line = 1, indent = 0, atLineStart = true
        /// Whether a node's properties (`&name`, `*name`) can start at
        /// `at`: after a separation space, a line break, a flow indicator, a
        /// JSON-like key's `:`, or at the start (after a byte order mark).
        func startsNode(_ at: Int) -> Bool {
            if at == 0 || (at == 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) { return true }
            switch b[at - 1] {
            case 0x20, 0x09, 0x0A, 0x0D, 0x5B, 0x7B, 0x2C, 0x3A, 0x2D: return true
            default: return false
            }
        }
        var i = 0
        while i < b.count {
            let byte = b[i]
            i += 1
            switch byte {
            case 0:
                return RuleProblem(line: line, rule: nil, field: nil, message: "the file contains a NUL character")
            case 0x0A:
                line += 1
                indent = 0
                atLineStart = true
                continue
            case 0x20 where atLineStart:
                indent += 1
                if indent / 2 > maxDepth {
                    return RuleProblem(line: line, rule: nil, field: nil, message: "nesting deeper than \(maxDepth) levels")
                }
                continue
            case 0x5B, 0x7B:
                depth += 1
                if depth > maxDepth {
                    return RuleProblem(line: line, rule: nil, field: nil, message: "nesting deeper than \(maxDepth) levels")
                }
            case 0x5D, 0x7D:
                depth = max(0, depth - 1)
            case 0x2A where startsNode(i - 1):
                // `*name` where a value starts: an alias.
                aliases += 1
                if aliases > maxAliases {
                    return RuleProblem(line: line, rule: nil, field: nil, message: "more than \(maxAliases) aliases (*name)")
                }
            case 0x26 where startsNode(i - 1):
                // `&name` (libyaml's name characters), then tags: the node
                // that follows is a list or mapping when it opens with `[`
                // or `{`, or is on the next lines.
                var j = i
                while j < b.count, b[j] == 0x2D || b[j] == 0x5F || (0x30...0x39).contains(b[j])
                        || (0x41...0x5A).contains(b[j]) || (0x61...0x7A).contains(b[j]) { j += 1 }
                guard j > i else { break }
                while j < b.count, b[j] == 0x20 || b[j] == 0x09 || b[j] == 0x21 {
                    if b[j] == 0x21 {
                        while j < b.count, b[j] != 0x20, b[j] != 0x09, b[j] != 0x0A, b[j] != 0x0D { j += 1 }
                    } else {
                        j += 1
                    }
                }
                if j == b.count || b[j] == 0x5B || b[j] == 0x7B || b[j] == 0x0A || b[j] == 0x0D || b[j] == 0x23 {
                    return RuleProblem(line: line, rule: nil, field: nil,
                                       message: "an anchor (&name) may name a single value only, not a list or mapping")
                }
            default:
                break
            }
            atLineStart = false
        }
        return nil
    }

    /// A JSON value (from JSONSerialization) as the node YAML would give for
    /// it, without a round trip through YAML text (which reads some strings
    /// differently). Nil for what JSON cannot hold.
    static func node(json value: Any, depth: Int = 0) -> Node? {
        guard depth < maxDepth else { return nil }
        switch value {
        case let text as String:
            return Node.scalar(.init(text, .init(.str), .doubleQuoted))
        case let number as NSNumber:
            if String(cString: number.objCType) == "c" { return Node.scalar(.init(number.boolValue ? "true" : "false")) }
            let double = number.doubleValue
            return Node.scalar(.init(double == double.rounded() && abs(double) < 1e15 ? String(Int(double)) : "\(double)"))
        case is NSNull:
            return Node.scalar(.init("null", .init(.null)))
        case let array as [Any]:
            var items: [Node] = []
            for item in array {
                guard let node = node(json: item, depth: depth + 1) else { return nil }
                items.append(node)
            }
            return Node.sequence(.init(items))
        case let object as [String: Any]:
            var pairs: [(Node, Node)] = []
            for key in object.keys.sorted() {
                guard let node = node(json: object[key]!, depth: depth + 1) else { return nil }
                pairs.append((Node.scalar(.init(key)), node))
            }
            return Node.mapping(.init(pairs))
        default:
            return nil
        }
    }

    static func yamlProblem(_ error: YamlError) -> RuleProblem {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return RuleProblem(line: mark.line, rule: nil, field: nil, message: "not valid YAML: \(problem)")
        default:
            return RuleProblem(line: nil, rule: nil, field: nil, message: "not valid YAML")
        }
    }
}

/// The fields of one YAML mapping (a rule, a channel, a route), read by
/// name and type. Unknown fields, wrong types and values out of range
/// become problems with the line, the item and the field; nothing throws.
struct YAMLFields {
    let node: Node
    /// What the mapping is, for messages: a rule's name, "channel slack-ops".
    var item: String?
    private(set) var values: [String: Node] = [:]
    var problems: [RuleProblem] = []

    init(_ node: Node, item: String?, allowed: Set<String>) {
        self.node = node
        self.item = item
        guard let mapping = node.mapping else {
            problems.append(RuleProblem(line: node.mark?.line, rule: item, field: nil, message: "must be a mapping of fields"))
            return
        }
        for (key, value) in mapping {
            guard let name = key.string else { continue }
            if allowed.contains(name) {
                values[name] = value
            } else {
                problems.append(RuleProblem(line: key.mark?.line, rule: item, field: name, message: "unknown field"))
            }
        }
    }

    var isMapping: Bool { node.mapping != nil }

    func has(_ field: String) -> Bool { values[field] != nil }

    /// The line of a field's value (or of the mapping when it is absent).
    func line(of field: String) -> Int? { (values[field] ?? node).mark?.line }

    /// Names the item once it is known, also in the problems found so far.
    mutating func name(_ item: String) {
        self.item = item
        for i in problems.indices where problems[i].rule == nil { problems[i].rule = item }
    }

    mutating func problem(_ field: String?, _ message: String, at node: Node? = nil) {
        let line = (node ?? field.flatMap { values[$0] } ?? self.node).mark?.line
        problems.append(RuleProblem(line: line, rule: item, field: field, message: message))
    }

    /// A scalar string of at most `maxLength` characters, without NUL.
    mutating func string(_ field: String, required: Bool = false, maxLength: Int = 1000) -> String? {
        guard let node = values[field] else {
            if required { problem(field, "is required") }
            return nil
        }
        guard let scalar = node.scalar, node.null == nil else {
            problem(field, "must be a string", at: node)
            return nil
        }
        return checked(scalar.string, field, node, maxLength: maxLength)
    }

    /// Lengths are Unicode scalars (as JSON Schema's maxLength counts them):
    /// one Character can hold any number of combining marks.
    mutating func checked(_ text: String, _ field: String, _ node: Node, maxLength: Int) -> String? {
        guard text.unicodeScalars.count <= maxLength else {
            problem(field, "must be at most \(maxLength) characters", at: node)
            return nil
        }
        // YAML's "\0" and JSON's "\u0000" escapes; PostgreSQL text refuses NUL.
        guard !text.utf8.contains(0) else {
            problem(field, "must not contain NUL (U+0000)", at: node)
            return nil
        }
        return text
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(
        _ field: String, required: Bool = false
    ) -> T? where T.RawValue == String {
        guard let text = string(field, required: required, maxLength: 64) else { return nil }
        guard let value = T(rawValue: text) else {
            problem(field, "must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return value
    }

    mutating func number(_ field: String, _ range: ClosedRange<Double>, required: Bool = false) -> Double? {
        guard let node = values[field] else {
            if required { problem(field, "is required") }
            return nil
        }
        guard let scalar = node.scalar, scalar.string.utf8.count <= 64, let value = Double(scalar.string), value.isFinite else {
            problem(field, "must be a number", at: node)
            return nil
        }
        guard range.contains(value) else {
            problem(field, "must be between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound))", at: node)
            return nil
        }
        return value
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }

    mutating func integer(_ field: String, _ range: ClosedRange<Int>) -> Int? {
        guard let node = values[field] else { return nil }
        guard let scalar = node.scalar, let value = Int(scalar.string), range.contains(value) else {
            problem(field, "must be a whole number from \(range.lowerBound) to \(range.upperBound)", at: node)
            return nil
        }
        return value
    }

    mutating func duration(_ field: String, _ range: ClosedRange<Int>) -> Int? {
        guard let node = values[field] else { return nil }
        guard let scalar = node.scalar, let seconds = DurationText.parse(scalar.string), range.contains(seconds) else {
            problem(field, "must be a duration from \(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound)), such as 30s, 15m, 4h or 1d", at: node)
            return nil
        }
        return seconds
    }

    mutating func bool(_ field: String) -> Bool? {
        guard let text = string(field, maxLength: 8) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default:
            problem(field, "must be true or false")
            return nil
        }
    }

    /// A list of strings (a single string is a list of one), at most
    /// `maxCount` items of at most `maxLength` characters.
    mutating func stringList(_ field: String, maxCount: Int = 100, maxLength: Int = 256) -> [String]? {
        guard let node = values[field] else { return nil }
        let items = node.sequence.map(Array.init) ?? [node]
        guard items.count <= maxCount else {
            problem(field, "at most \(maxCount) items", at: node)
            return nil
        }
        var out: [String] = []
        for item in items {
            guard let text = item.scalar?.string, item.null == nil else {
                problem(field, "must be a list of strings", at: item)
                return nil
            }
            guard let value = checked(text, field, item, maxLength: maxLength) else { return nil }
            out.append(value)
        }
        return out
    }

    /// A mapping of names to strings, at most `maxCount` entries.
    mutating func stringMap(_ field: String, maxCount: Int = 32, maxLength: Int = 256) -> [String: String]? {
        guard let node = values[field] else { return nil }
        guard let mapping = node.mapping else {
            problem(field, "must be a mapping of names to strings", at: node)
            return nil
        }
        guard mapping.count <= maxCount else {
            problem(field, "at most \(maxCount) entries", at: node)
            return nil
        }
        var out: [String: String] = [:]
        for (key, value) in mapping {
            guard let k = key.string, !k.isEmpty, let v = value.scalar?.string, value.null == nil else {
                problem(field, "must map names to strings", at: value)
                return nil
            }
            guard let name = checked(k, field, key, maxLength: maxLength), let text = checked(v, field, value, maxLength: maxLength)
            else { return nil }
            out[name] = text
        }
        return out
    }
}
