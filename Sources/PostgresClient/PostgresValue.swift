import Foundation

// Values cross the wire in PostgreSQL's text format: parameters are sent as
// text (the server parses them for the column's type) and results are read
// as text and parsed here. The text format is stable across server versions
// and needs no per-type OIDs; no session setting is relied on, so the
// client also works behind a transaction-pooling PgBouncer.

/// A Swift value that can be bound as a `$n` parameter.
public protocol PostgresEncodable: Sendable {
    /// The value in PostgreSQL's text format, or `nil` for SQL NULL.
    var postgresText: String? { get }
}

/// A Swift value that can be read from a result column.
public protocol PostgresDecodable {
    /// Builds the value from PostgreSQL's text format; `nil` is SQL NULL.
    static func decode(postgresText: String?) throws -> Self
}

/// Non-optional types refuse NULL; they only implement this.
public protocol PostgresNonNullDecodable: PostgresDecodable {
    init(nonNullPostgresText text: String) throws
}

extension PostgresNonNullDecodable {
    public static func decode(postgresText: String?) throws -> Self {
        guard let text = postgresText else {
            throw PostgresError(kind: .decoding, message: "unexpected NULL for \(Self.self)")
        }
        return try Self(nonNullPostgresText: text)
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? { self?.postgresText }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(postgresText: String?) throws -> Self {
        guard let text = postgresText else { return nil }
        return try Wrapped.decode(postgresText: text)
    }
}

@inline(__always)
func decodingError<T>(_ type: T.Type, _ text: String) -> PostgresError {
    // The text is a column value and may be data: it is not included.
    PostgresError(kind: .decoding, message: "value of \(text.utf8.count) bytes is not a valid \(type)")
}

extension String: PostgresEncodable, PostgresNonNullDecodable {
    public var postgresText: String? { self }
    public init(nonNullPostgresText text: String) { self = text }
}

extension Substring: PostgresEncodable {
    public var postgresText: String? { String(self) }
}

extension Int: PostgresEncodable, PostgresNonNullDecodable {
    public var postgresText: String? { String(self) }
    public init(nonNullPostgresText text: String) throws {
        guard let value = Int(text) else { throw decodingError(Int.self, text) }
        self = value
    }
}

extension Int32: PostgresEncodable, PostgresNonNullDecodable {
    public var postgresText: String? { String(self) }
    public init(nonNullPostgresText text: String) throws {
        guard let value = Int32(text) else { throw decodingError(Int32.self, text) }
        self = value
    }
}

extension Int64: PostgresEncodable, PostgresNonNullDecodable {
    public var postgresText: String? { String(self) }
    public init(nonNullPostgresText text: String) throws {
        guard let value = Int64(text) else { throw decodingError(Int64.self, text) }
        self = value
    }
}

extension Double: PostgresEncodable, PostgresNonNullDecodable {
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return String(self)
    }
    public init(nonNullPostgresText text: String) throws {
        switch text {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default:
            guard let value = Double(text) else { throw decodingError(Double.self, text) }
            self = value
        }
    }
}

extension Bool: PostgresEncodable, PostgresNonNullDecodable {
    public var postgresText: String? { self ? "t" : "f" }
    public init(nonNullPostgresText text: String) throws {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw decodingError(Bool.self, text)
        }
    }
}

extension UUID: PostgresEncodable, PostgresNonNullDecodable {
    public var postgresText: String? { uuidString.lowercased() }
    public init(nonNullPostgresText text: String) throws {
        guard let value = UUID(uuidString: text) else { throw decodingError(UUID.self, text) }
        self = value
    }
}

extension Date: PostgresEncodable, PostgresNonNullDecodable {
    /// ISO 8601 in UTC with microseconds: PostgreSQL's own precision.
    public var postgresText: String? { PostgresTimestamp.format(self) }
    public init(nonNullPostgresText text: String) throws {
        guard let value = PostgresTimestamp.parse(text) else { throw decodingError(Date.self, text) }
        self = value
    }
}

/// A JSON (or jsonb) value: encoded and decoded with Foundation's JSON coders.
public struct PostgresJSON<Value: Codable & Sendable>: PostgresEncodable, PostgresNonNullDecodable, Sendable {
    public var value: Value
    public init(_ value: Value) { self.value = value }

    public var postgresText: String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(value) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    public init(nonNullPostgresText text: String) throws {
        do {
            value = try JSONDecoder().decode(Value.self, from: Data(text.utf8))
        } catch {
            throw PostgresError(kind: .decoding, message: "JSON value is not a valid \(Value.self)")
        }
    }
}
