import Foundation
import Logging
import Synchronization

/// Writes one JSON object per line to stderr:
/// `{"ts":"…","level":"info","msg":"…","logger":"tocsin", …metadata}`.
/// The message is a constant; data is in metadata (`request.id`, `rule`, …).
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    let label: String

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: Any] = [:]
        for (key, value) in metadata { fields[key] = Self.json(value) }
        if let provided = metadataProvider?.get() {
            for (key, value) in provided { fields[key] = Self.json(value) }
        }
        if let extra = event.metadata {
            for (key, value) in extra { fields[key] = Self.json(value) }
        }
        fields["ts"] = ISO8601DateFormatter.logFormatter.string(from: Date())
        fields["level"] = event.level.rawValue
        fields["msg"] = event.message.description
        fields["logger"] = label
        if event.level >= .error {
            fields["source"] = "\(event.file.split(separator: "/").last ?? ""):\(event.line)"
        }
        guard var data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return
        }
        data.append(0x0A)
        StandardError.write(data)
    }

    static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map(json)
        case .dictionary(let d): return d.mapValues(json)
        }
    }
}

/// The classic "ts level label: message key=value" lines, for terminals.
struct TextLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    let label: String

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let pairs = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line = "\(ISO8601DateFormatter.logFormatter.string(from: Date())) \(event.level.rawValue) \(event.message)\(pairs.isEmpty ? "" : " " + pairs)\n"
        StandardError.write(Data(line.utf8))
    }
}

enum StandardError {
    private static let lock = Mutex(())
    static func write(_ data: Data) {
        lock.withLock { _ in
            FileHandle.standardError.write(data)
        }
    }
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) static let logFormatter: ISO8601DateFormatter = {
        // ISO8601DateFormatter is thread-safe for formatting once configured.
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}
