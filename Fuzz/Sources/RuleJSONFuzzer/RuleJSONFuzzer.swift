// Inline rule definitions of POST /api/rules/backtest: the body's JSON as
// the API reads it (JSONSerialization), given to RuleFile.parse(json:) the
// way the route does. Problems or rules within RuleLimits; never a trap.
import Foundation
import FuzzSupport
import TocsinCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzInput(data, size) { bytes in
        guard let value = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else { return }
        if let definition = value as? [String: Any] {
            // As RuleRoutes does with the body's `rule` object.
            let result = RuleFile.parse(json: ["rules": [definition]], defaultIntervalSeconds: 30)
            checkRules(result, defaultInterval: 30)
            require(result.rules.count <= 1, "one definition gave \(result.rules.count) rules")
        }
        // Any JSON value as a whole rules document.
        checkRules(RuleFile.parse(json: value, defaultIntervalSeconds: 30), defaultInterval: 30)
    }
}
