import Foundation

/// The body of a target's `LLVMFuzzerTestOneInput`: runs `check` on the
/// input. A target checks properties with `require`; a violated one aborts,
/// and libFuzzer keeps the input as a crash.
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int, _ check: (UnsafeRawBufferPointer) -> Void) -> CInt {
    check(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// Aborts with `message` (and where) when a property does not hold.
public func require(_ condition: Bool, _ message: @autoclosure () -> String,
                    file: StaticString = #fileID, line: UInt = #line) {
    guard !condition else { return }
    FileHandle.standardError.write(Data("\nproperty violated (\(file):\(line)): \(message())\n".utf8))
    abort()
}

/// The input as text, as a file or body would be read (invalid UTF-8
/// becomes U+FFFD).
public func text(_ bytes: UnsafeRawBufferPointer) -> String {
    String(decoding: bytes, as: UTF8.self)
}

/// A short, printable excerpt of a string for messages.
public func excerpt(_ text: String, _ limit: Int = 80) -> String {
    let head = String(text.unicodeScalars.prefix(limit).map(Character.init))
    return head.debugDescription + (text.unicodeScalars.count > limit ? "…(\(text.utf8.count) bytes)" : "")
}

/// Text as the product bounds it: at most `maxLength` characters (Unicode
/// scalars, as JSON Schema's maxLength counts them) and no NUL.
public func isBoundedText(_ text: String, maxLength: Int) -> Bool {
    text.unicodeScalars.count <= maxLength && !text.utf8.contains(0)
}

/// A byte reader for targets that build structured values from the input.
public struct ByteReader {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var isAtEnd: Bool { position >= bytes.count }

    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func uint64() -> UInt64 {
        var value: UInt64 = 0
        for _ in 0..<8 { value = value << 8 | UInt64(byte()) }
        return value
    }

    /// The rest of the input.
    public mutating func rest() -> UnsafeRawBufferPointer {
        let start = min(position, bytes.count)
        position = bytes.count
        return UnsafeRawBufferPointer(rebasing: bytes[start...])
    }
}
