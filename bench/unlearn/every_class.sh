#!/usr/bin/env bash
# Forgets each class of the sample model in turn (DESIGN §4 defaults, then --search where the
# defaults leave ACC_f ≥ 2% or lose more than 3 points of ACC_r, then --search --passes 2 where the
# search alone falls short) and prints one table row per class and setting tried.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
out=${OUT:-.build/bench-every-class}
mkdir -p "$out"
swift build -c release --product lethe >&2
lethe=.build/release/lethe
printf "%-5s %-8s %8s %8s %8s %8s %8s %8s %s\n" class mode ACC_r0 ACC_f0 ACC_r ACC_f MIA0 MIA α_r/α_f
for class in ${CLASSES:-0 1 2 3 4 5 6 7 8 9}; do
    for mode in default search search×2; do
        flags=()
        [ "$mode" = search ] && flags=(--search)
        [ "$mode" = search×2 ] && flags=(--search --passes 2)
        $lethe unlearn samples/fashion_cnn.onnx --data samples/fashion_train.npz --test samples/fashion_test.npz \
            --forget "$class" -o "$out/forgot-$class.onnx" --json "${flags[@]}" > "$out/report-$class-$mode.json"
        verdict=$("$PYTHON" - "$out/report-$class-$mode.json" "$class" "$mode" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = r["test"]
b, a = t["before"], t["after"]
mia0 = (t.get("membershipBefore") or {}).get("efficacy", float("nan"))
mia1 = (t.get("membershipAfter") or {}).get("efficacy", float("nan"))
ok = a["forgetAccuracy"] < 0.02 and a["retainAccuracy"] >= b["retainAccuracy"] - 0.03
print(f'{sys.argv[2]:<5} {sys.argv[3]:<8} {b["retainAccuracy"]*100:7.2f}% {b["forgetAccuracy"]*100:7.2f}% '
      f'{a["retainAccuracy"]*100:7.2f}% {a["forgetAccuracy"]*100:7.2f}% {mia0*100:7.2f}% {mia1*100:7.2f}% '
      f'{r["chosenAlphaRetain"]:g}/{r["chosenAlphaForget"]:g} {"ok" if ok else "short"}')
PY
)
        echo "$verdict"
        case "$verdict" in *" ok") break ;; esac
    done
done
