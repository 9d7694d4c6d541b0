# MedInfer: two commands matter.
#   make demo   build the release library and score the bundled models from C
#   make test   install what is missing, then run every test suite
# Others: make lib, make swift-test, make capi-test, make capi-valgrind, make parity,
# make asan, make tsan, make check-sanitizers, make fuzz, make fuzz-memory, make bench.

SWIFT   ?= swift
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
LIB_DIR := .build/release
LIB     := $(LIB_DIR)/libmedinfer.so
CC      ?= cc
CFLAGS  ?= -std=c99 -O2 -Wall -Wextra -Werror
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEPS_STAMP := $(VENV)/.medinfer-deps

.PHONY: demo test lib system-deps python-deps swift-test capi-test capi-valgrind parity asan tsan bench fuzz clean batch-test \
        capi-fuzz capi-fuzz-replay fuzz-memory check-sanitizers examples-valgrind

demo: lib $(LIB_DIR)/score $(LIB_DIR)/classify
	@for m in examples/models/noshow_xgb.json:examples/models/sample_rows.csv \
	          examples/models/noshow_lgbm.txt:examples/models/sample_rows.csv \
	          examples/models/breast_rf.json:examples/models/breast_sample.csv; do \
	    echo; $(LIB_DIR)/score $${m%%:*} $${m##*:} || exit 1; done
	@echo; $(LIB_DIR)/classify examples/models/skin_cnn.onnx examples/images/*.ppm

test: system-deps python-deps lib
	$(SWIFT) test
	$(SWIFT) build --product medinfer-fuzz-models
	.build/debug/medinfer-fuzz-models Fuzz/Regressions/models Fuzz/Corpus/models Tests/Fixtures/malformed Tests/Fixtures/valid \
	    Fuzz/Corpus/onnx Tests/Fixtures/malformed-onnx
	Tests/CAPI/run.sh
	$(PY) -m pytest -q Tests/Parity
	$(MAKE) --no-print-directory lambda-test
	$(MAKE) --no-print-directory lambda-fuzz-replay
	$(MAKE) --no-print-directory capi-fuzz-replay
	$(MAKE) --no-print-directory monitor-test
	$(MAKE) --no-print-directory batch-test
	$(MAKE) --no-print-directory dist-test
	$(MAKE) --no-print-directory check-sanitizers
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=60

# json-c headers, pkg-config and valgrind are not on a fresh machine.
system-deps:
	@if ! pkg-config --exists json-c 2>/dev/null || ! command -v valgrind >/dev/null; then \
	    echo "installing libjson-c-dev, pkg-config and valgrind (apt)"; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libjson-c-dev pkg-config valgrind >/dev/null; \
	fi

python-deps: $(DEPS_STAMP)
$(DEPS_STAMP): Tests/Parity/requirements.txt Tests/Batch/requirements.txt
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r Tests/Parity/requirements.txt -r Tests/Batch/requirements.txt
	@touch $@

lib: system-deps
	$(SWIFT) build -c release --product medinfer
	@ln -sfn libmedinfer.so $(LIB_DIR)/libmedinfer.so.1  # its SONAME, for hosts linked in the build tree

$(LIB_DIR)/score: examples/c/score.c include/medinfer.h lib
	$(CC) $(CFLAGS) -Iinclude $< -L$(LIB_DIR) -lmedinfer -Wl,-rpath,'$$ORIGIN' -o $@

$(LIB_DIR)/classify: examples/c/classify.c include/medinfer.h lib
	$(CC) $(CFLAGS) -D_POSIX_C_SOURCE=200809L -Iinclude $< -L$(LIB_DIR) -lmedinfer -Wl,-rpath,'$$ORIGIN' -o $@

swift-test: system-deps
	$(SWIFT) test

capi-test: lib
	Tests/CAPI/run.sh

# The C API tests under valgrind memcheck, against the real release library (~4 min).
capi-valgrind: lib
	Tests/CAPI/run.sh valgrind

parity: python-deps lib
	$(PY) -m pytest -q Tests/Parity

# Sanitizer builds: the debug configuration (no -static-stdlib, whose --no-undefined link
# cannot see the sanitizer runtimes) optimized with -O, so that the instrumented library
# runs the CNN and explanation tests in seconds rather than minutes.
ASAN_FLAGS := -c debug -Xswiftc -O --sanitize=address --scratch-path .build-asan
TSAN_FLAGS := -c debug -Xswiftc -O --sanitize=thread --scratch-path .build-tsan

# The C API tests against a library built with AddressSanitizer.
asan: system-deps
	$(SWIFT) build $(ASAN_FLAGS) --product medinfer
	MEDINFER_ASAN_LIB_DIR=.build-asan/debug Tests/CAPI/run.sh asan

# The threaded C API tests against a library built with ThreadSanitizer.
tsan: system-deps
	$(SWIFT) build $(TSAN_FLAGS) --product medinfer
	MEDINFER_TSAN_LIB_DIR=.build-tsan/debug Tests/CAPI/run.sh tsan

# Everything under a sanitizer, run by make test (about 5 minutes): the Swift unit tests
# under AddressSanitizer and under ThreadSanitizer, the C API tests against the ASan and
# TSan libraries, and the C/C++ host examples under valgrind memcheck on the release .so.
# Leaks are checked by the C API runs (LeakSanitizer) and valgrind; under swift test,
# XCTest's own harness leaks a few objects per test, so LeakSanitizer is off there.
check-sanitizers: system-deps
	ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no $(SWIFT) test $(ASAN_FLAGS)
	$(MAKE) --no-print-directory asan
	SWIFT_BACKTRACE=enable=no $(SWIFT) test $(TSAN_FLAGS)
	$(MAKE) --no-print-directory tsan
	$(MAKE) --no-print-directory examples-valgrind

examples-valgrind: lib $(LIB_DIR)/score $(LIB_DIR)/classify monitor
	Tests/Sanitizers/examples_valgrind.sh

# libFuzzer over every reader, the serverless handler and the C API: each target for
# FUZZ_SECONDS (default 60), two at a time; fails on any finding (see Fuzz/README.md).
# make test runs it as a smoke test; make capi-fuzz / lambda-fuzz run one target.
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := .build-fuzz
fuzz: system-deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFT=$(SWIFT) Fuzz/run.sh

# Peak memory of every fuzzing input, each loaded (and then planned and run) in a forked
# child: fails when loading any of them grows the process by more than 64 MiB beyond the
# file's own size (run after make fuzz, over its corpora).
fuzz-memory:
	$(SWIFT) build -c release --product medinfer-fuzz-models
	$(LIB_DIR)/medinfer-fuzz-models --peak-memory $(FUZZ_BUILD)/corpus/trees $(FUZZ_BUILD)/corpus/onnx \
	    Fuzz/Regressions/models Tests/Fixtures/malformed Tests/Fixtures/malformed-onnx

# The C API under libFuzzer alone (Fuzz/CAPI/capi_fuzz.c, against the ASan library);
# capi-fuzz-replay (in make test) replays the seeds and regressions through a plain build
# against the release library.
CAPI_FUZZ_INPUTS := Fuzz/CAPI/seeds Fuzz/CAPI/regressions
capi-fuzz: system-deps
	FUZZ_TARGETS=capi FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFT=$(SWIFT) Fuzz/run.sh

capi-fuzz-replay: lib
	@mkdir -p $(LIB_DIR)/fuzz
	$(CC) -std=c11 -O1 -g -Wall -Wextra -Werror -DREPLAY -Iinclude Fuzz/CAPI/capi_fuzz.c -L$(LIB_DIR) -lmedinfer -lm \
	    -Wl,-rpath,'$(abspath $(LIB_DIR))' -o $(LIB_DIR)/fuzz/capi_replay
	$(LIB_DIR)/fuzz/capi_replay $(wildcard $(addsuffix /*,$(CAPI_FUZZ_INPUTS)))

bench: python-deps lib
	$(PY) Benchmarks/run_all.py
	$(PY) Benchmarks/cnn_bench.py --record
	$(PY) Benchmarks/sequence_bench.py
	$(MAKE) --no-print-directory stream-bench
	$(PY) Benchmarks/network_shap_bench.py

# Dask and Spark end to end through the Python binding (Tests/Batch; needs Java 17+).
batch-test: python-deps lib
	$(PY) -m pytest -q Tests/Batch

clean:
	rm -rf .build .build-asan .build-asan-cov .build-tsan .build-fuzz

include examples/lambda/lambda.mk
include examples/cpp-monitor/monitor.mk
include packaging/packaging.mk
