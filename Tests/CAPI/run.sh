#!/usr/bin/env bash
# Builds and runs the C API tests against libmedinfer.so.
#
#   Tests/CAPI/run.sh            release library (.build/release, or $MEDINFER_LIB_DIR)
#   Tests/CAPI/run.sh asan       library built with AddressSanitizer, in $MEDINFER_ASAN_LIB_DIR:
#                                  swift build -c debug --product medinfer --sanitize=address \
#                                      --scratch-path .build-asan
#                                  MEDINFER_ASAN_LIB_DIR=.build-asan/debug Tests/CAPI/run.sh asan
#                                (`make asan` does both); the C programs are built with the
#                                Swift toolchain's clang and -fsanitize=address
#   Tests/CAPI/run.sh tsan       test_threads, test_network, test_stream and test_explain against a library
#                                built with ThreadSanitizer, in $MEDINFER_TSAN_LIB_DIR (`make tsan`)
#   Tests/CAPI/run.sh valgrind   test_capi under valgrind memcheck (--leak-check=full; the Swift
#                                runtime's metadata caches are suppressed in valgrind.supp),
#                                release library; takes about 7 minutes (test_explain: 2.5)
#
# Programs: test_capi (every bad input through the C API, the malformed fixtures, file vs
# memory loads), test_network (ONNX: parity fixtures, malformed and truncated files, every
# argument of the network calls, sessions on several threads), test_stream (sequence models and
# per-bed streams: every argument, rejected samples, streaming = batch on every prefix, window
# mode, 4 threads x 16 streams), test_explain (Shapley explanations of sequences, streams and images:
# exact values against a brute force, additivity, a stream unchanged by explaining it, every
# bad argument), test_threads (one model shared by 8 threads, on each bundled model) and
# examples/c/score (on the bundled models and CSV files, plus its error paths). Build
# outputs go to .build/capi/. Every step runs even when an earlier one fails; the exit
# status is non-zero when any failed.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
MODE=${1:-normal}

MODELS=(examples/models/noshow_xgb.json examples/models/noshow_lgbm.txt examples/models/breast_rf.json)
CSVS=(examples/models/sample_rows.csv examples/models/sample_rows.csv examples/models/breast_sample.csv)

# The Swift toolchain: its clang matches the ASan runtime swiftc links against, and its
# runtime libraries are needed by a library built without -static-stdlib.
swift_bin_dir() {
    local swift
    swift=$(command -v swift) || { echo "run.sh: swift is not on PATH" >&2; return 1; }
    dirname "$(readlink -f "$swift")"
}

CC_USED=${CC:-cc}
CFLAGS_USED=(-std=c99 -O2 -g -Wall -Wextra -Werror -pthread)
RUN=()          # prefix for running test_capi (valgrind)
OUT=.build/capi
case "$MODE" in
    normal)
        LIB_DIR=${MEDINFER_LIB_DIR:-.build/release}
        ;;
    asan)
        LIB_DIR=${MEDINFER_ASAN_LIB_DIR:?set MEDINFER_ASAN_LIB_DIR to the directory of an ASan-built libmedinfer.so (see the top of this script)}
        SWIFT_BIN=$(swift_bin_dir)
        CC_USED=${ASAN_CC:-$SWIFT_BIN/clang}
        [ -x "$CC_USED" ] || CC_USED=clang
        CFLAGS_USED=(-std=c99 -O1 -g -fno-omit-frame-pointer -fsanitize=address -Wall -Wextra -Werror -pthread)
        # the toolchain's clang links with gold by default, which warns about every
        # __asan_* symbol; lld (shipped with Swift) does not
        [ -x "$SWIFT_BIN/ld.lld" ] && CFLAGS_USED+=(-fuse-ld=lld)
        OUT=.build/capi/asan
        SWIFT_RUNTIME=$SWIFT_BIN/../lib/swift/linux
        export LD_LIBRARY_PATH=$SWIFT_RUNTIME${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        # halt on the first error; leaks are errors. A hostile model that makes the library
        # allocate without bound is stopped at 4 GB (an rlimit cannot be used under ASan,
        # which reserves terabytes of address space for its shadow memory).
        export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:hard_rss_limit_mb=4096:allocator_may_return_null=1:detect_stack_use_after_return=0}
        export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/Tests/CAPI/lsan.supp:print_suppressions=0}
        export MEDINFER_TEST_MEMORY_LIMIT_MB=0
        export MEDINFER_TEST_QUICK=1
        # Swift's crash handler would muddle ASan's report.
        export SWIFT_BACKTRACE=enable=no
        ;;
    tsan)
        LIB_DIR=${MEDINFER_TSAN_LIB_DIR:?set MEDINFER_TSAN_LIB_DIR to the directory of a TSan-built libmedinfer.so (make tsan)}
        SWIFT_BIN=$(swift_bin_dir)
        CC_USED=${TSAN_CC:-$SWIFT_BIN/clang}
        SWIFT_RUNTIME=$SWIFT_BIN/../lib/swift/linux
        # the toolchain's TSan runtime needs libdispatch and the blocks runtime
        CFLAGS_USED=(-std=c99 -O1 -g -fsanitize=thread -Wall -Wextra -Werror -pthread -fuse-ld=lld
                     -L"$SWIFT_RUNTIME" -ldispatch -lBlocksRuntime -Wl,-rpath,"$SWIFT_RUNTIME")
        OUT=.build/capi/tsan
        export LD_LIBRARY_PATH=$SWIFT_RUNTIME${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1}
        export MEDINFER_TEST_QUICK=1
        export SWIFT_BACKTRACE=enable=no
        ;;
    valgrind)
        LIB_DIR=${MEDINFER_LIB_DIR:-.build/release}
        command -v valgrind >/dev/null || { echo "run.sh: valgrind is not installed" >&2; exit 1; }
        CFLAGS_USED=(-std=c99 -O1 -g -Wall -Wextra -Werror -pthread)
        OUT=.build/capi/valgrind
        # --trace-children: test_capi runs each malformed file and fuzzing round in a
        # fresh child process (itself re-executed), which must be checked too.
        RUN=(valgrind -q --error-exitcode=1 --leak-check=full --trace-children=yes
             --suppressions="$ROOT/Tests/CAPI/valgrind.supp")
        export MEDINFER_TEST_CHILD_TIMEOUT=1800
        export MEDINFER_TEST_QUICK=1
        export SWIFT_BACKTRACE=enable=no
        ;;
    *)
        echo "usage: $0 [asan|tsan|valgrind]" >&2
        exit 2
        ;;
