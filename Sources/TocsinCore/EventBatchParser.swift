import Foundation

/// What is wrong with one part of a request: the event's index in the
/// batch, the field, and why.
public struct ValidationIssue: Sendable, Equatable, Codable {
    public var index: Int?
    public var field: String?
    public var reason: String

    public init(index: Int? = nil, field: String? = nil, reason: String) {
        self.index = index
        self.field = field
        self.reason = reason
    }
}

/// Parses and validates the body of `POST /api/metrics` in one pass over
/// the bytes: one event object or an array of them.
///
/// Validation is complete before anything is stored: the result is either
/// every event, or the issues (the first `maxReportedIssues`, with the total).
public struct EventBatchParser: Sendable {
    public struct Limits: Sendable {
        public var maxEvents = 10_000
        public var maxLabels = 32
        public var maxLabelLength = 256
        /// How far in the future `occurred_at` may be.
        public var futureTolerance: Double = 300
        /// Events older than this many days are refused.
        public var retentionDays = 30
        public var maxReportedIssues = 100
        /// Values are finite and within ±`maxAbsValue`, so sums and averages
        /// over any window stay far from Double's limits.
        public var maxAbsValue = 1e12
        /// Latencies and durations are seconds from 0 to this (365 days).
        public var maxSeconds = 31_536_000.0
        public init() {}
    }

    public enum Outcome: Sendable, Equatable {
        case valid([MetricEvent])
        case invalid(issues: [ValidationIssue], total: Int)
        /// Not JSON, or not an object/array at the top: `reason` says where.
        case malformed(reason: String)
        case tooManyEvents(limit: Int)
    }

    public var limits: Limits
    /// The current time, for the occurred_at checks.
    public var now: Date

    public init(now: Date, limits: Limits = Limits()) {
        self.now = now
        self.limits = limits
    }

    public func parse(_ body: [UInt8]) -> Outcome {
        body.withUnsafeBufferPointer { buffer in
            var scanner = Scanner(bytes: buffer)
            var state = State(parser: self)
            do {
                scanner.skipWhitespace()
                switch scanner.peek() {
                case UInt8(ascii: "["):
                    scanner.advance()
                    scanner.skipWhitespace()
                    if scanner.peek() == UInt8(ascii: "]") {
                        scanner.advance()
                    } else {
                        var index = 0
                        while true {
                            if index >= limits.maxEvents { return .tooManyEvents(limit: limits.maxEvents) }
                            try state.parseEvent(&scanner, index: index)
                            index += 1
                            scanner.skipWhitespace()
                            let c = try scanner.next()
                            if c == UInt8(ascii: "]") { break }
                            guard c == UInt8(ascii: ",") else { throw scanner.malformed("expected ',' or ']'", back: 1) }
                            scanner.skipWhitespace()
                        }
                    }
                    if state.events.isEmpty && state.total == 0 {
                        state.report(ValidationIssue(reason: "the array is empty: send at least one event"))
                    }
                case UInt8(ascii: "{"):
                    try state.parseEvent(&scanner, index: 0)
                case nil:
                    throw scanner.malformed("the body is empty")
                default:
                    throw scanner.malformed("expected an event object or an array of events")
                }
                scanner.skipWhitespace()
                guard scanner.atEnd else { throw scanner.malformed("unexpected data after the JSON value") }
            } catch let error as Malformed {
                return .malformed(reason: error.reason)
            } catch {
                return .malformed(reason: "\(error)")
            }
            if state.total > 0 { return .invalid(issues: state.issues, total: state.total) }
            return .valid(state.events)
        }
    }

    struct Malformed: Error {
        var reason: String
    }

    private struct State {
        let parser: EventBatchParser
        var events: [MetricEvent] = []
        var issues: [ValidationIssue] = []
        var total = 0

        init(parser: EventBatchParser) { self.parser = parser }

        mutating func report(_ issue: ValidationIssue) {
            total += 1
            if issues.count < parser.limits.maxReportedIssues { issues.append(issue) }
        }

