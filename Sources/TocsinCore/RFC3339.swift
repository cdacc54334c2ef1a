import Foundation

/// RFC 3339 timestamps (`2026-11-29T06:55:23.5Z`, `…+02:00`) to and from
/// `Date`, without calendars or locales.
public enum RFC3339 {
    /// Parses `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)`. The offset
    /// is required: a timestamp without one is ambiguous. Years are 0001 to
    /// 9999 (four digits), so every result is a finite date.
    public static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    public static func parse(bytes b: UnsafeBufferPointer<UInt8>) -> Date? {
        guard b.count <= 64 else { return nil }
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for k in 0..<n {
                let c = b[i + k]
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            i += n
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(0x2D), let month = digits(2), expect(0x2D), let day = digits(2),
              (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        guard i < b.count, b[i] == 0x54 || b[i] == 0x74 || b[i] == 0x20 else { return nil }
        i += 1
        guard let hh = digits(2), expect(0x3A), let mm = digits(2), expect(0x3A), let ss = digits(2),
              hh < 24, mm < 60, ss < 61
        else { return nil }
        var fraction = 0.0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var scale = 0.1
            var any = false
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                fraction += Double(b[i] - 0x30) * scale
                scale /= 10
                i += 1
                any = true
            }
            guard any else { return nil }
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == 0x5A || b[i] == 0x7A {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D {
            let sign = b[i] == 0x2B ? 1 : -1
            i += 1
            guard let oh = digits(2), expect(0x3A), let om = digits(2), oh < 24, om < 60 else { return nil }
            offset = sign * (oh * 3600 + om * 60)
        } else {
            return nil
        }
        guard i == b.count, year >= 1 else { return nil }
        let days = daysFromCivil(year, month, day)
        let seconds = days * 86_400 + hh * 3600 + mm * 60 + min(ss, 59) - offset
        // An offset can carry 0001-01-01 into year 0, or 9999-12-31 into
        // 10000: outside what PostgreSQL and `format` round-trip.
        guard formattable.contains(Double(seconds)) else { return nil }
        // A fraction of 9999-12-31T23:59:59 can round up to year 10000.
        return Date(timeIntervalSince1970: min(Double(seconds) + fraction, formattable.upperBound))
    }

    /// The dates `format` writes: years 0001 to 9999, up to the last Double
    /// before 10000-01-01 (about 30 µs before it). Outside, the nearest
    /// bound is written (`Date.distantPast`/`distantFuture` included), so
    /// formatting never traps.
    static let formattable = -62_135_596_800.0...(253_402_300_800.0).nextDown

    /// `2026-11-29T06:55:23.123456Z` (microseconds, UTC).
    public static func format(_ date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(27)
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `format(date)`'s bytes to `bytes`, without making a string.
    public static func append(_ date: Date, to bytes: inout [UInt8]) {
        let (whole, micros) = wholeSeconds(date)
        let days = whole >= 0 ? whole / 86_400 : -((-whole + 86_399) / 86_400)
        let secondOfDay = whole - days * 86_400
        let (y, m, d) = civilFromDays(days)
        digits(y, 4, &bytes); bytes.append(0x2D)
        digits(m, 2, &bytes); bytes.append(0x2D)
        digits(d, 2, &bytes); bytes.append(0x54)
        digits(secondOfDay / 3600, 2, &bytes); bytes.append(0x3A)
        digits(secondOfDay / 60 % 60, 2, &bytes); bytes.append(0x3A)
        digits(secondOfDay % 60, 2, &bytes); bytes.append(0x2E)
        digits(micros, 6, &bytes); bytes.append(0x5A)
    }

    /// `date` as the whole seconds from the Unix epoch and the microseconds
    /// after them (0..<10⁶), rounded to the microsecond and clamped to the
    /// years 1–9999: the instant `append` writes (and the binary COPY of
    /// ingestion stores).
    public static func wholeSeconds(_ date: Date) -> (seconds: Int, micros: Int) {
        let t = date.timeIntervalSince1970
        let seconds = t.isNaN ? 0 : min(max(t, formattable.lowerBound), formattable.upperBound)
        var whole = Int(seconds.rounded(.down))
        var micros = Int(((seconds - Double(whole)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            whole += 1
            micros -= 1_000_000
        }
        return (whole, micros)
    }

    /// `value` (0 ≤ value < 10^width) in exactly `width` decimal digits.
    private static func digits(_ value: Int, _ width: Int, _ bytes: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor &*= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(truncatingIfNeeded: 0x30 &+ (rest / divisor) % 10))
            rest %= divisor
            divisor /= 10
        }
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
