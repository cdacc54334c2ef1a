// CSV exports: any fields written with CSV.row read back, field for field
// and byte for byte, with a strict RFC 4180 reader written here (not the
// module's own CSV.parse, which is checked against it too).
import FuzzSupport
import TocsinCore

/// RFC 4180: records end with CRLF; a field is either quoted (quotes
/// doubled inside, anything else verbatim) or free of quote, comma, CR and
/// LF. Nil when the text is not such CSV.
func readRFC4180(_ text: String) -> [[[UInt8]]]? {
    let b = Array(text.utf8)
    var records: [[[UInt8]]] = []
    var record: [[UInt8]] = []
    var i = 0
    while i < b.count {
        var field: [UInt8] = []
        if b[i] == 0x22 {
            i += 1
            while true {
                guard i < b.count else { return nil }  // unterminated
                if b[i] == 0x22 {
                    if i + 1 < b.count, b[i + 1] == 0x22 {
                        field.append(0x22)
                        i += 2
                    } else {
                        i += 1
                        break
                    }
                } else {
                    field.append(b[i])
                    i += 1
                }
            }
        } else {
            while i < b.count, b[i] != 0x2C, b[i] != 0x0D {
                guard b[i] != 0x22, b[i] != 0x0A else { return nil }
                field.append(b[i])
                i += 1
            }
        }
        record.append(field)
        guard i < b.count else { return nil }  // every record ends with CRLF
        if b[i] == 0x2C {
            i += 1
        } else if b[i] == 0x0D, i + 1 < b.count, b[i + 1] == 0x0A {
            i += 2
            records.append(record)
            record = []
        } else {
            return nil
        }
    }
    guard record.isEmpty else { return nil }
    return records
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzInput(data, size) { bytes in
        // Records separated by U+001E, fields by U+001F (neither can then be in
        // a field); a field that is exactly U+0018 stands for nil.
        let input = text(bytes)
        let rows: [[String?]] = input.split(separator: "\u{1E}", omittingEmptySubsequences: false).map { line in
            line.split(separator: "\u{1F}", omittingEmptySubsequences: false).map { $0 == "\u{18}" ? nil : String($0) }
        }
        let csv = rows.map(CSV.row).joined()
        guard let read = readRFC4180(csv) else {
            require(false, "CSV.row wrote text that is not RFC 4180: \(excerpt(csv, 200))")
            return
        }
        let expected = rows.map { $0.map { Array(($0 ?? "").utf8) } }
        require(read == expected, "CSV round trip: \(rows.map { $0.map { excerpt($0 ?? "nil") } }) → \(excerpt(csv, 200))")
        // The module's own reader agrees.
        let parsed = CSV.parse(csv).map { $0.map { Array($0.utf8) } }
        require(parsed == expected, "CSV.parse reads \(excerpt(csv, 200)) differently")
    }
}
