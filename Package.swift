// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Lethe",
    products: [
        .library(name: "Lethe", targets: [
            "LetheCore", "LetheIR", "LetheONNX", "LetheSafetensors", "LetheNumPy",
            "LetheFormats", "LetheRuntime", "LetheUnlearn", "LetheImages", "LetheZip",
        ]),
        .executable(name: "lethe", targets: ["lethe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSVM", providers: [.apt(["libsvm-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", providers: [.apt(["libjpeg62-turbo-dev"])]),

        .target(name: "LetheCore"),
        .target(name: "LetheIR", dependencies: ["LetheCore"]),
        .target(name: "LetheONNX", dependencies: [
            "LetheIR", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .target(name: "LetheSafetensors", dependencies: ["LetheIR"]),
        // Lethe's own zip over zlib; formats/npz/README.md says why it is not libzip.
        // zip's CRC-32 by carry-less multiplies (VPCLMULQDQ), for LetheZip's checks of large members.
        .target(name: "CCRC32"),
        .target(name: "LetheZip", dependencies: ["LetheCore", "CZlib", "CCRC32"]),
        .target(name: "LetheNumPy", dependencies: ["LetheIR", "LetheZip"]),
        .target(name: "LetheImages", dependencies: ["LetheCore", "CPNG", "CJPEG"]),
        .target(name: "LetheFormats", dependencies: [
            "LetheIR", "LetheONNX", "LetheSafetensors", "LetheNumPy", "LetheImages",
        ]),
        // exp/erf loops the C compiler vectorizes (the runtime's Softmax and GELU).
        .target(name: "CVectorMath"),
        .target(name: "LetheRuntime", dependencies: ["LetheIR", "CBLAS", "CDNNL", "CVectorMath"]),
        // AVX-512 float32 Gram products for the statistics passes (LinearAlgebra.gramBlock).
        .target(name: "CGramKernels", dependencies: ["CVectorMath"]),
        .target(name: "LetheUnlearn", dependencies: [
            "LetheRuntime", "LetheSafetensors", "CBLAS", "CSVM", "CGramKernels",
        ]),
        .executableTarget(name: "lethe", dependencies: [
            "LetheFormats", "LetheNumPy", "LetheRuntime", "LetheUnlearn",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Package root, reference Python and process running, shared by the test targets.
        .target(name: "LetheTestSupport", path: "Tests/LetheTestSupport"),
        .testTarget(name: "LetheCoreTests", dependencies: ["LetheCore", "LetheIR", "LetheTestSupport"]),
        .testTarget(name: "LetheIRTests", dependencies: ["LetheIR"]),
        .testTarget(name: "LetheONNXTests", dependencies: ["LetheONNX", "LetheTestSupport"]),
        .testTarget(name: "LetheSafetensorsTests", dependencies: ["LetheSafetensors", "LetheTestSupport"]),
        .testTarget(name: "LetheZipTests", dependencies: ["LetheZip"]),
        .testTarget(name: "LetheNumPyTests", dependencies: ["LetheNumPy", "LetheZip", "LetheTestSupport"]),
        .testTarget(name: "LetheFormatsTests", dependencies: ["LetheFormats", "LetheTestSupport"]),
        .testTarget(name: "LetheImagesTests", dependencies: ["LetheImages", "LetheTestSupport"]),
        .testTarget(name: "LetheRuntimeTests", dependencies: ["LetheRuntime", "LetheFormats", "LetheTestSupport"]),
        .testTarget(name: "LetheUnlearnTests", dependencies: [
            "LetheUnlearn", "LetheONNX", "LetheNumPy", "LetheSafetensors", "LetheTestSupport",
        ]),
        .testTarget(name: "LetheCLITests", dependencies: ["LetheFormats", "LetheImages", "LetheTestSupport"]),

        // Fuzzing: the harness is shared by the libFuzzer executables and the regression tests.
        .target(name: "LetheFuzzHarness", dependencies: [
            "LetheONNX", "LetheSafetensors", "LetheNumPy", "LetheRuntime", "LetheImages",
        ], path: "Fuzz/Harness"),
        .testTarget(name: "LetheFuzzRegressionTests", dependencies: ["LetheFuzzHarness", "LetheTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer executables have no `main` (libFuzzer supplies it), so they link only with
// `--sanitize fuzzer`; scripts/fuzz.sh sets LETHE_FUZZ to declare them, in its own scratch path.
if Context.environment["LETHE_FUZZ"] != nil {
    for (name, folder) in [("fuzz-onnx", "ONNX"), ("fuzz-safetensors", "Safetensors"), ("fuzz-npy", "NPY"),
                           ("fuzz-npz", "NPZ"), ("fuzz-graph", "Graph"), ("fuzz-image", "Image")] {
        package.targets.append(.executableTarget(name: name, dependencies: ["LetheFuzzHarness"], path: "Fuzz/\(folder)"))
        package.products.append(.executable(name: name, targets: [name]))
    }
}
