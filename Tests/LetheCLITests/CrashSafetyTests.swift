import Foundation
import LetheCore
import XCTest

/// Kills `lethe` with SIGKILL at random points of a large write: the destination must always be
/// either the complete old file or the complete new one, and the input must never change.
final class CrashSafetyTests: XCTestCase {
    private func writeSafetensors(_ path: String, tensors: Int, floatsEach: Int, seed: UInt32) throws {
        var header = "{"
        for i in 0..<tensors {
            let begin = i * floatsEach * 4
            header +=
                "\"t\(i)\":{\"dtype\":\"F32\",\"shape\":[\(floatsEach)],\"data_offsets\":[\(begin),\(begin + floatsEach * 4)]}"
            header += i + 1 < tensors ? "," : "}"
        }
        while (header.utf8.count + 8) % 8 != 0 { header += " " }
        var data = Data()
        var length = UInt64(header.utf8.count).littleEndian
        data.append(Data(bytes: &length, count: 8))
        data.append(Data(header.utf8))
        var values = [Float](repeating: 0, count: floatsEach)
        for i in 0..<tensors {
            for j in 0..<floatsEach { values[j] = Float((UInt32(j) &* 2_654_435_761 &+ seed &+ UInt32(i)) % 1000) }
            values.withUnsafeBytes { data.append(Data($0)) }
        }
        try data.write(to: URL(fileURLWithPath: path))
    }

    func testDestinationIsAlwaysCompleteUnderSIGKILL() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = "\(folder)/big.safetensors", destination = "\(folder)/out.npz"
        try writeSafetensors(source, tensors: 3, floatsEach: 4 << 20, seed: 1) // 48 MB
        try writeSafetensors("\(folder)/old.safetensors", tensors: 1, floatsEach: 16, seed: 2)
        XCTAssertEqual(try CLI.run(["convert", "\(folder)/old.safetensors", destination]).status, 0)
        let oldBytes = try Data(contentsOf: URL(fileURLWithPath: destination))
        let sourceBytes = try Data(contentsOf: URL(fileURLWithPath: source))

        // Uninterrupted runs give the new file and how long a write takes: the fastest of three, so
        // that a run slowed by other work on the machine does not push the kills past the end.
        let reference = "\(folder)/reference.npz"
        var duration = Double.infinity
        for _ in 0..<3 {
            let started = Date()
            XCTAssertEqual(try CLI.run(["convert", source, reference]).status, 0)
            duration = min(duration, Date().timeIntervalSince(started))
        }
        let newBytes = try Data(contentsOf: URL(fileURLWithPath: reference))

        let rounds = Int(ProcessInfo.processInfo.environment["LETHE_SIGKILL_ROUNDS"] ?? "") ?? 100
        // Seeded, so a failure names a round that happens again.
        var generator = SplitMix64(seed: 0x4B494C4C)
        var killedMidway = 0
        for round in 0..<rounds {
            let process = Process()
            process.executableURL = CLI.executable
            process.arguments = ["convert", source, destination]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(UInt32(Double.random(in: 0...(duration * 0.9), using: &generator) * 1_000_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if process.terminationReason == .uncaughtSignal { killedMidway += 1 }
            let now = try Data(contentsOf: URL(fileURLWithPath: destination))
            XCTAssertTrue(
                now == oldBytes || now == newBytes, "round \(round): destination is neither the old nor the new file")
            // Start each round from the old file again so a kill can be checked against it.
            if now != oldBytes { try oldBytes.write(to: URL(fileURLWithPath: destination)) }
            for leftover in try FileManager.default.contentsOfDirectory(atPath: folder)
            where leftover.hasPrefix(".out.npz.lethe-") {
                try FileManager.default.removeItem(atPath: "\(folder)/\(leftover)")
            }
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: source)), sourceBytes, "the input never changes")
        XCTAssertGreaterThan(killedMidway, rounds / 4, "most rounds should be killed mid-write")
    }

    func testInPlaceReplacesOnlyWhenComplete() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = "\(folder)/w.safetensors"
        try writeSafetensors(file, tensors: 2, floatsEach: 1000, seed: 3)
        let before = try Data(contentsOf: URL(fileURLWithPath: file))
        let refused = try CLI.run(["convert", file, file, "--dtype", "f16"])
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("--in-place"), refused.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: file)), before)
        let done = try CLI.run(["convert", file, file, "--dtype", "f16", "--in-place"])
        XCTAssertEqual(done.status, 0, done.stderr)
        let inspect = try CLI.run(["inspect", file, "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((json["tensors"] as! [[String: Any]]).map { $0["dtype"] as! String }, ["float16", "float16"])
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: folder), ["w.safetensors"], "backup released")
    }
}
