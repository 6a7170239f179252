// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "HoneFuzz",
    dependencies: [.package(name: "Hone", path: "../..")],
    targets: [
        .executableTarget(
            name: "HoneFuzz",
            dependencies: [.product(name: "HoneKit", package: "Hone"), .product(name: "HoneServe", package: "Hone")],
            path: "Sources/HoneFuzz"
        ),
    ]
)