esac

if [ ! -f "$LIB_DIR/libmedinfer.so" ]; then
    echo "run.sh: $LIB_DIR/libmedinfer.so does not exist." >&2
    if [ "$MODE" = asan ]; then
        echo "  build it: swift build -c debug --product medinfer --sanitize=address --scratch-path .build-asan" >&2
    else
        echo "  build it: swift build -c release --product medinfer" >&2
    fi
    exit 1
fi
LIB_DIR=$(cd "$LIB_DIR" && pwd)
mkdir -p "$OUT"

echo "== building against $LIB_DIR/libmedinfer.so with $CC_USED ($MODE)"
build() { # build OUTPUT SOURCE
    "$CC_USED" "${CFLAGS_USED[@]}" -Iinclude "$2" -L"$LIB_DIR" -lmedinfer -lm -Wl,-rpath,"$LIB_DIR" -o "$1"
}
build "$OUT/test_capi" Tests/CAPI/test_capi.c
# test_network reads the fixtures' JSON manifests with json-c
"$CC_USED" "${CFLAGS_USED[@]}" -D_DEFAULT_SOURCE -Iinclude $(pkg-config --cflags json-c) Tests/CAPI/test_network.c \
    -L"$LIB_DIR" -lmedinfer $(pkg-config --libs json-c) -lm -Wl,-rpath,"$LIB_DIR" -o "$OUT/test_network"
build "$OUT/test_threads" Tests/CAPI/test_threads.c
build "$OUT/test_stream" Tests/CAPI/test_stream.c
build "$OUT/test_explain" Tests/CAPI/test_explain.c
build "$OUT/score" examples/c/score.c

FAILED=()
step() { # step NAME COMMAND...: runs a command, records a failure
    local name=$1
    shift
    echo
    echo "== $name"
    if "$@"; then
        echo "-- ok: $name"
    else
        echo "-- FAILED ($?): $name"
        FAILED+=("$name")
    fi
}

