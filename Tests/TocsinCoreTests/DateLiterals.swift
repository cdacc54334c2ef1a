import Foundation

/// Times in tests read as Unix seconds: `TimeRange(since: 0, until: 3600)`.
extension Date: @retroactive ExpressibleByIntegerLiteral, @retroactive ExpressibleByFloatLiteral {
    public init(integerLiteral value: Int) { self.init(timeIntervalSince1970: Double(value)) }
    public init(floatLiteral value: Double) { self.init(timeIntervalSince1970: value) }
}
