#!/usr/bin/env bash
# Fuzzes Lethe's readers and runtime with libFuzzer (Swift's -sanitize=fuzzer) and AddressSanitizer.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      targets: onnx safetensors npy npz graph image
#
# Builds the fuzz executables (Fuzz/, declared in Package.swift when LETHE_FUZZ is set) into their
# own scratch path .build/fuzz, so the normal build cache is untouched; seeds each corpus
# (.build/fuzz/corpus/TARGET) from the repository's fixtures and committed regression inputs;
# runs each target for SECONDS_PER_TARGET (default 60), two at a time; prints the executions per
# target; keeps crash inputs in .build/fuzz/crashes/TARGET/ and exits 1 if any target crashed.
# A crash input, once fixed, belongs in Tests/fuzz-regressions/TARGET/NAME.reject (or .accept).
#
# Environment: FUZZ_JOBS (targets at once, default 2, at most 2), FUZZ_RSS_MB (default 2048),
# FUZZ_MALLOC_MB (largest single allocation, default 1024), FUZZ_TIMEOUT (seconds per input, default 30),
# FUZZ_OUT (default .build/fuzz), LETHE_MAX_TENSOR_BYTES (the runtime's tensor cap, default 64M).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${1:-60}
shift || true
all_targets=(onnx safetensors npy npz graph image)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi
for target in "${targets[@]}"; do
    case " ${all_targets[*]} " in *" $target "*) ;; *) echo "fuzz.sh: unknown target '$target' (${all_targets[*]})" >&2; exit 2 ;; esac
done
case $seconds in ''|*[!0-9]*) echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number" >&2; exit 2 ;; esac

jobs=${FUZZ_JOBS:-2}
[ "$jobs" -ge 1 ] && [ "$jobs" -le 2 ] || jobs=2
out=${FUZZ_OUT:-$root/.build/fuzz}
mkdir -p "$out/logs"

# --sanitize fuzzer makes SwiftPM leave libFuzzer's `main` alone; the -Xswiftc flag comes last on
# every command line, so it is the one that counts and adds AddressSanitizer to the coverage.
build_started=$(date +%s)
for target in "${targets[@]}"; do
    if ! LETHE_FUZZ=1 swift build --scratch-path "$out" --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address \
        --product "fuzz-$target" >"$out/logs/build-$target.log" 2>&1; then
        grep -v "ld.gold: warning: Cannot export local symbol" "$out/logs/build-$target.log" | tail -40 >&2
        echo "fuzz.sh: building fuzz-$target failed (log: $out/logs/build-$target.log)" >&2
        exit 2
    fi
done
bin=$(LETHE_FUZZ=1 swift build --scratch-path "$out" --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address --show-bin-path)
echo "fuzz.sh: built ${targets[*]} in $(( $(date +%s) - build_started )) s"

# Seeds: small files from the repository (and the ONNX backend node tests when fetched).
seed() {   # seed TARGET FILE...
    local corpus="$out/corpus/$1"; shift
    local file
    for file in "$@"; do
        [ -f "$file" ] || continue
        [ "$(wc -c <"$file")" -le 65536 ] || continue
        # Named by content so repeated runs do not pile up copies.
        cp "$file" "$corpus/seed-$(cksum <"$file" | tr ' ' '-')"
    done
}
backend=$root/.build/onnx-backend-node
for target in "${targets[@]}"; do
    mkdir -p "$out/corpus/$target" "$out/crashes/$target"
    seed "$target" "$root"/Tests/fuzz-regressions/"$target"/*
    case $target in
        onnx|graph)
            seed "$target" "$root"/formats/onnx/fixtures/*.onnx "$root"/formats/models/*.onnx "$root"/samples/*.onnx
            if [ -d "$backend" ]; then seed "$target" "$backend"/test_*/model.onnx; fi ;;
        safetensors) seed "$target" "$root"/formats/safetensors/fixtures/*.safetensors ;;
        npy) seed "$target" "$root"/formats/npz/fixtures/*.npy "$root"/formats/onnx/fixtures/*.npy ;;
        npz) seed "$target" "$root"/formats/npz/fixtures/*.npz "$root"/formats/models/*.npz ;;
        image) seed "$target" "$root"/Tests/reference/images/pages/*/* ;;
    esac
done

# The runtime's cap on one tensor (the readers get FuzzTarget.limits): a fuzzed graph may ask
# ConstantOfShape or Expand for gigabytes a real machine could give; refusing them is what is tested.
export LETHE_MAX_TENSOR_BYTES=${LETHE_MAX_TENSOR_BYTES:-64M}
# Swift's own crash backtracer reads the stack in a way AddressSanitizer reports as a bug of its own.
export SWIFT_BACKTRACE=enable=no

run_target() {   # run_target TARGET: libFuzzer's exit status
    local target=$1
    rm -f "$out/crashes/$target"/*
    "$bin/fuzz-$target" "$out/corpus/$target" \
        -max_total_time="$seconds" -print_final_stats=1 \
        -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -malloc_limit_mb="${FUZZ_MALLOC_MB:-1024}" \
        -timeout="${FUZZ_TIMEOUT:-30}" -artifact_prefix="$out/crashes/$target/" \
        >"$out/logs/$target.log" 2>&1
}

echo "fuzz.sh: ${#targets[@]} target(s), $seconds s each, $jobs at a time"
declare -A status
pending=("${targets[@]}")
running=()
while [ ${#pending[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
    while [ ${#pending[@]} -gt 0 ] && [ ${#running[@]} -lt "$jobs" ]; do
        target=${pending[0]}
        pending=("${pending[@]:1}")
        rm -f "$out/logs/$target.status"
        ( set +e; run_target "$target"; echo $? >"$out/logs/$target.status" ) &
        running+=("$target:$!")
    done
    wait -n || true
    still=()
    for entry in "${running[@]}"; do
        if kill -0 "${entry#*:}" 2>/dev/null; then still+=("$entry"); else wait "${entry#*:}" || true; fi
    done
    running=("${still[@]+"${still[@]}"}")
done

failed=0
printf '%-12s %14s %10s  %s\n' target executions exec/s result
for target in "${targets[@]}"; do
    log=$out/logs/$target.log
    code=$(cat "$out/logs/$target.status" 2>/dev/null || echo 99)
    units=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    artifacts=$(ls "$out/crashes/$target" 2>/dev/null || true)
    if [ "$code" = 0 ] && [ -z "$artifacts" ]; then
        result="no crash"
    else
        result="CRASH (exit $code): $(echo $artifacts | sed "s|\([^ ]*\)|$out/crashes/$target/\1|g")"
        failed=1
    fi
    printf '%-12s %14s %10s  %s\n' "$target" "${units:-?}" "${rate:-?}" "$result"
done
if [ "$failed" != 0 ]; then
    for target in "${targets[@]}"; do
        if [ -n "$(ls "$out/crashes/$target" 2>/dev/null)" ] || [ "$(cat "$out/logs/$target.status" 2>/dev/null)" != 0 ]; then
            echo "---- $target (log: $out/logs/$target.log)" >&2
            grep -v '^#[0-9]' "$out/logs/$target.log" | grep -v '^	NEW_FUNC' | tail -40 >&2
        fi
    done
    echo "fuzz.sh: crash inputs kept in $out/crashes/; reproduce with $bin/fuzz-TARGET FILE" >&2
    exit 1
fi
