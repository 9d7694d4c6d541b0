#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for FUZZ_SECONDS (default 60), FUZZ_JOBS at a
# time (default 2), then prints one line per target. Exits non-zero when any target found
# a crash, a timeout, an allocation over the cap or a sanitizer report (its input is in
# the target's findings directory; once fixed, commit it as a regression input).
#
#   trees   the model loader on tree formats (XGBoost JSON, LightGBM text, forest JSON,
#           MedInfer tree files), then scoring and TreeSHAP on edge rows
#   onnx    the same binary seeded with ONNX graphs: reader, planner, kernels, sequences
#   lambda  the serverless function's request handler (Fuzz/Lambda/handler_fuzz.c)
#   capi    the C API itself (Fuzz/CAPI/capi_fuzz.c) against an ASan build of the library
#           instrumented for coverage (libFuzzer sees the library's edges)
#
# Limits for every target: -malloc_limit_mb=64 (no single allocation of 64 MiB or more,
# whatever the input), -rss_limit_mb=2048 (4096 for capi, whose corpus holds whole
# networks), -timeout=5 (instrumented builds run 5-10x slower than release; the replay
# in make test prints the slowest input of the uninstrumented build).
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-2}
TARGETS=(${FUZZ_TARGETS:-trees onnx lambda capi})
FB=.build-fuzz
export SWIFT_BACKTRACE=enable=no

echo "== building the fuzz targets"
$SWIFT build -c release --product medinfer-fuzz-models --scratch-path $FB \
    --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
# capi and lambda: the library with ASan and libFuzzer's coverage instrumentation, so that
# those targets are guided by what the calls reach inside the library, not only by the
# harness and the handler
$SWIFT build -c debug -Xswiftc -O --sanitize=address --scratch-path .build-asan-cov --product medinfer \
    -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table
mkdir -p $FB/bin $FB/logs
clang -std=c11 -g -O1 -Iinclude -Iexamples/lambda -fsanitize=fuzzer,address -fuse-ld=lld Fuzz/Lambda/handler_fuzz.c \
    examples/lambda/handler.c -L.build-asan-cov/debug -lmedinfer $(pkg-config --cflags --libs json-c) -lm \
    -Wl,-rpath,"$PWD/.build-asan-cov/debug" -o $FB/bin/handler_fuzz
clang -std=c11 -g -O1 -Iinclude -fsanitize=fuzzer,address -fuse-ld=lld Fuzz/CAPI/capi_fuzz.c -L.build-asan-cov/debug \
    -lmedinfer -lm -Wl,-rpath,"$PWD/.build-asan-cov/debug" -o $FB/bin/capi_fuzz

for t in trees onnx lambda capi; do mkdir -p $FB/corpus/$t $FB/findings/$t; done
cp examples/models/*.json examples/models/*.txt Tests/Fixtures/valid/*.json Tests/Fixtures/valid/*.txt \
    Fuzz/Corpus/models/*.mdi $FB/corpus/trees/
cp Fuzz/Corpus/onnx/*.onnx $FB/corpus/onnx/

COMMON=(-max_total_time="$SECONDS_EACH" -print_final_stats=1 -malloc_limit_mb=64 -timeout=5)
run_target() { # run_target NAME: the target's libFuzzer command line, output to its log
    local t=$1
    local out=(-artifact_prefix=$FB/findings/$t/ $FB/corpus/$t)
    case $t in
        trees) $FB/release/medinfer-fuzz-models "${COMMON[@]}" -rss_limit_mb=2048 -use_value_profile=1 \
                   -max_len=65536 "${out[@]}" Tests/Fixtures/malformed Fuzz/Regressions/models ;;
        onnx) $FB/release/medinfer-fuzz-models "${COMMON[@]}" -rss_limit_mb=2048 -use_value_profile=1 \
                   -max_len=65536 -dict=Fuzz/onnx.dict "${out[@]}" Tests/Fixtures/malformed-onnx ;;
        lambda) $FB/bin/handler_fuzz "${COMMON[@]}" -rss_limit_mb=2048 -max_len=65536 "${out[@]}" \
                   Fuzz/Lambda/seeds Fuzz/Lambda/regressions ;;
        capi) ASAN_OPTIONS=detect_leaks=0 $FB/bin/capi_fuzz "${COMMON[@]}" -rss_limit_mb=4096 -max_len=4096 \
                   "${out[@]}" Fuzz/CAPI/seeds Fuzz/CAPI/regressions ;;
        *) echo "unknown fuzz target $t" >&2; return 2 ;;
    esac >$FB/logs/$t.log 2>&1
}

echo "== fuzzing ${TARGETS[*]} for $SECONDS_EACH s each, $JOBS at a time (logs in $FB/logs)"
declare -A status
running=0
for t in "${TARGETS[@]}"; do
    rm -f $FB/findings/$t/*
    ( run_target "$t"; echo $? >$FB/logs/$t.status ) &
    running=$((running + 1))
    if [ $running -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
done
wait

failed=0
printf '\n%-8s %10s %8s %8s %8s  %s\n' target runs execs/s cov ft result
for t in "${TARGETS[@]}"; do
    log=$FB/logs/$t.log
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    findings=$(ls $FB/findings/$t | wc -l)
    result=clean
    if [ "$(cat $FB/logs/$t.status 2>/dev/null || echo 1)" != 0 ] || [ "$findings" -ne 0 ]; then
        result="FAILED: $(ls $FB/findings/$t | head -n 3 | tr '\n' ' ')(see $log)"
        failed=1
    fi
    printf '%-8s %10s %8s %8s %8s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
if [ $failed -ne 0 ]; then
    for t in "${TARGETS[@]}"; do
        [ "$(cat $FB/logs/$t.status 2>/dev/null || echo 1)" = 0 ] || { echo "--- $t"; grep -A25 -m1 'ERROR\|==ERROR\|SUMMARY' $FB/logs/$t.log || tail -n 30 $FB/logs/$t.log; }
    done
    exit 1
fi
