# The serverless no-show scoring function (examples/lambda), included by the top-level
# Makefile. Targets:
#   make lambda-zip       bootstrap + libmedinfer.so + noshow.mdi + non-glibc libraries
#                         -> .build/lambda/medinfer-noshow-lambda.zip (provided.al2023)
#   make lambda-test      the Runtime-API emulator tests (Tests/Lambda) against the zip
#   make lambda-bench     cold start, warm handler time, peak RSS, zip size
#                         -> Benchmarks/results/lambda.md
#   make lambda-valgrind  a shorter event mix through bootstrap under valgrind memcheck
#   make lambda-asan      the same against bootstrap built with -fsanitize=address
#   make lambda-fuzz      libFuzzer + ASan over the request handler (Fuzz/Lambda) for
#                         FUZZ_SECONDS; make lambda-fuzz-replay (in make test) replays the
#                         seeds and regression inputs through a plain build

LAMBDA_SRC    := examples/lambda
LAMBDA_BUILD  := .build/lambda
LAMBDA_STAGE  := $(LAMBDA_BUILD)/stage
LAMBDA_ZIP    := $(LAMBDA_BUILD)/medinfer-noshow-lambda.zip
LAMBDA_C      := $(LAMBDA_SRC)/bootstrap.c $(LAMBDA_SRC)/handler.c $(LAMBDA_SRC)/http_client.c
LAMBDA_H      := $(LAMBDA_SRC)/handler.h $(LAMBDA_SRC)/http_client.h include/medinfer.h
LAMBDA_CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Iinclude
LAMBDA_JSONC   = $(shell pkg-config --cflags --libs json-c)
LAMBDA_DEPS_STAMP := $(VENV)/.medinfer-lambda-deps

.PHONY: lambda-bin lambda-zip lambda-test lambda-bench lambda-valgrind lambda-asan lambda-python-deps \
        lambda-fuzz lambda-fuzz-replay

# bootstrap finds libmedinfer.so and the shipped libraries in $ORIGIN/lib (DT_RPATH,
# which also covers the libraries' own dependencies).
$(LAMBDA_BUILD)/bootstrap: $(LAMBDA_C) $(LAMBDA_H) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LAMBDA_CFLAGS) $(LAMBDA_C) -L$(LIB_DIR) -lmedinfer $(LAMBDA_JSONC) -lm \
	    -Wl,--disable-new-dtags -Wl,-rpath,'$$ORIGIN/lib' -o $@

$(LAMBDA_BUILD)/mdi_convert: $(LAMBDA_SRC)/mdi_convert.c include/medinfer.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LAMBDA_CFLAGS) $< -L$(LIB_DIR) -lmedinfer -lm -Wl,-rpath,'$(abspath $(LIB_DIR))' -o $@

$(LAMBDA_BUILD)/noshow.mdi: examples/models/noshow_xgb.json $(LAMBDA_BUILD)/mdi_convert
	$(LAMBDA_BUILD)/mdi_convert $< $@

$(LAMBDA_ZIP): $(LAMBDA_BUILD)/bootstrap $(LAMBDA_BUILD)/noshow.mdi $(LIB) $(LAMBDA_SRC)/package.py
	$(PYTHON) $(LAMBDA_SRC)/package.py --bootstrap $(LAMBDA_BUILD)/bootstrap --library $(LIB) \
	    --model $(LAMBDA_BUILD)/noshow.mdi --stage $(LAMBDA_STAGE) --zip $@

lambda-bin: lib
	@$(MAKE) --no-print-directory $(LAMBDA_BUILD)/bootstrap $(LAMBDA_BUILD)/noshow.mdi

lambda-zip: lib
	@$(MAKE) --no-print-directory $(LAMBDA_ZIP)

lambda-python-deps: python-deps $(LAMBDA_DEPS_STAMP)
$(LAMBDA_DEPS_STAMP): Tests/Lambda/requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check -r Tests/Lambda/requirements.txt
	@touch $@

lambda-test: lambda-zip lambda-python-deps
	$(PY) -m pytest -q Tests/Lambda

lambda-bench: lambda-zip lambda-python-deps
	$(PY) Benchmarks/lambda_bench.py

lambda-valgrind: lambda-zip lambda-python-deps
	MEDINFER_LAMBDA_CHECK=valgrind $(PY) -m pytest -q Tests/Lambda -k memory_checked

# bootstrap (not the Swift library, see DESIGN.md) built with AddressSanitizer + UBSan.
$(LAMBDA_BUILD)/asan/bootstrap: $(LAMBDA_C) $(LAMBDA_H) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LAMBDA_CFLAGS) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
	    $(LAMBDA_C) -L$(LIB_DIR) -lmedinfer $(LAMBDA_JSONC) -lm -Wl,-rpath,'$(abspath $(LIB_DIR))' -o $@

lambda-asan: lib lambda-python-deps
	@$(MAKE) --no-print-directory $(LAMBDA_BUILD)/asan/bootstrap $(LAMBDA_BUILD)/noshow.mdi
	MEDINFER_LAMBDA_CHECK=asan $(PY) -m pytest -q Tests/Lambda -k memory_checked

# The request handler under libFuzzer (clang from the Swift toolchain has the runtime).
LAMBDA_FUZZ_INPUTS := Fuzz/Lambda/seeds Fuzz/Lambda/regressions
$(LAMBDA_BUILD)/handler_replay: Fuzz/Lambda/handler_fuzz.c $(LAMBDA_SRC)/handler.c $(LAMBDA_SRC)/handler.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LAMBDA_CFLAGS) -DREPLAY -I$(LAMBDA_SRC) Fuzz/Lambda/handler_fuzz.c $(LAMBDA_SRC)/handler.c \
	    -L$(LIB_DIR) -lmedinfer $(LAMBDA_JSONC) -lm -Wl,-rpath,'$(abspath $(LIB_DIR))' -o $@

lambda-fuzz-replay: lib
	@$(MAKE) --no-print-directory $(LAMBDA_BUILD)/handler_replay
	$(LAMBDA_BUILD)/handler_replay $(wildcard $(addsuffix /*,$(LAMBDA_FUZZ_INPUTS)))

lambda-fuzz: lib
	FUZZ_TARGETS=lambda FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFT=$(SWIFT) Fuzz/run.sh
