// swift-tools-version:6.0
import PackageDescription

// OpenMP: Debian's libomp-dev ships LLVM's runtime as libomp5.so; the toolchain has no omp.h, so
// HoneKernels declares the few omp_* functions it uses itself (see hone_openmp.h).
let kernelFlags: [CSetting] = [
    .unsafeFlags(["-fopenmp", "-O3", "-std=c11", "-fno-math-errno"]),
]

let package = Package(
    name: "Hone",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "hone", targets: ["hone"]),
        .library(name: "HoneKit", targets: ["HoneKit"]),
        // For the fuzz harness (tools/fuzz), which fuzzes the server's request bodies too.
        .library(name: "HoneServe", targets: ["HoneServe"]),
        // Test-only: an LD_PRELOAD library that makes the Nth write, fsync or rename fail (fault-injection tests).
        .library(name: "HoneFaultInjection", type: .dynamic, targets: ["HoneFaultInjection"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `hone serve` only: the HTTP server, and an HTTP client for its tests.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(
            name: "HoneKernels",
            path: "Sources/HoneKernels",
            cSettings: kernelFlags,
            linkerSettings: [.linkedLibrary("omp5"), .linkedLibrary("openblas"), .linkedLibrary("m")]
        ),
        .target(
            name: "HoneFaultInjection",
            path: "Sources/HoneFaultInjection",
            cSettings: [.unsafeFlags(["-O2", "-std=c11"])],
            linkerSettings: [.linkedLibrary("dl")]
        ),
        .target(
            name: "HoneKit",
            dependencies: ["HoneKernels", "CBLAS", "CLZ4", "CZlib"],
            path: "Sources/HoneKit",
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        // The OpenAI-compatible server: a target of its own so that HoneKit stays free of SwiftNIO.
        .target(
            name: "HoneServe",
            dependencies: [
                "HoneKit", .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Sources/HoneServe",
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "hone",
            dependencies: [
                "HoneKit", "HoneServe", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/hone"
        ),
        .testTarget(
            name: "HoneKernelsTests",
            dependencies: ["HoneKernels"],
            path: "Tests/HoneKernelsTests",
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "HoneKitTests",
            dependencies: ["HoneKit", "HoneKernels"],
            path: "Tests/HoneKitTests",
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "HoneServeTests",
            dependencies: [
                "HoneServe", "HoneKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Tests/HoneServeTests"
        ),
    ]
)
