import CBLAS
import XCTest
@testable import LetheRuntime

/// OpenBLAS's workers are stopped when it is held at one thread and after threaded products, never
/// during one; products that allow it more threads afterwards start them again and give the
/// single-threaded result.
final class LibraryThreadsTests: XCTestCase {
    func testThreadedProductsAfterTheWorkersStopped() {
        let n = 300
        let a = (0..<(n * n)).map { Double(($0 * 7919) % 211) / 211 - 0.5 }
        let b = (0..<(n * n)).map { Double(($0 * 104_729) % 307) / 307 - 0.5 }
        func product() -> [Double] {
            var c = [Double](repeating: 0, count: n * n)
            cblas_dgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(n), blasint(n), blasint(n), 1, a, blasint(n), b,
                blasint(n), 0, &c, blasint(n))
            return c
        }
        LibraryThreads.keepOpenBLASSingleThreaded()
        XCTAssertEqual(openblas_get_num_threads(), 1)
        let single = product()
        for _ in 0..<2 {
            let threaded = LibraryThreads.withOpenBLAS(threads: 2) { () -> [Double] in
                XCTAssertEqual(openblas_get_num_threads(), 2)
                let first = product()
                // A model run starting meanwhile (another thread's) leaves the workers alone.
                LibraryThreads.stopOpenBLASWorkers()
                XCTAssertEqual(product(), first)
                return first
            }
            LibraryThreads.stopOpenBLASWorkers()
            XCTAssertEqual(openblas_get_num_threads(), 1)
            for i in stride(from: 0, to: n * n, by: 997) { XCTAssertEqual(threaded[i], single[i], accuracy: 1e-12) }
        }
    }
}
