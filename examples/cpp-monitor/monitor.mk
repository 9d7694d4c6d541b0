# The bedside-monitor example (examples/cpp-monitor) and the streaming benchmark, included
# by the top-level Makefile. Targets:
#   make monitor        .build/release/monitor (C++17, against the release library)
#   make monitor-test   64 beds x 200 steps on each ICU model: exit status 0 (no unexpected
#                       status, explanations of alerts included), the summary and the latency
#                       histogram printed; and its refusals of unusable models
#   make stream-bench   per-step latency of medinfer_stream_push, one thread
#                       -> Benchmarks/results/stream.md

MONITOR_SRC      := examples/cpp-monitor
MONITOR_BIN      := $(LIB_DIR)/monitor
MONITOR_HEADERS  := $(MONITOR_SRC)/medinfer.hpp $(MONITOR_SRC)/vitals.hpp $(MONITOR_SRC)/latency_histogram.hpp \
                    include/medinfer.h
MONITOR_CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -Werror -Wshadow -pthread -Iinclude
MONITOR_MODELS   := examples/models/icu_lstm.onnx examples/models/icu_gru.onnx examples/models/icu_bilstm.onnx \
                    examples/models/icu_two_branch.onnx
MONITOR_TEST_OUT := .build/monitor-test
STREAM_BENCH_BIN := $(LIB_DIR)/stream_bench

.PHONY: monitor monitor-test stream-bench

$(MONITOR_BIN): $(MONITOR_SRC)/monitor.cpp $(MONITOR_HEADERS) $(LIB)
	$(CXX) $(MONITOR_CXXFLAGS) $< -L$(LIB_DIR) -lmedinfer -Wl,-rpath,'$$ORIGIN' -o $@

$(STREAM_BENCH_BIN): Benchmarks/stream_bench.c include/medinfer.h $(LIB)
	$(CC) -std=c99 -O2 -g -Wall -Wextra -Werror -Iinclude $< -L$(LIB_DIR) -lmedinfer -lm -Wl,-rpath,'$$ORIGIN' -o $@

monitor: lib
	@$(MAKE) --no-print-directory $(MONITOR_BIN)

# Each model: the run must exit 0 (no unexpected library status, every stream's step count
# equal to the samples it accepted) and print its summary and latency histogram. Then a
# missing file and a model that is not a vital-sign sequence model must be refused with
# exit status 1 and a message. Every case runs; the target fails if any did.
monitor-test: monitor
	@mkdir -p $(MONITOR_TEST_OUT)
	@failed=""; for model in $(MONITOR_MODELS); do \
	    log=$(MONITOR_TEST_OUT)/$$(basename $$model .onnx).log; \
	    echo "== monitor-test: $$model, 64 beds x 200 steps"; \
	    status=0; $(MONITOR_BIN) --model $$model --beds 64 --steps 200 --bad-rate 0.01 --show-events 3 >$$log 2>&1 || status=$$?; \
	    if [ $$status -ne 0 ]; then cat $$log; echo "-- FAILED: $$model: exit status $$status"; failed="$$failed $$model"; continue; fi; \
	    missing=""; for want in 'rejected samples' 'alerts ' 'alerts explained' 'throughput' 'p50 ' 'p99.9 ' '< 1 us' 'mid-run'; do \
	        grep -qF -- "$$want" $$log || missing="$$missing '$$want'"; \
	    done; \
	    if [ -n "$$missing" ]; then cat $$log; echo "-- FAILED: $$model: no$$missing in the output"; failed="$$failed $$model"; continue; fi; \
	    sed -n '/^summary/,$$p' $$log; \
	done; \
	for bad in $(MONITOR_TEST_OUT)/no-such-model.onnx examples/models/skin_cnn_300.onnx; do \
	    echo "== monitor-test: $$bad must be refused"; \
	    status=0; $(MONITOR_BIN) --model $$bad --beds 2 --steps 2 >$(MONITOR_TEST_OUT)/refused.log 2>&1 || status=$$?; \
	    if [ $$status -ne 1 ] || ! grep -q '^monitor: ' $(MONITOR_TEST_OUT)/refused.log; then \
	        cat $(MONITOR_TEST_OUT)/refused.log; echo "-- FAILED: expected exit status 1 and a message, got $$status"; \
	        failed="$$failed $$bad"; continue; fi; \
	    head -c 200 $(MONITOR_TEST_OUT)/refused.log; echo; \
	done; \
	if [ -n "$$failed" ]; then echo "monitor-test: failed:$$failed"; exit 1; fi; \
	echo "monitor-test: all passed"

stream-bench: lib
	@$(MAKE) --no-print-directory $(STREAM_BENCH_BIN)
	$(STREAM_BENCH_BIN) examples/models/icu_lstm.onnx --out Benchmarks/results/stream.md
