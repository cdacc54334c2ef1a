/// A statement and its parameters, built by string interpolation so that a
/// value can only ever be bound, never pasted into the SQL:
///
/// ```swift
/// let query: PostgresQuery = "SELECT id FROM alerts WHERE rule_name = \(name) AND status = ANY(\(statuses)::text[])"
/// // sql: SELECT id FROM alerts WHERE rule_name = $1 AND status = ANY($2::text[])
/// ```
///
/// Every interpolated value becomes the next `$n` parameter. SQL text that
/// is not a value — an aggregate function chosen from a fixed list, a
/// column list — goes in with an explicit marker, `\(unescaped: fragment)`,
/// and must never come from input. Another query can be interpolated as a
/// fragment: its parameters are renumbered into this one.
public struct PostgresQuery: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The statement with `$1`, `$2`, … placeholders.
    public private(set) var sql: String
    /// The values of the placeholders, in order.
    public private(set) var bindings: [any PostgresEncodable]

    /// The SQL only: never the bound values, which can be data.
    public var description: String { sql }

    public init(stringLiteral value: StaticString) {
        self.sql = "\(value)"
        self.bindings = []
    }

    public init(stringInterpolation: StringInterpolation) {
        self.sql = stringInterpolation.sql
        self.bindings = stringInterpolation.bindings
    }

    /// A statement whose text is assembled elsewhere (migration files,
    /// generated SQL); `bindings` fill its `$n` placeholders.
    public init(unsafeSQL sql: String, bindings: [any PostgresEncodable] = []) {
        self.sql = sql
        self.bindings = bindings
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var bindings: [any PostgresEncodable] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            bindings.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: StaticString) {
            sql += "\(literal)"
        }

        /// A value, bound as the next parameter.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            bindings.append(value)
            sql += "$\(bindings.count)"
        }

        /// An optional value: NULL when nil.
        public mutating func appendInterpolation<T: PostgresEncodable>(_ value: T?) {
            bindings.append(value)
            sql += "$\(bindings.count)"
        }

        /// Trusted SQL text, pasted as it is. Never give it input.
        public mutating func appendInterpolation(unescaped fragment: String) {
            sql += fragment
        }

        /// Another query: its text, with its placeholders renumbered after
        /// the parameters bound so far.
        public mutating func appendInterpolation(_ query: PostgresQuery) {
            sql += query.renumbered(from: bindings.count)
            bindings += query.bindings
        }
    }

    /// The SQL with `$n` shifted by `offset`. Placeholders inside string
    /// literals, quoted identifiers and comments are left alone.
    func renumbered(from offset: Int) -> String {
        guard offset > 0, !bindings.isEmpty else { return sql }
        var out = ""
        out.reserveCapacity(sql.utf8.count + bindings.count)
        var scalars = sql.unicodeScalars[...]
        var quote: Unicode.Scalar?
        while let c = scalars.popFirst() {
            if let q = quote {
                out.unicodeScalars.append(c)
                if c == q { quote = nil }
                continue
            }
            if c == "'" || c == "\"" {
                quote = c
                out.unicodeScalars.append(c)
                continue
            }
            guard c == "$", let first = scalars.first, first.properties.numericType != nil, first.isASCII else {
                out.unicodeScalars.append(c)
                continue
            }
            var digits = ""
            while let d = scalars.first, d.isASCII, d.properties.numericType != nil {
                digits.unicodeScalars.append(d)
                scalars.removeFirst()
            }
            out += "$\((Int(digits) ?? 0) + offset)"
        }
        return out
    }

    public static func == (lhs: PostgresQuery, rhs: PostgresQuery) -> Bool {
        lhs.sql == rhs.sql && lhs.bindings.map(\.postgresText) == rhs.bindings.map(\.postgresText)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(sql)
    }

    /// Appends another query, separated by a space.
    public static func + (lhs: PostgresQuery, rhs: PostgresQuery) -> PostgresQuery {
        "\(lhs) \(rhs)"
    }
}
