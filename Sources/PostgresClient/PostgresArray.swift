import Foundation

extension Array: PostgresEncodable where Element: PostgresEncodable {
    /// An array literal: `{"a","b",NULL}`; bind it to a typed cast such as
    /// `$1::text[]`.
    public var postgresText: String? {
        // Built as UTF-8 bytes: elements without a quote or backslash (nearly
        // all) are copied whole.
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(count * 12 + 2)
        for (i, element) in enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            guard let text = element.postgresText else {
                out.append(contentsOf: "NULL".utf8)
                continue
            }
            out.append(UInt8(ascii: "\""))
            let utf8 = text.utf8
            if utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                for byte in utf8 {
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                    out.append(byte)
                }
            } else {
                out.append(contentsOf: utf8)
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
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
