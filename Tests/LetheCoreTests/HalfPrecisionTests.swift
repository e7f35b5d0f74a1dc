import XCTest
@testable import LetheCore

final class HalfPrecisionTests: XCTestCase {
    func testFloat16RoundsToNearestEven() {
        // 1 + 2^-11 lies exactly between 1 and the next float16 (1 + 2^-10): ties go to even (1).
        XCTAssertEqual(HalfPrecision.float16Bits(1 + 0x1p-11), 0x3C00)
        // 1 + 3·2^-11 lies between 1+2^-10 (odd mantissa) and 1+2^-9: ties go to even (1+2^-9).
        XCTAssertEqual(HalfPrecision.float16Bits(1 + 3 * 0x1p-11), 0x3C02)
        XCTAssertEqual(HalfPrecision.float16Bits(65504), 0x7BFF)
        XCTAssertEqual(HalfPrecision.float16Bits(65520), 0x7C00, "rounds up to infinity")
        XCTAssertEqual(HalfPrecision.float16Bits(-.infinity), 0xFC00)
        XCTAssertTrue(HalfPrecision.float(fromFloat16: HalfPrecision.float16Bits(.nan)).isNaN)
        XCTAssertEqual(HalfPrecision.float(fromFloat16: 0x0001), 0x1p-24, "smallest subnormal")
    }

    func testBFloat16RoundsToNearestEven() {
        XCTAssertEqual(HalfPrecision.bfloat16Bits(1.0), 0x3F80)
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even keep 1.
        XCTAssertEqual(HalfPrecision.bfloat16Bits(1 + 0x1p-8), 0x3F80)
        XCTAssertEqual(HalfPrecision.bfloat16Bits(1 + 3 * 0x1p-8), 0x3F82)
        XCTAssertEqual(HalfPrecision.bfloat16Bits(.infinity), 0x7F80)
        XCTAssertEqual(
            HalfPrecision.bfloat16Bits(Float.greatestFiniteMagnitude), 0x7F80, "overflows to infinity like PyTorch")
        let nan = HalfPrecision.bfloat16Bits(Float(bitPattern: 0x7F80_0001))
        XCTAssertTrue(HalfPrecision.float(fromBFloat16: nan).isNaN, "a signalling NaN must not become infinity")
        XCTAssertEqual(HalfPrecision.float(fromBFloat16: 0xC040), -3.0)
    }

    func testTensorFloatingConversionRoundTrips() {
        let values: [Float] = [0, -0.0, 1.5, -2.25, 1e-3, 3.0e4, .infinity]
        let source = Tensor(shape: [7], values: values)
        for target in [DType.float16, .bfloat16, .float64] {
            let back = source.convertedFloatingPoint(to: target).convertedFloatingPoint(to: .float32)
            XCTAssertEqual(back.dtype, .float32)
            for (a, b) in zip(values, back.floatValues()) {
                XCTAssertEqual(a, b, accuracy: abs(a) * 0.01, "\(target)")
            }
        }
    }
}