        mutating func parseEvent(_ s: inout Scanner, index: Int) throws {
            guard s.peek() == UInt8(ascii: "{") else {
                try s.skipValue()
                report(ValidationIssue(index: index, reason: "an event must be a JSON object"))
                return
            }
            s.advance()
            let issuesBefore = total
            var name: String?
            var platform: String?
            var value: Double = 1
            var occurredAt: Date?
            var labels: [MetricEvent.Label] = []
            // The known fields seen, one bit each (an unknown field is an
            // issue whether or not it repeats).
            var seen: UInt8 = 0
            s.skipWhitespace()
            if s.peek() == UInt8(ascii: "}") {
                s.advance()
            } else {
                while true {
                    guard s.peek() == UInt8(ascii: "\"") else { throw s.malformed("expected a field name") }
                    let key = try s.parseString()
                    s.skipWhitespace()
                    guard try s.next() == UInt8(ascii: ":") else { throw s.malformed("expected ':'", back: 1) }
                    s.skipWhitespace()
                    let bit = Self.fieldBit(key)
                    if seen & bit != 0 {
                        report(ValidationIssue(index: index, field: key, reason: "the field appears twice"))
                        try s.skipValue()
                    } else {
                        seen |= bit
                        switch key {
                        case "name":
                            if s.peek() == UInt8(ascii: "\"") {
                                name = try s.parseString()
                            } else {
                                try s.skipValue()
                                report(ValidationIssue(index: index, field: "name", reason: "must be a string"))
                            }
                        case "platform":
                            if s.peek() == UInt8(ascii: "\"") {
                                let text = try s.parseString()
                                if PlatformName.isValid(text) {
                                    platform = text
                                } else {
                                    report(ValidationIssue(index: index, field: "platform",
                                                           reason: "must be a lowercase label of 1 to 64 characters (a-z, 0-9, '_', '-'), starting with a letter"))
                                }
                            } else if s.peekLiteral("null") {
                                try s.skipValue()
                            } else {
                                try s.skipValue()
                                report(ValidationIssue(index: index, field: "platform", reason: "must be a string or null"))
                            }
                        case "value":
                            if let number = try s.parseNumberIfPresent() {
                                if number.isFinite, abs(number) <= parser.limits.maxAbsValue {
                                    value = number
                                } else {
                                    report(ValidationIssue(index: index, field: "value",
                                                           reason: "must be a finite number from -1e12 to 1e12"))
                                }
                            } else {
                                try s.skipValue()
                                report(ValidationIssue(index: index, field: "value", reason: "must be a number"))
                            }
                        case "occurred_at":
                            if s.peek() == UInt8(ascii: "\"") {
                                let text = try s.parseString()
                                if let seconds = RFC3339.parse(text) {
                                    occurredAt = seconds
                                } else {
                                    report(ValidationIssue(index: index, field: "occurred_at",
                                                           reason: "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-29T06:55:23Z"))
                                }
                            } else {
                                try s.skipValue()
                                report(ValidationIssue(index: index, field: "occurred_at", reason: "must be a string (RFC 3339 timestamp)"))
                            }
                        case "labels":
                            if s.peek() == UInt8(ascii: "{") {
                                labels = try parseLabels(&s, index: index)
                            } else {
                                try s.skipValue()
                                report(ValidationIssue(index: index, field: "labels", reason: "must be an object of string values"))
                            }
                        default:
                            try s.skipValue()
                            report(ValidationIssue(index: index, field: key,
                                                   reason: "unknown field (expected name, platform, value, occurred_at, labels)"))
                        }
                    }
                    s.skipWhitespace()
                    let c = try s.next()
                    if c == UInt8(ascii: "}") { break }
                    guard c == UInt8(ascii: ",") else { throw s.malformed("expected ',' or '}'", back: 1) }
                    s.skipWhitespace()
                }
            }
            // Checks that need several fields.
            if let name {
                if name.isEmpty {
                    report(ValidationIssue(index: index, field: "name", reason: "must not be empty"))
                } else if !MetricName.isValid(name) {
                    report(ValidationIssue(index: index, field: "name",
                                           reason: "must match ^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)*$ and be at most 128 characters"))
                } else if MetricName.isNonNegative(name), !(0...parser.limits.maxSeconds).contains(value) {
                    report(ValidationIssue(index: index, field: "value",
                                           reason: "latencies and durations are seconds from 0 to 31536000 (365 days)"))
                }
            } else if seen & Self.fieldBit("name") == 0 {
                report(ValidationIssue(index: index, field: "name", reason: "is required"))
            }
            if let occurredAt {
                if occurredAt > parser.now.addingTimeInterval(parser.limits.futureTolerance) {
                    report(ValidationIssue(index: index, field: "occurred_at", reason: "is more than 5 minutes in the future"))
                } else if occurredAt < parser.now.addingTimeInterval(-Double(parser.limits.retentionDays) * 86_400) {
                    report(ValidationIssue(index: index, field: "occurred_at",
                                           reason: "is older than the retention of \(parser.limits.retentionDays) days"))
                }
            }
            if total == issuesBefore, let name {
                events.append(MetricEvent(name: name, platform: platform, value: value, occurredAt: occurredAt, labels: labels))
            }
        }

        /// Whether `text` has more than `limit` unicode scalars (counted only
        /// when its UTF-8 is longer than that: a scalar is at least a byte).
        static func scalarCount(_ text: String, over limit: Int) -> Bool {
            text.utf8.count > limit && text.unicodeScalars.count > limit
        }

