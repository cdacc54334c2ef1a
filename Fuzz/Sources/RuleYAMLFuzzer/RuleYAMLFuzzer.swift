// Rules files (tocsin rules check/apply, tocsin run): any text gives
// problems or rules within RuleLimits, and never traps, however deep,
// aliased or large the YAML.
import FuzzSupport
import TocsinCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzInput(data, size) { bytes in
        let result = RuleFile.parse(yaml: text(bytes), defaultIntervalSeconds: 60)
        checkRules(result, defaultInterval: 60)
    }
}
