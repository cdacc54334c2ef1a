// Alertmanager matchers (the `filter` parameters of /api/v2 and amtool's
// silences) and label-set fingerprints: text either parses to a matcher
// within its bounds or is refused with a reason, never traps; a parsed
// matcher's text parses back to the same matcher; matching never traps.
import Foundation
import FuzzSupport
import TocsinCore

func checkMatcher(_ input: String) {
    switch SilenceMatcher.parse(input) {
    case .failure(let error):
        require(!error.description.isEmpty, "\(excerpt(input)) refused without a reason")
    case .success(let matcher):
        require(matcher.problem == nil, "\(excerpt(input)) parsed to a refused matcher: \(matcher.problem ?? "")")
        require(!matcher.name.isEmpty && isBoundedText(matcher.name, maxLength: SilenceMatcher.maxNameLength)
                && isBoundedText(matcher.value, maxLength: SilenceMatcher.maxValueLength),
                "\(excerpt(input)) → name \(excerpt(matcher.name)), value \(excerpt(matcher.value))")
        let written = matcher.description
        guard case .success(let again) = SilenceMatcher.parse(written) else {
            require(false, "\(excerpt(input)) → \(excerpt(written)), which does not parse")
            return
        }
        require(again == matcher, "\(excerpt(input)) → \(excerpt(written)) → \(excerpt(again.description))")
        // Matching a label set that has the name, and one that has not.
        _ = matcher.matches([matcher.name: matcher.value])
        _ = matcher.matches([:])
    }
}

func checkFingerprint(_ labels: [String: String]) {
    let fingerprint = Fingerprint.of(labels)
    require(fingerprint.count == 16 && fingerprint.allSatisfy(\.isHexDigit), "fingerprint \(fingerprint)")
    require(Fingerprint.of(Dictionary(uniqueKeysWithValues: labels.reversed())) == fingerprint, "order changed the fingerprint")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzInput(data, size) { bytes in
        let input = text(bytes)
        checkMatcher(input)
        // The same text as a label set: lines of name=value.
        var labels: [String: String] = [:]
        for line in input.split(separator: "\n").prefix(64) {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            labels[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        checkFingerprint(labels)
    }
}
