import Foundation

/// One metric event as pushed by an application.
public struct MetricEvent: Sendable, Equatable {
    public var name: String
    public var platform: String?
    public var value: Double
    /// When it happened; nil means "now" (the time it is received).
    public var occurredAt: Date?
    /// Labels in the order they were sent.
    public var labels: [Label]

    public struct Label: Sendable, Equatable {
        public var key: String
        public var value: String
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    public init(name: String, platform: String? = nil, value: Double = 1, occurredAt: Date? = nil, labels: [Label] = []) {
        self.name = name
        self.platform = platform
        self.value = value
        self.occurredAt = occurredAt
        self.labels = labels
    }

    /// The labels as a JSON object (keys in the order sent).
    public var labelsJSON: String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(2 + labels.count * 24)
        for (i, label) in labels.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.appendString(label.key, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONText.appendString(label.value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }
}

/// The names the product emits. Other names are accepted when they match
/// `MetricName.isValid`.
public enum MetricName {
    public static let vocabulary: [String] = [
        "oauth.success", "oauth.failure",
        "upload.success", "upload.failure",
        "webhook.received", "webhook.processed", "webhook.latency",
        "token.refresh.success", "token.refresh.failure",
        "api.call", "api.latency",
        "worker.run", "worker.duration",
    ]

    public static let maxLength = 128

    /// `^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`, at most 128 characters.
    public static func isValid(_ name: String) -> Bool {
        isValid(utf8: Array(name.utf8))
    }

    static func isValid(utf8 bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty, bytes.count <= maxLength else { return false }
        guard bytes[0] >= 0x61 && bytes[0] <= 0x7A else { return false }
        var previousDot = false
        for byte in bytes.dropFirst() {
            if byte == 0x2E {
                if previousDot { return false }
                previousDot = true
                continue
            }
            guard (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F else { return false }
            previousDot = false
        }
        return !previousDot
    }

    /// Latencies and durations are seconds and cannot be negative: names
    /// whose last segment is `latency` or `duration`.
    public static func isNonNegative(_ name: String) -> Bool {
        name == "latency" || name == "duration" || name.hasSuffix(".latency") || name.hasSuffix(".duration")
    }
}

/// Platform labels: lowercase, `^[a-z][a-z0-9_-]*$`, at most 64 characters.
public enum PlatformName {
    public static let maxLength = 64

    public static func isValid(_ platform: String) -> Bool {
        let bytes = Array(platform.utf8)
        guard !bytes.isEmpty, bytes.count <= maxLength, bytes[0] >= 0x61 && bytes[0] <= 0x7A else { return false }
        return bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D }
    }
}

public enum JSONText {
    /// The characters of a JSON string literal for `string`, without the quotes.
    public static func escaped(_ string: String) -> String {
        var out = ""
        appendString(string, to: &out, quoted: false)
        return out
    }

    static func appendString(_ string: String, to out: inout String, quoted: Bool = true) {
        var bytes: [UInt8] = []
        appendString(string, to: &bytes, quoted: quoted)
        out += String(decoding: bytes, as: UTF8.self)
    }

    /// The JSON string literal of `string` as UTF-8: `"` and `\` escaped,
    /// `\n`, `\r`, `\t`, other control characters as `\u00XX`; every other
    /// byte (multi-byte characters included) as it is.
    static func appendString(_ string: String, to out: inout [UInt8], quoted: Bool = true) {
        if quoted { out.append(UInt8(ascii: "\"")) }
        let utf8 = string.utf8
        if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(contentsOf: utf8)
        } else {
            let hex = Array("0123456789abcdef".utf8)
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case ..<0x20:
                    out.append(contentsOf: Array("\\u00".utf8))
                    out.append(hex[Int(byte >> 4)])
                    out.append(hex[Int(byte & 0xF)])
                default: out.append(byte)
                }
            }
        }
        if quoted { out.append(UInt8(ascii: "\"")) }
    }
}
