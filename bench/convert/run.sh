#!/usr/bin/env bash
# Conversion benchmark: ~1 GB safetensors -> npz -> safetensors with Lethe and with
# NumPy + safetensors, printing wall time and peak RSS side by side.
#
# Usage: bench/convert/run.sh [WORK_DIR] [TOTAL_MB]
# Env:   LETHE_PYTHON (default /work/pyenv/bin/python or .build/venv/bin/python3)
#        LETHE (default .build/release/lethe; a stand-in is built when it has no `convert`)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$root/.build/bench-convert}"
total_mb="${2:-1000}"
python="${LETHE_PYTHON:-$root/.build/venv/bin/python3}"
[ -x "$python" ] || python=/work/pyenv/bin/python
mkdir -p "$work"
here="$root/bench/convert"

lethe="${LETHE:-$root/.build/release/lethe}"
if [ -x "$lethe" ] && "$lethe" convert --help >/dev/null 2>&1; then
    convert=("$lethe" convert)
    echo "using $lethe convert"
else
    echo "no 'lethe convert' yet; building the stand-in (bench/convert/ConvertBench.swift)"
    (cd "$root" && swift build -c release --target LetheNumPy >/dev/null && swift build -c release --target LetheSafetensors >/dev/null)
    rel="$root/.build/release"
    swiftc -O -o "$work/convert-bench" "$here/ConvertBench.swift" -module-name ConvertBench \
        -I "$rel/Modules" -I "$rel" \
        -Xcc -fmodule-map-file="$root/Sources/CZlib/module.modulemap" \
        -Xcc -fmodule-map-file="$root/Sources/CBLAS/module.modulemap" \
        "$rel"/LetheCore.build/*.o "$rel"/LetheIR.build/*.o "$rel"/LetheSafetensors.build/*.o "$rel"/LetheNumPy.build/*.o \
        -lz -lopenblas
    convert=("$work/convert-bench")
fi

big="$work/big.safetensors"
if [ ! -f "$big" ]; then "$python" "$here/make_big.py" "$big" "$total_mb"; fi
ls -l "$big"

# Runs a command under /usr/bin/time -v; prints "wall_seconds peak_kb cpu_seconds".
measure() {
    local log="$work/time.log"
    sync
    /usr/bin/time -v "$@" 2>"$log" >/dev/null || { cat "$log"; exit 1; }
    local wall rss cpu
    wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    rss=$(grep "Maximum resident set size" "$log" | awk '{print $NF}')
    cpu=$(awk -F': ' '/User time|System time/ { total += $2 } END { print total }' "$log")
    echo "$wall $rss $cpu"
}

# Warm the page cache so both sides read from memory, not disk.
cat "$big" >/dev/null

printf "%-27s %8s %8s %8s | %8s %8s %8s | %7s %7s %7s\n" "step" "wall s" "cpu s" "peak MB" \
    "wall s" "cpu s" "peak MB" "wall x" "cpu x" "mem x"
printf "%-27s %26s | %26s |\n" "" "Lethe" "NumPy + safetensors"
row() {
    local name="$1" l p
    l=($2); p=($3)
    awk -v n="$name" -v lt="${l[0]}" -v lr="${l[1]}" -v lc="${l[2]}" -v pt="${p[0]}" -v pr="${p[1]}" -v pc="${p[2]}" 'BEGIN {
        printf "%-27s %8.2f %8.2f %8.0f | %8.2f %8.2f %8.0f | %7.2f %7.2f %7.2f\n",
            n, lt, lc, lr/1024, pt, pc, pr/1024, pt/lt, pc/lc, pr/lr }'
}

l1=$(measure "${convert[@]}" "$big" "$work/lethe.npz")
p1=$(measure "$python" "$here/python_convert.py" "$big" "$work/python.npz")
row "safetensors -> npz" "$l1" "$p1"
cat "$work/lethe.npz" >/dev/null; cat "$work/python.npz" >/dev/null
l2=$(measure "${convert[@]}" "$work/lethe.npz" "$work/lethe.safetensors")
p2=$(measure "$python" "$here/python_convert.py" "$work/python.npz" "$work/python.safetensors")
row "npz -> safetensors" "$l2" "$p2"
l3=$(measure "${convert[@]}" "$work/python.npz" "$work/lethe-from-numpy.safetensors")
row "numpy's npz -> safetensors" "$l3" "$p2"

largest=$("$python" -c "
import json,struct,sys
f=open(sys.argv[1],'rb'); n=struct.unpack('<Q',f.read(8))[0]; h=json.loads(f.read(n)); h.pop('__metadata__',None)
print(max(v['data_offsets'][1]-v['data_offsets'][0] for v in h.values()))" "$big")
echo "largest tensor: $((largest / 1048576)) MB; goal: Lethe peak < 1.2 x largest + constant"
echo "(x = Python / Lethe; Lethe fsyncs its output before renaming it into place, Python leaves it in the page cache)"
"$python" "$here/check_same.py" "$big" "$work/lethe.npz" "$work/lethe.safetensors" "$work/lethe-from-numpy.safetensors"

# An ONNX model over protobuf's 2 GB limit, its weights in one external data file: rewritten as
# ONNX (the data file written anew, 64-byte aligned) and converted to safetensors.
bigonnx="$work/big.onnx"
if [ ! -f "$bigonnx" ]; then "$python" "$here/make_big_onnx.py" "$bigonnx" "${ONNX_MB:-2200}"; fi
cat "$bigonnx.data" >/dev/null
l4=$(measure "${convert[@]}" "$bigonnx" "$work/lethe-out.onnx")
p4=$(measure "$python" "$here/python_onnx.py" "$bigonnx" "$work/python-out.onnx")
row "onnx (external data) -> onnx" "$l4" "$p4"
l5=$(measure "${convert[@]}" "$bigonnx" "$work/lethe-onnx.safetensors")
p5=$(measure "$python" "$here/python_onnx.py" "$bigonnx" "$work/python-onnx.safetensors")
row "onnx (external data) -> st" "$l5" "$p5"
echo "external data: $(stat -c %s "$bigonnx.data") bytes, largest tensor 95 MB"
"$python" "$here/check_same.py" "$work/lethe-onnx.safetensors" "$bigonnx" "$work/lethe-out.onnx"
if [ -z "${KEEP:-}" ]; then
    rm -f "$work"/lethe*.npz "$work"/python*.npz "$work"/lethe*.safetensors "$work"/python*.safetensors
    rm -f "$work"/lethe-out.onnx* "$work"/python-out.onnx*
fi
