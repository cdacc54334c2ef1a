import Foundation

/// When to try a failed delivery again.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    /// Delay after the first failure; doubles each attempt.
    public var baseDelay: Double
    public var maxDelay: Double

    public init(maxAttempts: Int = 8, baseDelay: Double = 2, maxDelay: Double = 600) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// What a delivery attempt came to.
    public enum Verdict: Sendable, Equatable {
        case delivered
        /// Try again: timeouts, connection errors, 5xx, 429.
        case retry(after: Double?)
        /// Other 4xx and unusable configuration: no point retrying.
        case fail
    }

    /// Classifies an HTTP outcome (status 0: no response).
    public static func classify(status: Int, transportFailed: Bool, retryAfter: String?, now: Date) -> Verdict {
        if transportFailed || status == 0 { return .retry(after: nil) }
        switch status {
        case 200..<300: return .delivered
        case 429: return .retry(after: retryAfter.flatMap { parseRetryAfter($0, now: now) })
        case 408, 425, 500..<600: return .retry(after: retryAfter.flatMap { parseRetryAfter($0, now: now) })
        default: return .fail
        }
    }

    /// The delay before attempt `attempt + 1`, after `attempt` failures:
    /// exponential with full jitter in [50 %, 100 %], at least what the
    /// server asked for with Retry-After. nil when the attempts are used up.
    public func delay(afterAttempt attempt: Int, requested: Double?, random: Double = Double.random(in: 0...1)) -> Double? {
        guard attempt < maxAttempts else { return nil }
        let exponential = min(maxDelay, baseDelay * pow(2, Double(max(0, attempt - 1))))
        let jittered = exponential * (0.5 + 0.5 * random)
        guard let requested else { return jittered }
        // Honour Retry-After exactly, plus a little jitter so a crowd spreads out.
        return min(max(requested, 0) * (1 + 0.1 * random), 3600)
    }

    /// `Retry-After`: delay-seconds or an HTTP date.
    public static func parseRetryAfter(_ text: String, now: Date) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds.isFinite, seconds >= 0 { return min(seconds, 86_400) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return min(max(0, date.timeIntervalSince(now)), 86_400)
    }
}
