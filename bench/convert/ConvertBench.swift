// A stand-in for `lethe convert IN OUT` used by run.sh while the command line is not built:
// reads IN (.safetensors or .npz) and writes OUT in the format of its extension, exactly
// through the library calls the command uses. Built by run.sh with swiftc against the release
// objects of the format targets (it is deliberately not a package target).
#if canImport(Glibc)
import Glibc
#endif
import LetheCore
import LetheIR
import LetheNumPy
import LetheSafetensors

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    print("usage: convert-bench IN OUT")
    exit(2)
}
let (source, target) = (arguments[1], arguments[2])
do {
    let model: Model
    if source.hasSuffix(".safetensors") {
        model = try SafetensorsFormat.read(path: source).model
    } else {
        model = try NPZFormat.read(path: source).model
    }
    if target.hasSuffix(".safetensors") {
        try SafetensorsFormat.write(model, to: target)
    } else {
        try NPZFormat.write(model, to: target)
    }
} catch {
    fputs("convert-bench: \(error)\n", stderr)
    exit(2)
}
