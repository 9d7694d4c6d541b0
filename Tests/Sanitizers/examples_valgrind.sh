#!/usr/bin/env bash
# The C and C++ host examples under valgrind memcheck, against the real release library
# (.build/release/libmedinfer.so, built by `make lib`): the scorer on each tree model, the
# image classifier on the bundled images, and the bedside monitor (C++, 4 threads) on a
# small ward. Any memcheck error or definite leak fails the step (the Swift runtime's
# one-time metadata caches are suppressed in Tests/CAPI/valgrind.supp).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "examples_valgrind.sh: valgrind is not installed" >&2; exit 1; }
BIN=.build/release
VALGRIND=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
          --suppressions=Tests/CAPI/valgrind.supp)
export SWIFT_BACKTRACE=enable=no
failed=()
step() { # step NAME COMMAND...
    local name=$1; shift
    echo "== $name"
    local status=0
    "${VALGRIND[@]}" "$@" >.build/valgrind-step.log 2>&1 || status=$?
    if [ "$status" -eq 99 ] || [ "$status" -gt 1 ]; then
        cat .build/valgrind-step.log; echo "-- FAILED ($status): $name"; failed+=("$name")
    else
        tail -n 2 .build/valgrind-step.log; echo "-- clean: $name"
    fi
}
step "score noshow_xgb.json" $BIN/score examples/models/noshow_xgb.json examples/models/sample_rows.csv
step "score noshow_lgbm.txt" $BIN/score examples/models/noshow_lgbm.txt examples/models/sample_rows.csv
step "score breast_rf.json" $BIN/score examples/models/breast_rf.json examples/models/breast_sample.csv
step "score (missing file: exit 1, no leak)" $BIN/score examples/models/no-such-model.json
step "classify skin_cnn.onnx" $BIN/classify examples/models/skin_cnn.onnx $(ls examples/images/*.ppm | head -n 2)
step "monitor icu_lstm.onnx, 4 beds x 40 steps" $BIN/monitor --model examples/models/icu_lstm.onnx --beds 4 --steps 40 \
    --threads 2 --bad-rate 0.05 --show-events 1
echo
if [ ${#failed[@]} -ne 0 ]; then
    echo "examples under valgrind: ${#failed[@]} failed:"; printf '  %s\n' "${failed[@]}"; exit 1
fi
echo "examples under valgrind: all clean"
