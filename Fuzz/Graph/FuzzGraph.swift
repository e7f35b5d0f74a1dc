import LetheFuzzHarness

/// libFuzzer entry (built by scripts/fuzz.sh with `-sanitize=fuzzer,address`; libFuzzer supplies `main`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGraph(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.graph.fuzz(data, size)
}
