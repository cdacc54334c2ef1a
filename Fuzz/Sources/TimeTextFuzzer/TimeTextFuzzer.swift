// RFC 3339 timestamps and durations (DurationText): text either parses to a
// value in range or is refused, never traps; format → parse is the identity
// on valid values, and parse → format → parse is stable.
import Foundation
import FuzzSupport
import TocsinCore

/// Dates that `RFC3339.format` writes as themselves: years 0001 to 9999
/// (to the last Double before 10000-01-01).
let formattable = -62_135_596_800.0...(253_402_300_800.0).nextDown

/// How far a formatted-and-parsed date may be from the original: format
/// keeps microseconds, and a Date holds a Double of seconds since 2001, so
/// far from 2001 (and in each conversion from 1970) the nearest Double to
/// a microsecond is coarser.
func tolerance(_ date: Date) -> Double {
    0.5e-6 + 4 * max(date.timeIntervalSince1970.ulp, date.timeIntervalSinceReferenceDate.ulp)
}

func checkTimestamp(text: String) {
    guard let date = RFC3339.parse(text) else { return }
    let t = date.timeIntervalSince1970
    require(t.isFinite && formattable.contains(t), "\(excerpt(text)) parsed to \(t), outside years 0001–9999")
    let formatted = RFC3339.format(date)
    guard let again = RFC3339.parse(formatted) else {
        require(false, "\(excerpt(text)) → \(formatted), which does not parse")
        return
    }
    require(abs(again.timeIntervalSince1970 - t) <= tolerance(date),
            "\(excerpt(text)) → \(t) → \(formatted) → \(again.timeIntervalSince1970)")
    // And once more: the UTC text is stable.
    let utc = RFC3339.format(again)
    require(RFC3339.parse(utc).map { abs($0.timeIntervalSince1970 - again.timeIntervalSince1970) <= tolerance(date) } == true,
            "\(formatted) is not stable: \(utc)")
}

func checkDate(_ t: Double) {
    // format writes any Date (NaN and infinities included), and its text parses.
    let date = Date(timeIntervalSince1970: t)
    let formatted = RFC3339.format(date)
    guard let parsed = RFC3339.parse(formatted) else {
        require(false, "format(\(t)) = \(formatted), which does not parse")
        return
    }
    let t = date.timeIntervalSince1970  // what the Date holds
    guard t.isFinite, formattable.contains(t) else { return }
    require(abs(parsed.timeIntervalSince1970 - t) <= tolerance(date), "\(t) → \(formatted) → \(parsed.timeIntervalSince1970)")
    // Where a Date holds microseconds exactly, the text is a fixed point.
    if abs(t) < 2e9 && abs(date.timeIntervalSinceReferenceDate) < 2e9 {
        require(RFC3339.format(parsed) == formatted, "\(t) → \(formatted) → \(RFC3339.format(parsed))")
    }
}

func checkDuration(text: String) {
    guard let seconds = DurationText.parse(text) else { return }
    require((0...DurationText.maximumSeconds).contains(seconds), "\(excerpt(text)) parsed to \(seconds) s")
    require(DurationText.parse(DurationText.format(seconds)) == seconds,
            "\(excerpt(text)) → \(seconds) → \(DurationText.format(seconds)) → \(String(describing: DurationText.parse(DurationText.format(seconds))))")
}

func checkDuration(_ seconds: Int) {
    let formatted = DurationText.format(seconds)
    let parsed = DurationText.parse(formatted)
    if (0...DurationText.maximumSeconds).contains(seconds) {
        require(parsed == seconds, "\(seconds) → \(formatted) → \(String(describing: parsed))")
    } else {
        require(parsed == nil, "\(seconds), out of range, → \(formatted) → \(String(describing: parsed))")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzInput(data, size) { bytes in
        var reader = ByteReader(bytes)
        switch reader.byte() % 4 {
        case 0:
            checkTimestamp(text: text(reader.rest()))
        case 1:
            let bits = reader.uint64()
            checkDate(Double(bitPattern: bits))
            // And a date in range from the same bits: microseconds since 0001.
            let span = UInt64((formattable.upperBound - formattable.lowerBound) * 1_000_000)
            checkDate(formattable.lowerBound + Double(bits % span) / 1_000_000)
        case 2:
            checkDuration(text: text(reader.rest()))
        default:
            let bits = reader.uint64()
            checkDuration(Int(truncatingIfNeeded: bits))
            checkDuration(Int(bits % UInt64(DurationText.maximumSeconds + 1)))
        }
    }
}
