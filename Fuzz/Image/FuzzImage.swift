import LetheFuzzHarness

/// libFuzzer entry (built by scripts/fuzz.sh with `-sanitize=fuzzer,address`; libFuzzer supplies `main`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.image.fuzz(data, size)
}
