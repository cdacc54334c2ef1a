/// Builds `COPY … FROM STDIN (FORMAT binary)` data: the signature and
/// header, then per row the field count and each field as a 4-byte length
/// (-1 for NULL) and its binary value, then the trailer. Binary values need
/// no escaping on this side and no text parsing on the server's (of
/// timestamps and numbers, the costliest part of a text COPY there).
public struct CopyBinaryBuilder: Sendable {
    private var buffer: [UInt8]

    /// Seconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
    static let postgresEpoch = 946_684_800

    public init(reservingCapacity capacity: Int = 0) {
        buffer = []
        buffer.reserveCapacity(capacity + 21)
        buffer.append(contentsOf: Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00])
        appendInteger(Int32(0))  // flags
        appendInteger(Int32(0))  // header extension length
    }

    private mutating func appendInteger<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
    }

    /// Starts a row of `fields` fields.
    public mutating func beginRow(fields: Int16) {
        appendInteger(fields)
    }

    public mutating func appendNull() {
        appendInteger(Int32(-1))
    }

    /// A `timestamptz`: `seconds` from the Unix epoch and `micros` (0..<10⁶)
    /// more. Out of PostgreSQL's range only for years past 294,000.
    public mutating func appendTimestamp(unixSeconds seconds: Int, micros: Int) {
        appendInteger(Int32(8))
        let (whole, overflow) = (seconds &- Self.postgresEpoch).multipliedReportingOverflow(by: 1_000_000)
        appendInteger(Int64(overflow ? (seconds < 0 ? Int.min : Int.max) : whole &+ micros))
    }

    /// A `text` (or NULL); PostgreSQL checks the bytes are valid in the
    /// database's encoding and holds no NUL.
    public mutating func append(_ text: String?) {
        guard var utf8 = text else { return appendNull() }
        utf8.withUTF8 { bytes in
            appendInteger(Int32(truncatingIfNeeded: bytes.count))
            buffer.append(contentsOf: bytes)
        }
    }

    /// A `double precision`.
    public mutating func append(_ value: Double) {
        appendInteger(Int32(8))
        appendInteger(value.bitPattern)
    }

    /// A `jsonb` given as JSON text (binary jsonb is version 1, then text).
    public mutating func appendJSONB(_ json: String) {
        var json = json
        json.withUTF8 { bytes in
            appendInteger(Int32(truncatingIfNeeded: bytes.count + 1))
            buffer.append(1)
            buffer.append(contentsOf: bytes)
        }
    }

    /// The data, with the trailer.
    public var bytes: [UInt8] {
        var out = buffer
        withUnsafeBytes(of: Int16(-1).bigEndian) { out.append(contentsOf: $0) }
        return out
    }
}
