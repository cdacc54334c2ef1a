import Foundation

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
