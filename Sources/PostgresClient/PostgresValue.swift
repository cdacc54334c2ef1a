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
private func decodingError<T>(_ type: T.Type, _ text: String) -> PostgresError {
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

// MARK: - Arrays (one-dimensional)

extension Array: PostgresEncodable where Element: PostgresEncodable {
    /// An array literal: `{"a","b",NULL}`; bind it to a typed cast such as
    /// `$1::text[]`.
    public var postgresText: String? {
        var out = "{"
        for (i, element) in enumerated() {
            if i > 0 { out += "," }
            guard let text = element.postgresText else {
                out += "NULL"
                continue
            }
            out += "\""
            for ch in text.unicodeScalars {
                if ch == "\"" || ch == "\\" { out += "\\" }
                out.unicodeScalars.append(ch)
            }
            out += "\""
        }
        return out + "}"
    }
}

extension Array: PostgresDecodable, PostgresNonNullDecodable where Element: PostgresDecodable {
    public init(nonNullPostgresText text: String) throws {
        guard let elements = PostgresArrayParser.parse(text) else {
            throw decodingError([Element].self, text)
        }
        self = try elements.map { try Element.decode(postgresText: $0) }
    }
}

enum PostgresArrayParser {
    /// Parses a one-dimensional array in text output format. Elements are
    /// `nil` for an unquoted NULL.
    static func parse(_ text: String) -> [String?]? {
        var scalars = Substring(text).unicodeScalars[...]
        // Optional dimension decoration: "[0:2]={...}"
        if scalars.first == "[" {
            guard let eq = scalars.firstIndex(of: "=") else { return nil }
            scalars = scalars[scalars.index(after: eq)...]
        }
        guard scalars.first == "{", scalars.last == "}" else { return nil }
        scalars = scalars.dropFirst().dropLast()
        var result: [String?] = []
        if scalars.isEmpty { return result }
        var i = scalars.startIndex
        while true {
            var element = String.UnicodeScalarView()
            var quoted = false
            if i < scalars.endIndex, scalars[i] == "\"" {
                quoted = true
                i = scalars.index(after: i)
                while i < scalars.endIndex, scalars[i] != "\"" {
                    if scalars[i] == "\\" {
                        i = scalars.index(after: i)
                        guard i < scalars.endIndex else { return nil }
                    }
                    element.append(scalars[i])
                    i = scalars.index(after: i)
                }
                guard i < scalars.endIndex else { return nil }
                i = scalars.index(after: i)
            } else {
                while i < scalars.endIndex, scalars[i] != "," {
                    if scalars[i] == "{" { return nil }  // multi-dimensional: not supported
                    element.append(scalars[i])
                    i = scalars.index(after: i)
                }
            }
            let value = String(element)
            result.append(!quoted && value == "NULL" ? nil : value)
            if i == scalars.endIndex { break }
            guard scalars[i] == "," else { return nil }
            i = scalars.index(after: i)
        }
        return result
    }
}

// MARK: - Timestamps

/// Formats and parses `timestamptz` text without Foundation's calendars:
/// a fixed, locale-free format in both directions.
public enum PostgresTimestamp {
    public static func format(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        var seconds = Int64(t.rounded(.down))
        var micros = Int64(((t - Double(seconds)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            seconds += 1
            micros -= 1_000_000
        }
        let days = floorDiv(seconds, 86_400)
        let secondOfDay = seconds - days * 86_400
        let (y, m, d) = civil(fromDays: days)
        var out = ""
        out.reserveCapacity(27)
        out += pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) + "T"
        out += pad(secondOfDay / 3600, 2) + ":" + pad(secondOfDay / 60 % 60, 2) + ":" + pad(secondOfDay % 60, 2)
        out += "." + pad(micros, 6) + "Z"
        return out
    }

    /// Accepts `YYYY-MM-DD[ T]HH:MM:SS[.f…][Z|±HH[:MM[:SS]]]`, a plain date
    /// (midnight UTC) and `infinity`/`-infinity`.
    public static func parse(_ text: String) -> Date? {
        if text == "infinity" { return .distantFuture }
        if text == "-infinity" { return .distantPast }
        let b = Array(text.utf8)
        var i = 0
        func digits(_ n: Int) -> Int64? {
            guard i + n <= b.count else { return nil }
            var v: Int64 = 0
            for k in 0..<n {
                let c = b[i + k]
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int64(c - 48)
            }
            i += n
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(45), let month = digits(2), expect(45), let day = digits(2),
              (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var seconds = days(fromCivil: year, month, day) * 86_400
        var fraction = 0.0
        if i == b.count { return Date(timeIntervalSince1970: Double(seconds)) }
        guard i < b.count, b[i] == 32 || b[i] == 84 else { return nil }  // ' ' or 'T'
        i += 1
        guard let hh = digits(2), expect(58), let mm = digits(2), expect(58), let ss = digits(2),
              hh < 24, mm < 60, ss < 61
        else { return nil }
        seconds += hh * 3600 + mm * 60 + ss
        if i < b.count, b[i] == 46 {  // '.'
            i += 1
            var scale = 0.1
            var any = false
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                fraction += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
                any = true
            }
            guard any else { return nil }
        }
        if i < b.count {
            if b[i] == 90 {  // 'Z'
                i += 1
            } else if b[i] == 43 || b[i] == 45 {  // '+' / '-'
                let sign: Int64 = b[i] == 43 ? 1 : -1
                i += 1
                guard let oh = digits(2) else { return nil }
                var offset = oh * 3600
                if expect(58) {
                    guard let om = digits(2) else { return nil }
                    offset += om * 60
                    if expect(58) {
                        guard let os = digits(2) else { return nil }
                        offset += os
                    }
                } else if i + 2 <= b.count, let om = digits(2) {
                    offset += om * 60  // "+0530"
                }
                seconds -= sign * offset
            } else {
                return nil
            }
        }
        guard i == b.count else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

// MARK: - Results

/// The rows a statement returned, read into Swift strings so the libpq
/// result can be freed on the database thread.
public struct PostgresRows: Sendable, RandomAccessCollection {
    final class Storage: Sendable {
        let columns: [String]
        let columnIndex: [String: Int]
        let values: [String?]
        init(columns: [String], values: [String?]) {
            self.columns = columns
            var index: [String: Int] = [:]
            for (i, name) in columns.enumerated() where index[name] == nil { index[name] = i }
            self.columnIndex = index
            self.values = values
        }
    }

    let storage: Storage
    /// Rows changed by INSERT/UPDATE/DELETE/COPY, or returned by SELECT.
    public let affectedRows: Int

    init(columns: [String], values: [String?], affectedRows: Int) {
        self.storage = Storage(columns: columns, values: values)
        self.affectedRows = affectedRows
    }

    public var columns: [String] { storage.columns }
    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.columns.isEmpty ? 0 : storage.values.count / storage.columns.count }
    public subscript(position: Int) -> PostgresRow { PostgresRow(storage: storage, row: position) }
}

public struct PostgresRow: Sendable {
    let storage: PostgresRows.Storage
    let row: Int

    public var columns: [String] { storage.columns }

    /// The raw text of a column, `nil` for NULL.
    public func text(_ index: Int) -> String? {
        storage.values[row * storage.columns.count + index]
    }

    public func index(of column: String) throws -> Int {
        guard let index = storage.columnIndex[column] else {
            throw PostgresError(kind: .decoding, message: "no column named \(column) in the result")
        }
        return index
    }

    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        let index = try index(of: column)
        do {
            return try T.decode(postgresText: text(index))
        } catch var error as PostgresError {
            error.message = "column \(column): \(error.message)"
            throw error
        }
    }

    public func decode<T: PostgresDecodable>(_ index: Int, as type: T.Type = T.self) throws -> T {
        guard index >= 0, index < storage.columns.count else {
            throw PostgresError(kind: .decoding, message: "column index \(index) out of range")
        }
        return try T.decode(postgresText: text(index))
    }

    public func isNull(_ column: String) throws -> Bool {
        text(try index(of: column)) == nil
    }
}
