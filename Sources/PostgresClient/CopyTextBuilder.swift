/// Builds `COPY … FROM STDIN` text-format data: tab-separated columns,
/// newline-terminated rows, `\N` for NULL, backslash escapes.
public struct CopyTextBuilder: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var columnInRow = 0

    public init(reservingCapacity capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func append(_ value: String?) {
        if columnInRow > 0 { bytes.append(0x09) }
        columnInRow += 1
        guard let value else {
            bytes.append(0x5C); bytes.append(0x4E)  // \N
            return
        }
        let utf8 = value.utf8
        // Most values need no escaping: copy them in one go.
        if !utf8.contains(where: { $0 == 0x5C || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            bytes.append(contentsOf: utf8)
            return
        }
        for byte in utf8 {
            switch byte {
            case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
            case 0x09: bytes.append(0x5C); bytes.append(0x74)
            case 0x0A: bytes.append(0x5C); bytes.append(0x6E)
            case 0x0D: bytes.append(0x5C); bytes.append(0x72)
            default: bytes.append(byte)
            }
        }
    }

    /// A column whose bytes `write` appends, which must need no escaping
    /// (no backslash, tab, newline or carriage return).
    public mutating func appendUnescaped(_ write: (inout [UInt8]) -> Void) {
        if columnInRow > 0 { bytes.append(0x09) }
        columnInRow += 1
        write(&bytes)
    }

    public mutating func append(_ value: some PostgresEncodable) {
        append(value.postgresText)
    }

    public mutating func endRow() {
        bytes.append(0x0A)
        columnInRow = 0
    }
}
