import Foundation
import Hummingbird
import TocsinCore

/// A small JSON request body read strictly: an object of at most 1 MiB,
/// known fields only, each of the expected type and within its bounds.
/// Problems become a 400 with details, all of them at once.
struct JSONBody {
    let fields: [String: Any]
    var issues: [ValidationIssue] = []

    static let maxBytes = 1 << 20

    static func read(_ request: Request, context: some APIRequestContext, allowed: Set<String>) async throws -> JSONBody {
        var request = request
        let buffer = try await request.collectBody(upTo: min(context.bodyLimit, maxBytes))
        let data = Data(buffer.readableBytesView)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw APIError(.badRequest, code: "malformed_json", message: "the body is not valid JSON")
        }
        guard let fields = object as? [String: Any] else {
            throw APIError.badRequest("the body must be a JSON object")
        }
        var body = JSONBody(fields: fields)
        for key in fields.keys.sorted() where !allowed.contains(key) {
            body.issues.append(ValidationIssue(field: String(key.prefix(64)),
                                               reason: "unknown field (expected \(allowed.sorted().joined(separator: ", ")))"))
        }
        return body
    }

    init(fields: [String: Any]) { self.fields = fields }

    private mutating func present(_ name: String, required: Bool) -> Any? {
        guard let value = fields[name], !(value is NSNull) else {
            if required { issues.append(ValidationIssue(field: name, reason: "is required")) }
            return nil
        }
        return value
    }

    /// Text: at most `maxLength` characters, no NUL.
    mutating func string(_ name: String, required: Bool = false, maxLength: Int = 1000) -> String? {
        guard let value = present(name, required: required) else { return nil }
        guard let text = value as? String else {
            issues.append(ValidationIssue(field: name, reason: "must be a string"))
            return nil
        }
        return checked(text, field: name, maxLength: maxLength)
    }

    mutating func checked(_ text: String, field: String, maxLength: Int) -> String? {
        guard text.unicodeScalars.count <= maxLength else {
            issues.append(ValidationIssue(field: field, reason: "must be at most \(maxLength) characters"))
            return nil
        }
        guard !text.utf8.contains(0) else {
            issues.append(ValidationIssue(field: field, reason: "must not contain NUL (U+0000)"))
            return nil
        }
        return text
    }

    /// Integers as JSON carries them: exact up to 2^53.
    static let maxInteger = 1 << 53

    mutating func integer(_ name: String, required: Bool = false, range: ClosedRange<Int>) -> Int? {
        guard let value = present(name, required: required) else { return nil }
        // JSONSerialization gives NSNumber; booleans and fractions are not integers.
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c",
              number.doubleValue.isFinite, let int = Int(exactly: number.doubleValue), range.contains(int)
        else {
            issues.append(ValidationIssue(field: name, reason: "must be an integer from \(range.lowerBound) to \(range.upperBound)"))
            return nil
        }
        return int
    }

    /// An object of string values: at most `maxCount` entries, names 1 to
    /// `maxLength` characters, values at most `maxLength`, no NUL.
    /// A field's raw JSON value (nil when absent or null).
    func raw(_ name: String) -> Any? {
        guard let value = fields[name], !(value is NSNull) else { return nil }
        return value
    }

    mutating func stringMap(_ name: String, maxCount: Int = 32, maxLength: Int = 256) -> [String: String]? {
        guard let value = present(name, required: false) else { return nil }
        guard let map = value as? [String: String] else {
            issues.append(ValidationIssue(field: name, reason: "must be an object of string values"))
            return nil
        }
        guard map.count <= maxCount else {
            issues.append(ValidationIssue(field: name, reason: "at most \(maxCount) entries"))
            return nil
        }
        for (key, text) in map {
            guard !key.isEmpty, checked(key, field: name, maxLength: maxLength) != nil,
                  checked(text, field: name, maxLength: maxLength) != nil
            else {
                if key.isEmpty { issues.append(ValidationIssue(field: name, reason: "names must not be empty")) }
                return nil
            }
        }
        return map
    }

    /// An RFC 3339 timestamp.
    mutating func timestamp(_ name: String, required: Bool = false) -> Date? {
        guard let text = string(name, required: required, maxLength: 64) else { return nil }
        guard let date = RFC3339.parse(text) else {
            issues.append(ValidationIssue(field: name, reason: "must be an RFC 3339 timestamp"))
            return nil
        }
        return date
    }

    /// Throws the 400 when anything was wrong.
    func check() throws {
        if !issues.isEmpty { throw APIError.badRequest("invalid request body", details: issues) }
    }
}