        static func fieldBit(_ key: String) -> UInt8 {
            switch key {
            case "name": return 1
            case "platform": return 2
            case "value": return 4
            case "occurred_at": return 8
            case "labels": return 16
            default: return 0
            }
        }

        mutating func parseLabels(_ s: inout Scanner, index: Int) throws -> [MetricEvent.Label] {
            s.advance()  // {
            var labels: [MetricEvent.Label] = []
            var reportedCount = false
            s.skipWhitespace()
            if s.peek() == UInt8(ascii: "}") {
                s.advance()
                return labels
            }
            let limits = parser.limits
            while true {
                guard s.peek() == UInt8(ascii: "\"") else { throw s.malformed("expected a label name") }
                s.decodedNUL = false
                let key = try s.parseString()
                s.skipWhitespace()
                guard try s.next() == UInt8(ascii: ":") else { throw s.malformed("expected ':'", back: 1) }
                s.skipWhitespace()
                // Built only for a report: most labels have none.
                var field: String { "labels." + key }
                if s.peek() == UInt8(ascii: "\"") {
                    let value = try s.parseString()
                    if key.isEmpty {
                        report(ValidationIssue(index: index, field: "labels", reason: "label names must not be empty"))
                    } else if s.decodedNUL {
                        report(ValidationIssue(index: index, field: String(field.prefix(80)),
                                               reason: "label names and values must not contain NUL (U+0000)"))
                    } else if Self.scalarCount(key, over: limits.maxLabelLength) || Self.scalarCount(value, over: limits.maxLabelLength) {
                        // Scalars, as the schema's maxLength: one Character can be any number of them.
                        report(ValidationIssue(index: index, field: String(field.prefix(80)),
                                               reason: "label names and values are at most \(limits.maxLabelLength) characters"))
                    } else if reportedCount {
                        // Over the limit: the batch is refused; no more checks
                        // (a linear one per label would be quadratic here).
                    } else if labels.contains(where: { $0.key == key }) {
                        // At most maxLabels to look through.
                        report(ValidationIssue(index: index, field: field, reason: "the label appears twice"))
                    } else {
                        labels.append(.init(key: key, value: value))
                    }
                } else {
                    try s.skipValue()
                    report(ValidationIssue(index: index, field: String(field.prefix(80)), reason: "label values must be strings"))
                }
                if labels.count > limits.maxLabels && !reportedCount {
                    reportedCount = true
                    report(ValidationIssue(index: index, field: "labels", reason: "at most \(limits.maxLabels) labels"))
                }
                s.skipWhitespace()
                let c = try s.next()
                if c == UInt8(ascii: "}") { break }
                guard c == UInt8(ascii: ",") else { throw s.malformed("expected ',' or '}'", back: 1) }
                s.skipWhitespace()
            }
            return labels
        }
    }

    /// A strict JSON scanner (RFC 8259) over UTF-8 bytes.
    struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0
        /// Set when a string decoded `\u0000`: the only way a NUL gets into
        /// one (a raw one is refused as a control character).
        var decodedNUL = false

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        var atEnd: Bool { position >= bytes.count }

        func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func advance() { position += 1 }

        mutating func next() throws -> UInt8 {
            guard position < bytes.count else { throw malformed("unexpected end of the body") }
            defer { position += 1 }
            return bytes[position]
        }

        func malformed(_ what: String, back: Int = 0) -> Malformed {
            Malformed(reason: "malformed JSON at byte \(max(0, position - back)): \(what)")
        }

