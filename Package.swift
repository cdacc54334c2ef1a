// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "tocsin",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tocsin", targets: ["tocsin"]),
        // The domain alone, for the libFuzzer targets of Fuzz/ (their own package).
        .library(name: "TocsinCore", targets: ["TocsinCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "CCurl",
            linkerSettings: [.linkedLibrary("curl")]
        ),
        .target(
            name: "PostgresClient",
            dependencies: [
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TocsinCore",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // SHA-256, HMAC-SHA256 and random bytes from libcrypto: keys,
        // sessions, signatures and checksums.
        .target(
            name: "TocsinCrypto",
            dependencies: ["COpenSSL"],
            swiftSettings: swiftSettings
        ),
        // Repositories: every SQL statement of the product. The only module
        // that talks to PostgreSQL; its pools are internal.
        .target(
            name: "TocsinStore",
            dependencies: [
                "PostgresClient",
                "TocsinCore",
                "TocsinCrypto",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The work of a worker: scheduling, evaluation, check requests,
        // maintenance; the concurrency primitives they share.
        .target(
            name: "TocsinEngine",
            dependencies: [
                "TocsinStore",
                "TocsinCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Messages, senders (libcurl) and the outbox dispatcher.
        .target(
            name: "TocsinNotify",
            dependencies: [
                "CCurl",
                "TocsinEngine",
                "TocsinStore",
                "TocsinCore",
                "TocsinCrypto",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP API and the dashboard.
        .target(
            name: "TocsinAPI",
            dependencies: [
                "TocsinEngine",
                "TocsinStore",
                "TocsinCore",
                "TocsinCrypto",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Dashboard")],
            swiftSettings: swiftSettings
        ),
        // The command line and the one composition root.
        .executableTarget(
            name: "tocsin",
            dependencies: [
                "TocsinAPI",
                "TocsinNotify",
                "TocsinEngine",
                "TocsinStore",
                "TocsinCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                "CCurl", "PostgresClient", "TocsinCore", "TocsinStore", "TocsinEngine", "TocsinAPI", "TocsinNotify",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "PostgresClientTests", dependencies: ["PostgresClient", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "TocsinCoreTests", dependencies: ["TocsinCore"], swiftSettings: swiftSettings),
        .testTarget(name: "TocsinStoreTests", dependencies: ["TocsinStore", "TocsinEngine", "TocsinCore", "PostgresClient", "TestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "TocsinAPITests", dependencies: [
            "TocsinAPI", "TocsinEngine", "TocsinStore", "TocsinCore", "TocsinCrypto", "PostgresClient", "TestSupport",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
        .testTarget(name: "TocsinNotifyTests", dependencies: [
            "TocsinNotify", "TocsinEngine", "TocsinStore", "TocsinCore", "TocsinCrypto", "PostgresClient", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
        .testTarget(name: "tocsinTests", dependencies: ["TocsinCore", "TocsinStore", "PostgresClient", "TestSupport"],
                    swiftSettings: swiftSettings),
    ]
)
