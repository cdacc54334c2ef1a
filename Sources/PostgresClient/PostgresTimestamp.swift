import Foundation

/// Formats and parses `timestamptz` text: a fixed, locale-free format in
/// both directions. The calendar arithmetic is the C library's (`timegm`,
/// `gmtime_r`), in UTC.
public enum PostgresTimestamp {
    /// Years 0001 to 9999: dates outside are written as the nearest bound,
    /// so formatting never traps.
    static let range = -62_135_596_800.0...253_402_300_799.0

    public static func format(_ date: Date) -> String {
        let t = date.timeIntervalSince1970.isNaN ? 0 : min(max(date.timeIntervalSince1970, range.lowerBound), range.upperBound)
        var seconds = Int(t.rounded(.down))
        var micros = Int(((t - Double(seconds)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            seconds += 1
            micros -= 1_000_000
        }
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var out = ""
        out.reserveCapacity(27)
        out += pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2) + "T"
        out += pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
        out += "." + pad(micros, 6) + "Z"
        return out
    }

    /// Accepts `YYYY-MM-DD[ T]HH:MM:SS[.f…][Z|±HH[:MM[:SS]]]`, a plain date
    /// (midnight UTC) and `infinity`/`-infinity`.
    public static func parse(_ text: String) -> Date? {
        if text == "infinity" { return .distantFuture }
        if text == "-infinity" { return .distantPast }
        var reader = Reader(bytes: Array(text.utf8))
        guard let year = reader.digits(4), reader.expect(45), let month = reader.digits(2), reader.expect(45),
              let day = reader.digits(2), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        guard !reader.atEnd else { return Date(timeIntervalSince1970: Double(timegm(&parts))) }
        guard reader.expectOne(of: [32, 84]) else { return nil }  // ' ' or 'T'
        guard let hh = reader.digits(2), reader.expect(58), let mm = reader.digits(2), reader.expect(58),
              let ss = reader.digits(2), hh < 24, mm < 60, ss < 61
        else { return nil }
        parts.tm_hour = Int32(hh)
        parts.tm_min = Int32(mm)
        parts.tm_sec = Int32(ss)
        guard let fraction = reader.fraction(), let offset = reader.offset(), reader.atEnd else { return nil }
        return Date(timeIntervalSince1970: Double(Int(timegm(&parts)) - offset) + fraction)
    }

    private static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// Reads the parts of the text in order.
    struct Reader {
        let bytes: [UInt8]
        var i = 0

        var atEnd: Bool { i == bytes.count }

        mutating func digits(_ n: Int) -> Int? {
            guard i + n <= bytes.count else { return nil }
            var v = 0
            for k in 0..<n {
                let c = bytes[i + k]
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            i += n
            return v
        }

        mutating func expect(_ c: UInt8) -> Bool {
            guard i < bytes.count, bytes[i] == c else { return false }
            i += 1
            return true
        }

        mutating func expectOne(of set: [UInt8]) -> Bool {
            guard i < bytes.count, set.contains(bytes[i]) else { return false }
            i += 1
            return true
        }

        /// `.f…` seconds, or 0 without.
        mutating func fraction() -> Double? {
            guard expect(46) else { return 0 }  // '.'
            var value = 0.0, scale = 0.1, any = false
            while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 {
                value += Double(bytes[i] - 48) * scale
                scale /= 10
                i += 1
                any = true
            }
            return any ? value : nil
        }

        /// `Z`, `±HH`, `±HH:MM[:SS]` or `±HHMM` in seconds east of UTC; 0
        /// without.
        mutating func offset() -> Int? {
            if atEnd { return 0 }
            if expect(90) { return 0 }  // 'Z'
            let sign: Int
            if expect(43) { sign = 1 } else if expect(45) { sign = -1 } else { return nil }
            guard let hours = digits(2) else { return nil }
            var offset = hours * 3600
            if expect(58) {
                guard let minutes = digits(2) else { return nil }
                offset += minutes * 60
                if expect(58) {
                    guard let seconds = digits(2) else { return nil }
                    offset += seconds
                }
            } else if i + 2 <= bytes.count, let minutes = digits(2) {
                offset += minutes * 60  // "+0530"
            }
            return sign * offset
        }
    }
}