# --- test_capi ---------------------------------------------------------------------------
if [ "$MODE" = tsan ]; then
    # Races are what TSan looks for: the threaded tests (one tree model: a debug TSan
    # build scores ~100x slower, and the locks are the same for every model).
    step "test_network (tsan)" "$OUT/test_network" "$ROOT"
    step "test_stream (tsan)" "$OUT/test_stream" "$ROOT"
    step "test_explain (tsan)" "$OUT/test_explain" "$ROOT"
    step "test_threads ${MODELS[0]} (tsan)" "$OUT/test_threads" "${MODELS[0]}"
    echo
    if [ ${#FAILED[@]} -ne 0 ]; then
        echo "C API tests ($MODE): ${#FAILED[@]} step(s) failed:"; printf '  %s\n' "${FAILED[@]}"; exit 1
    fi
    echo "C API tests ($MODE): all steps passed"
    exit 0
fi
step "test_capi" "${RUN[@]}" "$OUT/test_capi" "$ROOT"
step "test_network" "${RUN[@]}" "$OUT/test_network" "$ROOT"
step "test_stream" "${RUN[@]}" "$OUT/test_stream" "$ROOT"
step "test_explain" "${RUN[@]}" "$OUT/test_explain" "$ROOT"

if [ "$MODE" != valgrind ]; then
    # --- test_threads on each bundled model -----------------------------------------------
    for m in "${MODELS[@]}"; do
        if [ -f "$m" ]; then
            step "test_threads $m" "$OUT/test_threads" "$m"
        else
            step "test_threads $m (model missing)" false
        fi
    done

    # --- score: the bundled models and CSV files, then its error paths --------------------
    for i in "${!MODELS[@]}"; do
        m=${MODELS[$i]}
        if [ -f "$m" ]; then
            step "score $m ${CSVS[$i]}" "$OUT/score" "$m" "${CSVS[$i]}"
            step "score $m (built-in all-missing row)" "$OUT/score" "$m"
        else
            step "score $m (model missing)" false
        fi
    done

    TMP=$OUT/tmp
    mkdir -p "$TMP"
    # expect_failure NAME WORD COMMAND...: the command must exit 1 (not crash) and say WORD.
    expect_failure() {
        local word=$1
        shift
        local rc=0
        "$@" >"$TMP/stdout" 2>"$TMP/stderr" || rc=$?
        if [ "$rc" -ne 1 ]; then
            echo "expected exit status 1, got $rc"; cat "$TMP/stderr"; return 1
        fi
        if ! grep -qF -- "$word" "$TMP/stderr"; then
            echo "stderr does not mention '$word':"; cat "$TMP/stderr"; return 1
        fi
        head -c 300 "$TMP/stderr"; echo
    }
    XGB=Tests/Fixtures/valid/xgb_tiny.json  # features age, dist, care
    printf 'age,dist,care,surprise\n1,2,3,4\n' >"$TMP/unknown_column.csv"
    printf 'age,care\n1,3\n' >"$TMP/missing_column.csv"
    printf 'age,dist,care\n1,2\n' >"$TMP/short_row.csv"
    printf 'age,dist,care\n1,abc,2\n' >"$TMP/not_a_number.csv"
    printf 'age,dist,care\n' >"$TMP/no_rows.csv"
    # a 4 MB header line and a 400 kB number
    awk 'BEGIN { printf "age,dist,care"; for (i = 0; i < 200000; i++) printf ",extra_column_%d", i; print "" }' \
        >"$TMP/long_header.csv"
    awk 'BEGIN { printf "age,dist,care\n1,2,0."; for (i = 0; i < 400000; i++) printf "0"; print "1" }' \
        >"$TMP/long_value.csv"
    printf 'care,dist,age\n"1", 2 ,nan\n0,,NaN\n\n3,1e3,-inf\n' >"$TMP/reordered.csv"
    step "score: unknown column" expect_failure "'surprise'" "$OUT/score" "$XGB" "$TMP/unknown_column.csv"
    step "score: missing column" expect_failure "'dist'" "$OUT/score" "$XGB" "$TMP/missing_column.csv"
    step "score: short row" expect_failure "line 2" "$OUT/score" "$XGB" "$TMP/short_row.csv"
    step "score: not a number" expect_failure "'abc'" "$OUT/score" "$XGB" "$TMP/not_a_number.csv"
    step "score: header only" expect_failure "no rows" "$OUT/score" "$XGB" "$TMP/no_rows.csv"
    step "score: a 4 MB header line" expect_failure "'extra_column_0'" "$OUT/score" "$XGB" "$TMP/long_header.csv"
    step "score: missing CSV file" expect_failure "nope.csv" "$OUT/score" "$XGB" "$TMP/nope.csv"
    step "score: malformed model" expect_failure "MEDINFER_ERR_PARSE" "$OUT/score" \
        Tests/Fixtures/malformed/xgb_child_cycle.json
    step "score: missing model" expect_failure "MEDINFER_ERR_IO" "$OUT/score" "$TMP/no-model.json"
    step "score: reordered columns, quotes, blanks, nan, inf" "$OUT/score" "$XGB" "$TMP/reordered.csv"
    step "score: a 400 kB number" "$OUT/score" "$XGB" "$TMP/long_value.csv"
fi

echo
if [ ${#FAILED[@]} -ne 0 ]; then
    echo "C API tests ($MODE): ${#FAILED[@]} step(s) failed:"
    printf '  %s\n' "${FAILED[@]}"
    exit 1
fi
echo "C API tests ($MODE): all steps passed"
