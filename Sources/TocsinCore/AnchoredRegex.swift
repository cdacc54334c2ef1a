import Foundation
import Synchronization

/// Regular expressions that match a whole value, as Alertmanager's
/// matchers do, compiled once and shared.
///
/// Every label regex of Tocsin — the notification policy's `{regex: …}`,
/// silence matchers, `filter` and `receiver` of the Alertmanager API — goes
/// through here, so each has the same bound and none is compiled per match.
/// A pattern is at most `maxLength` UTF-16 code units: Foundation compiles a
/// pattern (with the 6 units this adds) of up to 256 units from a stack
/// buffer and leaks the heap buffer of a longer one, so a longer pattern is
/// refused, never compiled.
///
/// The match must start where the value starts (`.anchored`) and end where
/// it ends (`\z`): ICU's `$` would also match before a final newline, which
/// Alertmanager's (Go's) does not, and label values may hold newlines.
public enum AnchoredRegex {
    public static let maxLength = 250
    /// Distinct patterns kept compiled; past it the cache starts over (the
    /// patterns in use are configured ones, a handful).
    static let capacity = 1024

    /// Holds the compiled expression, or nil for a pattern that does not compile.
    struct Entry: @unchecked Sendable {  // NSRegularExpression is immutable and safe to share.
        let expression: NSRegularExpression?
    }

    static let cache = Mutex<[String: Entry]>([:])

    /// The compiled expression, or nil when the pattern is too long or does
    /// not compile.
    static func compiled(_ pattern: String) -> NSRegularExpression? {
        guard pattern.utf16.count <= maxLength else { return nil }
        if let entry = cache.withLock({ $0[pattern] }) { return entry.expression }
        let entry = Entry(expression: try? NSRegularExpression(pattern: "(?:\(pattern))\\z"))
        cache.withLock { cache in
            if cache.count >= capacity { cache.removeAll(keepingCapacity: true) }
            cache[pattern] = entry
        }
        return entry.expression
    }

    /// nil when the pattern can be used, else why not.
    public static func problem(_ pattern: String) -> String? {
        if pattern.utf16.count > maxLength { return "is a regular expression over \(maxLength) UTF-16 code units" }
        return compiled(pattern) == nil ? "is not a valid regular expression" : nil
    }

    /// True when `pattern` matches all of `value`. A pattern that cannot be
    /// used matches nothing.
    public static func fullMatch(_ pattern: String, _ value: String) -> Bool {
        guard let expression = compiled(pattern) else { return false }
        return expression.firstMatch(in: value, options: .anchored, range: NSRange(value.startIndex..., in: value)) != nil
    }
}
