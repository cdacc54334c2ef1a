import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import TocsinCore

/// Token buckets kept in this process. A deployment's limits hold across
/// its API instances by dividing each rate by `RATE_LIMIT_INSTANCES` (the
/// number of `tocsin serve` processes behind the load balancer): with an
/// even spread a key gets its whole rate, and it can never get more. This
/// costs no database round trip per request, and limits keep working
/// while the database is down — which matters for an alerting service.
final class TokenBuckets<Key: Hashable & Sendable>: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    let rate: Double
    let burst: Double
    private let buckets = Mutex<[Key: Bucket]>([:])

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = max(1, burst)
    }

    /// Takes a token: nil when taken, else the seconds until one is free.
    func take(_ key: Key, now: ContinuousClock.Instant = .now) -> Double? {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(burst, bucket.tokens + max(0, seconds) * rate)
            bucket.updated = now
            if buckets.count > 100_000 { buckets.removeAll(keepingCapacity: true) }
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return (1 - bucket.tokens) / rate
            }
            bucket.tokens -= 1
            buckets[key] = bucket
            return nil
        }
    }
}

/// Requests per second per API key, per scope of the route; a 429 with
/// `Retry-After` beyond.
final class KeyRateLimiter: Sendable {
    private let buckets: [Scope: TokenBuckets<Int>]

    init(limits: [Scope: Double], instances: Int) {
        var buckets: [Scope: TokenBuckets<Int>] = [:]
        for (scope, perSecond) in limits where perSecond > 0 {
            let rate = perSecond / Double(max(1, instances))
            buckets[scope] = TokenBuckets(rate: rate, burst: 2 * rate)
        }
        self.buckets = buckets
    }

    func check(keyID: Int, scope: Scope) throws {
        guard let bucket = buckets[scope], let wait = bucket.take(keyID) else { return }
        throw APIError(.tooManyRequests, code: "rate_limited",
                       message: "this API key is over its \(scope.rawValue) rate limit; slow down",
                       headers: [.retryAfter: String(Int(wait.rounded(.up)))])
    }
}

/// Sign-in attempts per client address: 10 a minute, in bursts of 10.
struct SignInLimiter: Sendable {
    let buckets = TokenBuckets<String>(rate: 10.0 / 60, burst: 10)
    /// Addresses whose `X-Forwarded-For` is believed (the load balancer).
    let trustedProxies: Set<String>

    func check(_ request: Request, context: TocsinRequestContext) async throws {
        let client = Self.clientAddress(request, remote: context.remoteAddress, trusted: trustedProxies)
        if let wait = buckets.take(client) {
            throw APIError(.tooManyRequests, code: "rate_limited", message: "too many sign-in attempts from this address",
                           headers: [.retryAfter: String(Int(wait.rounded(.up)))])
        }
    }

    /// The peer, or — when the peer is a trusted proxy — the last address
    /// it added to `X-Forwarded-For`.
    static func clientAddress(_ request: Request, remote: String?, trusted: Set<String>) -> String {
        let peer = remote ?? "unknown"
        guard trusted.contains(peer), let forwarded = request.headers[.xForwardedFor] else { return peer }
        let last = forwarded.split(separator: ",").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return last.isEmpty || last.utf8.count > 64 ? peer : last
    }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
}