        mutating func skipWhitespace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x0A, 0x0D, 0x09: position += 1
                default: return
                }
            }
        }

        func peekLiteral(_ literal: StaticString) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard position + count <= bytes.count else { return false }
            let start = literal.utf8Start
            for i in 0..<count where bytes[position + i] != start[i] { return false }
            return true
        }

        mutating func expectLiteral(_ literal: StaticString) throws {
            guard peekLiteral(literal) else { throw malformed("invalid literal") }
            position += literal.utf8CodeUnitCount
        }

        /// Parses a string (the scanner is on its opening quote).
        mutating func parseString() throws -> String {
            position += 1
            let start = position
            // Fast path: no escapes; plain ASCII (nearly every string) needs
            // no UTF-8 validation.
            var high: UInt8 = 0
            while position < bytes.count {
                let c = bytes[position]
                if c == 0x22 {
                    let slice = UnsafeBufferPointer(rebasing: bytes[start..<position])
                    position += 1
                    if high < 0x80 { return String(decoding: slice, as: UTF8.self) }
                    guard let text = String(validating: slice, as: UTF8.self) else {
                        throw malformed("string is not valid UTF-8")
                    }
                    return text
                }
                high |= c
                if c == 0x5C { break }
                if c < 0x20 { throw malformed("control character in a string") }
                position += 1
            }
            // Slow path with escapes.
            var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<position]))
            while true {
                let c = try next()
                switch c {
                case 0x22:
                    guard let text = String(validating: out, as: UTF8.self) else {
                        throw malformed("string is not valid UTF-8")
                    }
                    return text
                case 0x5C:
                    let e = try next()
                    switch e {
                    case 0x22: out.append(0x22)
                    case 0x5C: out.append(0x5C)
                    case 0x2F: out.append(0x2F)
                    case 0x62: out.append(0x08)
                    case 0x66: out.append(0x0C)
                    case 0x6E: out.append(0x0A)
                    case 0x72: out.append(0x0D)
                    case 0x74: out.append(0x09)
                    case 0x75:
                        var scalar = try hex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard try next() == 0x5C, try next() == 0x75 else { throw malformed("unpaired surrogate") }
                            let low = try hex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw malformed("unpaired surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            throw malformed("unpaired surrogate")
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw malformed("invalid \\u escape") }
                        if scalar == 0 { decodedNUL = true }
                        out.append(contentsOf: Array(String(Character(unicode)).utf8))
                    default:
                        throw malformed("invalid escape", back: 1)
                    }
                default:
                    if c < 0x20 { throw malformed("control character in a string", back: 1) }
                    out.append(c)
                }
            }
        }

        mutating func hex4() throws -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = try next()
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw malformed("invalid \\u escape", back: 1)
                }
                v = v << 4 | d
            }
            return v
        }

        /// A number when the scanner is on one, else nil (nothing consumed).
        mutating func parseNumberIfPresent() throws -> Double? {
            guard let c = peek(), c == 0x2D || (c >= 0x30 && c <= 0x39) else { return nil }
            let start = position
            if bytes[position] == 0x2D { position += 1 }
            guard let first = peek(), first >= 0x30, first <= 0x39 else { throw malformed("invalid number") }
            if first == 0x30 {
                position += 1
            } else {
                while let d = peek(), d >= 0x30, d <= 0x39 { position += 1 }
            }
            if peek() == 0x2E {
                position += 1
                guard let d = peek(), d >= 0x30, d <= 0x39 else { throw malformed("invalid number") }
                while let d = peek(), d >= 0x30, d <= 0x39 { position += 1 }
            }
            if let e = peek(), e == 0x65 || e == 0x45 {
                position += 1
                if let sign = peek(), sign == 0x2B || sign == 0x2D { position += 1 }
                guard let d = peek(), d >= 0x30, d <= 0x39 else { throw malformed("invalid number") }
                while let d = peek(), d >= 0x30, d <= 0x39 { position += 1 }
            }
            let length = position - start
            guard length < 64 else { return .infinity }  // absurdly long: refused as not finite
            // strtod on a NUL-terminated copy: correctly rounded.
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buffer in
                for i in 0..<length { buffer[i] = CChar(bitPattern: bytes[start + i]) }
                buffer[length] = 0
                return strtod(buffer.baseAddress!, nil)
            }
        }

        /// Skips any JSON value (validating it).
        mutating func skipValue(depth: Int = 0) throws {
            guard depth < 64 else { throw malformed("nesting too deep") }
            skipWhitespace()
            guard let c = peek() else { throw malformed("unexpected end of the body") }
            switch c {
            case 0x22: _ = try parseString()
            case 0x7B:
                position += 1
                skipWhitespace()
                if peek() == 0x7D { position += 1; return }
                while true {
                    skipWhitespace()
                    guard peek() == 0x22 else { throw malformed("expected a field name") }
                    _ = try parseString()
                    skipWhitespace()
                    guard try next() == 0x3A else { throw malformed("expected ':'", back: 1) }
                    try skipValue(depth: depth + 1)
                    skipWhitespace()
                    let n = try next()
                    if n == 0x7D { return }
                    guard n == 0x2C else { throw malformed("expected ',' or '}'", back: 1) }
                }
            case 0x5B:
                position += 1
                skipWhitespace()
                if peek() == 0x5D { position += 1; return }
                while true {
                    try skipValue(depth: depth + 1)
                    skipWhitespace()
                    let n = try next()
                    if n == 0x5D { return }
                    guard n == 0x2C else { throw malformed("expected ',' or ']'", back: 1) }
                }
            case 0x74: try expectLiteral("true")
            case 0x66: try expectLiteral("false")
            case 0x6E: try expectLiteral("null")
            default:
                guard try parseNumberIfPresent() != nil else { throw malformed("unexpected character") }
            }
        }
    }
}
