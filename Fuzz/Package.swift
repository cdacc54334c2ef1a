// swift-tools-version:6.2
// libFuzzer targets for the parsers of untrusted and operator input. Its own
// package, built only by scripts/fuzz.sh (with -sanitize=fuzzer,address), so
// the product's build never sees it. It uses TocsinCore alone (and with it
// Yams), which keeps the instrumented build small.
import PackageDescription

let swiftSettings: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

/// One executable a parser; its seed corpus is Corpus/<name>/.
let fuzzers = [
    "EventBatchFuzzer",   // POST /api/metrics bodies
    "RuleYAMLFuzzer",     // rules files
    "RuleJSONFuzzer",     // inline backtest rule definitions
    "NotifyConfigFuzzer", // notifications files
    "TimeTextFuzzer",     // RFC 3339 timestamps and durations
    "QueryFuzzer",        // window/since/until and series query parameters
    "CSVFuzzer",          // CSV exports
    "MatcherFuzzer",      // Alertmanager matchers (/api/v2 filters, amtool) and fingerprints
]

let package = Package(
    name: "tocsin-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "tocsin", path: "..")],
    targets: [
        // Property checks and helpers the targets share.
        .target(name: "FuzzSupport", dependencies: [.product(name: "TocsinCore", package: "tocsin")],
                swiftSettings: swiftSettings),
    ] + fuzzers.map { name in
        .executableTarget(
            name: name,
            dependencies: ["FuzzSupport", .product(name: "TocsinCore", package: "tocsin")],
            swiftSettings: swiftSettings
        )
    }
)
