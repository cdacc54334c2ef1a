import Foundation
import Hummingbird
import TocsinCore

/// A small JSON request body read strictly: an object, known fields only,
/// each of the expected type. Problems become a 400 with details.
struct JSONBody {
    let fields: [String: Any]
    var issues: [ValidationIssue] = []

    static func read(_ request: Request, context: TocsinRequestContext, allowed: Set<String>) async throws -> JSONBody {
        var request = request
        let buffer = try await request.collectBody(upTo: context.bodyLimit)
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
            body.issues.append(ValidationIssue(field: key, reason: "unknown field (expected \(allowed.sorted().joined(separator: ", ")))"))
        }
        return body
    }

    init(fields: [String: Any]) { self.fields = fields }

    mutating func string(_ name: String, required: Bool = false, maxLength: Int = 1000) -> String? {
        guard let value = fields[name], !(value is NSNull) else {
            if required { issues.append(ValidationIssue(field: name, reason: "is required")) }
            return nil
        }
        guard let text = value as? String else {
            issues.append(ValidationIssue(field: name, reason: "must be a string"))
            return nil
        }
        guard text.count <= maxLength else {
            issues.append(ValidationIssue(field: name, reason: "must be at most \(maxLength) characters"))
            return nil
        }
        guard !text.utf8.contains(0) else {
            issues.append(ValidationIssue(field: name, reason: "must not contain NUL (U+0000)"))
            return nil
        }
        return text
    }

    mutating func integer(_ name: String, required: Bool = false) -> Int? {
        guard let value = fields[name], !(value is NSNull) else {
            if required { issues.append(ValidationIssue(field: name, reason: "is required")) }
            return nil
        }
        // JSONSerialization gives NSNumber; booleans and fractions are not integers.
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c",
              let int = Int(exactly: number.doubleValue)
        else {
            issues.append(ValidationIssue(field: name, reason: "must be an integer"))
            return nil
        }
        return int
    }

    /// Throws the 400 when anything was wrong.
    func check() throws {
        if !issues.isEmpty { throw APIError.badRequest("invalid request body", details: issues) }
    }
}
