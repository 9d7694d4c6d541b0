/*
 * test_capi.c - the C API of libmedinfer exercised through include/medinfer.h, the way
 * a C host sees it: every bad input must give the documented status code and a message
 * naming the problem, never a crash, and the success paths must agree with each other.
 *
 * Covered: NULL for every pointer argument of every function; zero rows, wrong feature
 * counts, short output buffers (with a guard region of sentinels after them), bad
 * options, iteration limits beyond the model, rows x features (or x outputs) overflowing
 * size_t, for medinfer_predict and both SHAP functions; missing files, a directory, a
 * FIFO, an empty file, /dev/null, a 12 kB path; a UTF-8 BOM and CRLF line ends; every
 * malformed fixture; seeded random garbage and seeded mutations of valid models; the
 * per-thread last error; status names; and, for each model, file vs memory loads
 * (bitwise-equal predictions and SHAP values), the query functions, SHAP additivity.
 *
 *   test_capi [REPO_ROOT]        (default: the current directory)
 *
 * Uses the tiny models in Tests/Fixtures/valid/, every file in Tests/Fixtures/malformed/
 * (expected results are read from the table in its README.md) and the bundled models in
 * examples/models/. The last line of output is "N passed, N failed"; the exit status is
 * non-zero when anything failed.
 *
 * Each malformed file and each fuzzing round runs in a child process (this program
 * run again as `test_capi --child FD KIND ARG ROOT`), so that a crash, a hang, a
 * runaway allocation or a sanitizer/valgrind finding is reported as a failure naming
 * the input while the run goes on. The child is a fresh process (fork + exec), so ASan's
 * RSS limit and leak check and valgrind (--trace-children=yes) apply to it. Environment:
 *   MEDINFER_TEST_MEMORY_LIMIT_MB  address-space limit of those children (default 4096;
 *                                  0 = none, e.g. under ASan, which reserves terabytes)
 *   MEDINFER_TEST_CHILD_TIMEOUT    seconds before a child counts as hung (default 120)
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "medinfer.h"

/* ------------------------------------------------------------------------------------ */
/* A tiny test harness                                                                   */
/* ------------------------------------------------------------------------------------ */

static int g_passed, g_failed;

static void check_impl(int ok, const char *file, int line, const char *expr, const char *fmt, ...) {
  if (ok) {
    g_passed++;
    return;
  }
  g_failed++;
  printf("FAIL %s:%d: %s\n     ", file, line, expr);
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

/* CHECK(condition, printf-format, ...): counts a pass or prints a failure with context. */
#define CHECK(cond, ...) check_impl(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

/* Case-insensitive substring search (strcasestr is a GNU extension). */
static int contains_nocase(const char *haystack, const char *needle) {
  if (!haystack || !needle) return 0;
  size_t n = strlen(needle);
  for (const char *p = haystack; *p; p++) {
    size_t i = 0;
    while (i < n && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return n == 0;
}

static const char *last_error(void) {
  const char *e = medinfer_last_error();
  return e ? e : "(NULL from medinfer_last_error)";
}

/* Checks a failed call: the exact status, a non-empty message, and that the message
 * contains `needle` (case-insensitive; NULL = no word required). */
#define CHECK_ERROR(what, got, want, needle) check_error(__FILE__, __LINE__, (what), (got), (want), (needle))
static void check_error(const char *file, int line, const char *what, int got, int want, const char *needle) {
  const char *msg = last_error();
  check_impl(got == want, file, line, "status", "%s: expected %s, got %s (message: \"%s\")", what,
             medinfer_status_name(want), medinfer_status_name(got), msg);
  check_impl(msg[0] != '\0', file, line, "message non-empty", "%s: empty medinfer_last_error()", what);
  if (needle)
    check_impl(contains_nocase(msg, needle), file, line, "message names the problem",
               "%s: message \"%s\" does not mention \"%s\"", what, msg, needle);
}

#define CHECK_OK(what, got) check_ok(__FILE__, __LINE__, (what), (got))
static int check_ok(const char *file, int line, const char *what, int got) {
  const char *msg = last_error();
  check_impl(got == MEDINFER_OK, file, line, "status == MEDINFER_OK", "%s: got %s (message: \"%s\")", what,
             medinfer_status_name(got), msg);
  check_impl(got != MEDINFER_OK || msg[0] == '\0', file, line, "last_error empty after success",
             "%s: medinfer_last_error() is \"%s\" after a successful call", what, msg);
  return got == MEDINFER_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Small utilities                                                                        */
/* ------------------------------------------------------------------------------------ */

static const char *g_root = ".";

/* g_root + "/" + rel, in a static ring of buffers (enough for a few at once). */
static const char *path_of(const char *rel) {
  static char ring[8][4096];
  static int next;
  char *buf = ring[next++ % 8];
  snprintf(buf, sizeof ring[0], "%s/%s", g_root, rel);
  return buf;
}

/* Reads a whole file into a malloc'ed buffer; NULL if it cannot be read. */
static unsigned char *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  unsigned char *buf = malloc(cap);
  while (buf) {
    if (len == cap) {
      unsigned char *bigger = realloc(buf, cap * 2);
      if (!bigger) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) break;
  }
  fclose(f);
  *size = len;
  return buf;
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* splitmix64: a small deterministic generator for rows, garbage and mutations. */
static uint64_t next_u64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double next_unit(uint64_t *state) { return (double)(next_u64(state) >> 11) / 9007199254740992.0; }

/* rows x features of plausible values (~5% NaN, some 0/1 flags, some large numbers). */
static float *make_rows(size_t rows, size_t features, uint64_t seed) {
  float *x = malloc(rows * features * sizeof *x);
  if (!x) return NULL;
  uint64_t s = seed;
  static const double scales[] = {1.0, 5.0, 30.0, 100.0, 1000.0, 86400.0};
  for (size_t r = 0; r < rows; r++) {
    for (size_t j = 0; j < features; j++) {
      double u = next_unit(&s);
      float v;
      if (u < 0.05) v = NAN;
      else if (u < 0.30) v = (float)(next_u64(&s) % 5);
      else v = (float)((next_unit(&s) * 1.2 - 0.1) * scales[j % 6]);
      x[r * features + j] = v;
    }
  }
  return x;
}

static int doubles_identical(const double *a, const double *b, size_t n) {
  return memcmp(a, b, n * sizeof *a) == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Models used by the tests                                                               */
/* ------------------------------------------------------------------------------------ */

typedef struct {
  const char *rel_path;  /* relative to the repo root */
  int kind;              /* MEDINFER_MODEL_* */
  size_t features;
  size_t classes;
  size_t outputs_transformed, outputs_raw;
  int binary_sigmoid;    /* transformed = 1 / (1 + exp(-raw)) */
  const char *csv;       /* rows whose header names the features, or NULL */
} model_spec;

static const model_spec k_models[] = {
    {"Tests/Fixtures/valid/xgb_tiny.json", MEDINFER_MODEL_XGBOOST, 3, 2, 1, 1, 1, NULL},
    {"Tests/Fixtures/valid/lgbm_tiny.txt", MEDINFER_MODEL_LIGHTGBM, 3, 2, 1, 1, 1, NULL},
    {"Tests/Fixtures/valid/forest_tiny.json", MEDINFER_MODEL_SKLEARN_FOREST, 3, 2, 2, 2, 0, NULL},
    {"examples/models/noshow_xgb.json", MEDINFER_MODEL_XGBOOST, 23, 2, 1, 1, 1, "examples/models/sample_rows.csv"},
    {"examples/models/noshow_lgbm.txt", MEDINFER_MODEL_LIGHTGBM, 23, 2, 1, 1, 1, "examples/models/sample_rows.csv"},
    {"examples/models/breast_rf.json", MEDINFER_MODEL_SKLEARN_FOREST, 11, 2, 2, 2, 0, "examples/models/breast_sample.csv"},
};
#define N_MODELS (sizeof k_models / sizeof k_models[0])

static medinfer_model *load_or_fail(const char *rel) {
  medinfer_model *m = NULL;
  int s = medinfer_model_load(path_of(rel), &m);
  CHECK(s == MEDINFER_OK && m != NULL, "loading %s: %s: %s", rel, medinfer_status_name(s), last_error());
  return s == MEDINFER_OK ? m : NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Library-wide functions                                                                 */
/* ------------------------------------------------------------------------------------ */

static void test_versions_and_status_names(void) {
  CHECK(medinfer_abi_version() == MEDINFER_ABI_VERSION, "library ABI %d, header %d", medinfer_abi_version(),
        MEDINFER_ABI_VERSION);
  const char *v = medinfer_version();
  int a, b, c;
  CHECK(v && sscanf(v, "%d.%d.%d", &a, &b, &c) == 3, "medinfer_version() = \"%s\"", v ? v : "(NULL)");

  static const char *names[] = {"MEDINFER_OK", "MEDINFER_ERR_INVALID_ARGUMENT", "MEDINFER_ERR_IO",
                                "MEDINFER_ERR_PARSE", "MEDINFER_ERR_UNSUPPORTED", "MEDINFER_ERR_SHAPE_MISMATCH",
                                "MEDINFER_ERR_BUFFER_TOO_SMALL", "MEDINFER_ERR_OUT_OF_MEMORY",
                                "MEDINFER_ERR_INTERNAL"};
  static const int codes[] = {MEDINFER_OK, MEDINFER_ERR_INVALID_ARGUMENT, MEDINFER_ERR_IO, MEDINFER_ERR_PARSE,
                              MEDINFER_ERR_UNSUPPORTED, MEDINFER_ERR_SHAPE_MISMATCH,
                              MEDINFER_ERR_BUFFER_TOO_SMALL, MEDINFER_ERR_OUT_OF_MEMORY, MEDINFER_ERR_INTERNAL};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    const char *n = medinfer_status_name(codes[i]);
    CHECK(n && strcmp(n, names[i]) == 0, "status %d: name \"%s\", expected \"%s\"", codes[i], n ? n : "(NULL)",
          names[i]);
  }
  static const int unknown[] = {-1, 9, 100, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *n = medinfer_status_name(unknown[i]);
    CHECK(n && strcmp(n, "MEDINFER_UNKNOWN_STATUS") == 0, "status %d: name \"%s\"", unknown[i],
          n ? n : "(NULL)");
  }
}

static void test_last_error_lifecycle(void) {
  /* Fresh thread (main, before any failing call): "". */
  CHECK(strcmp(last_error(), "") == 0, "initial last_error is \"%s\"", last_error());
  medinfer_model *m = NULL;
  int s = medinfer_model_load(path_of("does/not/exist.json"), &m);
  CHECK_ERROR("load of a missing file", s, MEDINFER_ERR_IO, "does/not/exist.json");
  size_t n = 0;
  medinfer_model *good = load_or_fail(k_models[0].rel_path);
  CHECK(strcmp(last_error(), "") == 0, "last_error after a successful load is \"%s\"", last_error());
  if (!good) return;
  /* Failure then success on another function: the success clears the message. */
  s = medinfer_model_feature_count(good, NULL);
  CHECK_ERROR("feature_count(out NULL)", s, MEDINFER_ERR_INVALID_ARGUMENT, "out");
  s = medinfer_model_feature_count(good, &n);
  CHECK_OK("feature_count after a failure", s);
  /* Failure then a successful predict. */
  float row[3] = {NAN, NAN, NAN};
  double out[4];
  s = medinfer_predict(good, row, 0, 3, NULL, out, 4);
  CHECK_ERROR("predict rows=0", s, MEDINFER_ERR_INVALID_ARGUMENT, "rows");
  s = medinfer_predict(good, row, 1, 3, NULL, out, 4);
  CHECK_OK("predict after a failure", s);
  medinfer_model_free(good);
}

/* ------------------------------------------------------------------------------------ */
/* NULL pointers, for every pointer argument of every function                            */
/* ------------------------------------------------------------------------------------ */

static void test_null_pointers(void) {
  const char *rel = k_models[0].rel_path;
  size_t size = 0;
  unsigned char *bytes = read_file(path_of(rel), &size);
  CHECK(bytes != NULL, "cannot read %s", rel);
  if (!bytes) return;
  static int dummy;
  medinfer_model *m = (medinfer_model *)&dummy;  /* must be reset to NULL on failure */

  CHECK_ERROR("load(path NULL)", medinfer_model_load(NULL, &m), MEDINFER_ERR_INVALID_ARGUMENT, "path");
  CHECK(m == NULL, "load(path NULL) left *out_model = %p", (void *)m);
  CHECK_ERROR("load(out_model NULL)", medinfer_model_load(path_of(rel), NULL), MEDINFER_ERR_INVALID_ARGUMENT,
              "out_model");
  CHECK_ERROR("load(NULL, NULL)", medinfer_model_load(NULL, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "null");

  m = (medinfer_model *)&dummy;
  CHECK_ERROR("load_from_memory(data NULL)", medinfer_model_load_from_memory(NULL, size, &m),
              MEDINFER_ERR_INVALID_ARGUMENT, "data");
  CHECK(m == NULL, "load_from_memory(data NULL) left *out_model = %p", (void *)m);
  m = (medinfer_model *)&dummy;
  CHECK_ERROR("load_from_memory(size 0)", medinfer_model_load_from_memory(bytes, 0, &m),
              MEDINFER_ERR_INVALID_ARGUMENT, "size");
  CHECK(m == NULL, "load_from_memory(size 0) left *out_model = %p", (void *)m);
  CHECK_ERROR("load_from_memory(NULL, 0)", medinfer_model_load_from_memory(NULL, 0, &m),
              MEDINFER_ERR_INVALID_ARGUMENT, NULL);
  CHECK_ERROR("load_from_memory(out_model NULL)", medinfer_model_load_from_memory(bytes, size, NULL),
              MEDINFER_ERR_INVALID_ARGUMENT, "out_model");
  {
    int s = medinfer_model_load_from_memory(bytes, SIZE_MAX, &m);
    CHECK(s == MEDINFER_ERR_INVALID_ARGUMENT || s == MEDINFER_ERR_OUT_OF_MEMORY,
          "load_from_memory(size SIZE_MAX): %s: %s", medinfer_status_name(s), last_error());
    CHECK(contains_nocase(last_error(), "size") || contains_nocase(last_error(), "bytes"),
          "load_from_memory(size SIZE_MAX) message \"%s\"", last_error());
  }
  free(bytes);

  medinfer_model *model = load_or_fail(rel);
  if (!model) return;
  int kind;
  size_t count;
  const char *str;

  CHECK_ERROR("kind(model NULL)", medinfer_model_kind(NULL, &kind), MEDINFER_ERR_INVALID_ARGUMENT, "model");
  CHECK_ERROR("kind(out NULL)", medinfer_model_kind(model, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "out");
  CHECK_ERROR("feature_count(model NULL)", medinfer_model_feature_count(NULL, &count),
              MEDINFER_ERR_INVALID_ARGUMENT, "model");
  CHECK_ERROR("feature_count(out NULL)", medinfer_model_feature_count(model, NULL),
              MEDINFER_ERR_INVALID_ARGUMENT, "out");
  CHECK_ERROR("feature_name(model NULL)", medinfer_model_feature_name(NULL, 0, &str),
              MEDINFER_ERR_INVALID_ARGUMENT, "model");
  CHECK_ERROR("feature_name(out NULL)", medinfer_model_feature_name(model, 0, NULL),
              MEDINFER_ERR_INVALID_ARGUMENT, "out");
  CHECK_ERROR("feature_name(index 3 of 3)", medinfer_model_feature_name(model, 3, &str),
              MEDINFER_ERR_INVALID_ARGUMENT, "index");
  CHECK_ERROR("feature_name(index SIZE_MAX)", medinfer_model_feature_name(model, SIZE_MAX, &str),
              MEDINFER_ERR_INVALID_ARGUMENT, "index");
  CHECK_ERROR("class_count(model NULL)", medinfer_model_class_count(NULL, &count),
              MEDINFER_ERR_INVALID_ARGUMENT, "model");
  CHECK_ERROR("class_count(out NULL)", medinfer_model_class_count(model, NULL), MEDINFER_ERR_INVALID_ARGUMENT,
              "out");
  CHECK_ERROR("objective(model NULL)", medinfer_model_objective(NULL, &str), MEDINFER_ERR_INVALID_ARGUMENT,
              "model");
  CHECK_ERROR("objective(out NULL)", medinfer_model_objective(model, NULL), MEDINFER_ERR_INVALID_ARGUMENT,
              "out");
  CHECK_ERROR("tree_count(model NULL)", medinfer_model_tree_count(NULL, &count), MEDINFER_ERR_INVALID_ARGUMENT,
              "model");
  CHECK_ERROR("tree_count(out NULL)", medinfer_model_tree_count(model, NULL), MEDINFER_ERR_INVALID_ARGUMENT,
              "out");
  CHECK_ERROR("iteration_count(model NULL)", medinfer_model_iteration_count(NULL, &count),
              MEDINFER_ERR_INVALID_ARGUMENT, "model");
  CHECK_ERROR("iteration_count(out NULL)", medinfer_model_iteration_count(model, NULL),
              MEDINFER_ERR_INVALID_ARGUMENT, "out");
  CHECK_ERROR("default_iteration_limit(model NULL)", medinfer_model_default_iteration_limit(NULL, &count),
              MEDINFER_ERR_INVALID_ARGUMENT, "model");
  CHECK_ERROR("default_iteration_limit(out NULL)", medinfer_model_default_iteration_limit(model, NULL),
              MEDINFER_ERR_INVALID_ARGUMENT, "out");
  CHECK_ERROR("output_count(model NULL)", medinfer_model_output_count(NULL, MEDINFER_OUTPUT_RAW, &count),
              MEDINFER_ERR_INVALID_ARGUMENT, "model");
  CHECK_ERROR("output_count(out NULL)", medinfer_model_output_count(model, MEDINFER_OUTPUT_RAW, NULL),
              MEDINFER_ERR_INVALID_ARGUMENT, "out");
  CHECK_ERROR("output_count(output 2)", medinfer_model_output_count(model, 2, &count),
              MEDINFER_ERR_INVALID_ARGUMENT, "output");
  CHECK_ERROR("output_count(output -1)", medinfer_model_output_count(model, -1, &count),
              MEDINFER_ERR_INVALID_ARGUMENT, "output");

  float row[3] = {0.5f, NAN, 1.0f};
  double out[4] = {-7, -7, -7, -7};
  medinfer_predict_options opt;
  medinfer_predict_options_init(&opt);
  CHECK_ERROR("predict(model NULL)", medinfer_predict(NULL, row, 1, 3, &opt, out, 4),
              MEDINFER_ERR_INVALID_ARGUMENT, "model");
  CHECK_ERROR("predict(features NULL)", medinfer_predict(model, NULL, 1, 3, &opt, out, 4),
              MEDINFER_ERR_INVALID_ARGUMENT, "features");
  CHECK_ERROR("predict(out NULL)", medinfer_predict(model, row, 1, 3, &opt, NULL, 4),
              MEDINFER_ERR_INVALID_ARGUMENT, "out");
  CHECK(out[0] == -7 && out[1] == -7 && out[2] == -7 && out[3] == -7, "a failed predict wrote to out");
  CHECK_OK("predict(options NULL)", medinfer_predict(model, row, 1, 3, NULL, out, 4));

  medinfer_explain_options eopt;
  medinfer_explain_options_init(&eopt);
  double contrib[64];
  CHECK_ERROR("shap_values(model NULL)", medinfer_shap_values(NULL, row, 1, 3, &eopt, contrib, 64),
              MEDINFER_ERR_INVALID_ARGUMENT, "model");
  CHECK_ERROR("shap_values(features NULL)", medinfer_shap_values(model, NULL, 1, 3, &eopt, contrib, 64),
              MEDINFER_ERR_INVALID_ARGUMENT, "features");
  CHECK_ERROR("shap_values(out NULL)", medinfer_shap_values(model, row, 1, 3, &eopt, NULL, 64),
              MEDINFER_ERR_INVALID_ARGUMENT, "out");
  CHECK_OK("shap_values(options NULL)", medinfer_shap_values(model, row, 1, 3, NULL, contrib, 64));
  CHECK_ERROR("shap_interaction_values(model NULL)",
              medinfer_shap_interaction_values(NULL, row, 1, 3, &eopt, contrib, 64), MEDINFER_ERR_INVALID_ARGUMENT,
              "model");
  CHECK_ERROR("shap_interaction_values(features NULL)",
              medinfer_shap_interaction_values(model, NULL, 1, 3, &eopt, contrib, 64),
              MEDINFER_ERR_INVALID_ARGUMENT, "features");
  CHECK_ERROR("shap_interaction_values(out NULL)", medinfer_shap_interaction_values(model, row, 1, 3, &eopt, NULL, 64),
              MEDINFER_ERR_INVALID_ARGUMENT, "out");
  CHECK_OK("shap_interaction_values(options NULL)",
           medinfer_shap_interaction_values(model, row, 1, 3, NULL, contrib, 64));
  medinfer_explain_options_init(NULL); /* ignored, must not crash */
  CHECK(1, "medinfer_explain_options_init(NULL) returned");

  medinfer_predict_options_init(NULL); /* ignored, must not crash */
  CHECK(1, "medinfer_predict_options_init(NULL) returned");
  medinfer_model_free(NULL);           /* a no-op */
  CHECK(1, "medinfer_model_free(NULL) returned");
  medinfer_model_free(model);
}

/* ------------------------------------------------------------------------------------ */
/* Prediction argument errors                                                             */
/* ------------------------------------------------------------------------------------ */

#define GUARD 16
static const double SENTINEL = -123456.789;

/* A buffer of `n` doubles followed by GUARD sentinels, all set to SENTINEL. */
static double *guarded(size_t n) {
  double *b = malloc((n + GUARD) * sizeof *b);
  for (size_t i = 0; b && i < n + GUARD; i++) b[i] = SENTINEL;
  return b;
}
static size_t first_written(const double *b, size_t from, size_t to) {
  for (size_t i = from; i < to; i++)
    if (memcmp(&b[i], &SENTINEL, sizeof SENTINEL) != 0) return i;
  return (size_t)-1;
}

static void test_predict_errors(const model_spec *spec) {
  medinfer_model *m = NULL;
  if (medinfer_model_load(path_of(spec->rel_path), &m) != MEDINFER_OK) {
    CHECK(0, "cannot load %s: %s", spec->rel_path, last_error());
    return;
  }
  const char *name = spec->rel_path;
  char what[512], num[64];
  size_t F = 0, iterations = 0, per_row = 0, per_row_raw = 0;
  medinfer_model_feature_count(m, &F);
  medinfer_model_iteration_count(m, &iterations);
  medinfer_model_output_count(m, MEDINFER_OUTPUT_TRANSFORMED, &per_row);
  medinfer_model_output_count(m, MEDINFER_OUTPUT_RAW, &per_row_raw);
  const size_t rows = 37; /* a count that shows up recognisably in messages */
  float *x = make_rows(rows, F + 1, 99); /* one spare column for the wrong-count calls */
  size_t need = rows * per_row;
  double *out = guarded(need);
  medinfer_predict_options opt;
  if (!x || !out) {
    CHECK(0, "out of memory in the test");
    goto done;
  }

  /* Zero rows. */
  snprintf(what, sizeof what, "%s: predict(rows 0)", name);
  CHECK_ERROR(what, medinfer_predict(m, x, 0, F, NULL, out, need), MEDINFER_ERR_INVALID_ARGUMENT, "rows");

  /* Wrong feature counts: the message gives the model's count. */
  snprintf(num, sizeof num, "%zu", F);
  size_t wrong[] = {F - 1, F + 1, 0, SIZE_MAX};
  for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
    snprintf(what, sizeof what, "%s: predict(feature_count %zu, model has %zu)", name, wrong[i], F);
    CHECK_ERROR(what, medinfer_predict(m, x, rows, wrong[i], NULL, out, need), MEDINFER_ERR_SHAPE_MISMATCH,
                "feature_count");
    CHECK(contains_nocase(last_error(), num), "%s: message \"%s\" does not give the model's %zu features", what,
          last_error(), F);
  }

  /* Output buffer too small: nothing written, not even inside the buffer; message gives
   * the needed length. */
  snprintf(num, sizeof num, "%zu", need);
  size_t short_lengths[] = {need - 1, need / 2, 1, 0};
  for (size_t i = 0; i < sizeof short_lengths / sizeof short_lengths[0]; i++) {
    snprintf(what, sizeof what, "%s: predict(out_length %zu, %zu needed)", name, short_lengths[i], need);
    CHECK_ERROR(what, medinfer_predict(m, x, rows, F, NULL, out, short_lengths[i]), MEDINFER_ERR_BUFFER_TOO_SMALL,
                num);
    size_t w = first_written(out, 0, need + GUARD);
    CHECK(w == (size_t)-1, "%s: element %zu of out was written", what, w);
  }
  /* Raw output of multi-column models needs its own size. */
  if (per_row_raw != per_row) {
    medinfer_predict_options_init(&opt);
    opt.output = MEDINFER_OUTPUT_RAW;
    double *raw = guarded(rows * per_row_raw);
    snprintf(what, sizeof what, "%s: predict(raw, out_length %zu)", name, rows * per_row_raw - 1);
    CHECK_ERROR(what, medinfer_predict(m, x, rows, F, &opt, raw, rows * per_row_raw - 1),
                MEDINFER_ERR_BUFFER_TOO_SMALL, NULL);
    free(raw);
  }

  /* Exactly the needed length: success, and the guard region after it is untouched. */
  snprintf(what, sizeof what, "%s: predict(out_length exactly %zu)", name, need);
  CHECK_OK(what, medinfer_predict(m, x, rows, F, NULL, out, need));
  size_t w = first_written(out, need, need + GUARD);
  CHECK(w == (size_t)-1, "%s: wrote element %zu past out_length", what, w);
  /* A capacity beyond the result (even SIZE_MAX) is fine: out_length is a size_t. */
  double *copy = guarded(need);
  snprintf(what, sizeof what, "%s: predict(out_length SIZE_MAX)", name);
  if (CHECK_OK(what, medinfer_predict(m, x, rows, F, NULL, copy, SIZE_MAX)))
    CHECK(doubles_identical(out, copy, need), "%s: results differ from out_length = exact", what);
  CHECK(first_written(copy, need, need + GUARD) == (size_t)-1, "%s: wrote past the result", what);
  free(copy);

  /* Bad options. */
  medinfer_predict_options_init(&opt);
  CHECK(opt.struct_size == sizeof opt && opt.output == MEDINFER_OUTPUT_TRANSFORMED && opt.reserved == 0 &&
            opt.iteration_limit == 0,
        "medinfer_predict_options_init: struct_size %zu output %d reserved %d limit %llu", opt.struct_size,
        (int)opt.output, (int)opt.reserved, (unsigned long long)opt.iteration_limit);
  size_t bad_sizes[] = {0, 1, sizeof opt - 1, offsetof(medinfer_predict_options, iteration_limit)};
  for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
    medinfer_predict_options_init(&opt);
    opt.struct_size = bad_sizes[i];
    snprintf(what, sizeof what, "%s: predict(options.struct_size %zu)", name, bad_sizes[i]);
    CHECK_ERROR(what, medinfer_predict(m, x, rows, F, &opt, out, need), MEDINFER_ERR_INVALID_ARGUMENT,
                "struct_size");
  }
  int32_t bad_outputs[] = {2, -1, INT32_MAX};
  for (size_t i = 0; i < sizeof bad_outputs / sizeof bad_outputs[0]; i++) {
    medinfer_predict_options_init(&opt);
    opt.output = bad_outputs[i];
    snprintf(what, sizeof what, "%s: predict(options.output %d)", name, (int)bad_outputs[i]);
    CHECK_ERROR(what, medinfer_predict(m, x, rows, F, &opt, out, need), MEDINFER_ERR_INVALID_ARGUMENT, "output");
  }
  int32_t bad_reserved[] = {1, -1};
  for (size_t i = 0; i < sizeof bad_reserved / sizeof bad_reserved[0]; i++) {
    medinfer_predict_options_init(&opt);
    opt.reserved = bad_reserved[i];
    snprintf(what, sizeof what, "%s: predict(options.reserved %d)", name, (int)bad_reserved[i]);
    CHECK_ERROR(what, medinfer_predict(m, x, rows, F, &opt, out, need), MEDINFER_ERR_INVALID_ARGUMENT,
                "reserved");
  }
  uint64_t bad_limits[] = {(uint64_t)iterations + 1, (uint64_t)iterations + 1000, UINT64_MAX};
  snprintf(num, sizeof num, "%zu", iterations);
  for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++) {
    medinfer_predict_options_init(&opt);
    opt.iteration_limit = bad_limits[i];
    snprintf(what, sizeof what, "%s: predict(iteration_limit %llu of %zu)", name,
             (unsigned long long)bad_limits[i], iterations);
    CHECK_ERROR(what, medinfer_predict(m, x, rows, F, &opt, out, need), MEDINFER_ERR_INVALID_ARGUMENT,
                "iteration_limit");
    CHECK(contains_nocase(last_error(), num), "%s: message \"%s\" does not give the model's %zu iterations", what,
          last_error(), iterations);
  }
  CHECK(first_written(out, need, need + GUARD) == (size_t)-1, "%s: a failed call wrote past out", name);

  /* A newer caller's larger options struct is accepted; its known fields are honoured. */
  {
    struct {
      medinfer_predict_options base;
      uint64_t future_fields[4];
    } big;
    memset(&big, 0, sizeof big);
    medinfer_predict_options_init(&big.base);
    big.base.struct_size = sizeof big;
    double *a = guarded(need), *b = guarded(need);
    snprintf(what, sizeof what, "%s: predict(struct_size %zu > sizeof)", name, sizeof big);
    CHECK_OK(what, medinfer_predict(m, x, rows, F, &big.base, a, need));
    CHECK_OK(what, medinfer_predict(m, x, rows, F, NULL, b, need));
    CHECK(doubles_identical(a, b, need), "%s: results differ from the defaults", what);
    free(a);
    free(b);
  }

  /* rows * features overflowing size_t (or the address space) is OUT_OF_MEMORY, found
   * before anything is read from `features` (which here holds just 37 rows). */
  {
    size_t huge_rows[] = {SIZE_MAX / F + 1, SIZE_MAX / (F * sizeof(float)) + 1, SIZE_MAX / 2 + 1, SIZE_MAX};
    for (size_t i = 0; i < sizeof huge_rows / sizeof huge_rows[0]; i++) {
      snprintf(what, sizeof what, "%s: predict(rows %zu x %zu features)", name, huge_rows[i], F);
      CHECK_ERROR(what, medinfer_predict(m, x, huge_rows[i], F, NULL, out, SIZE_MAX), MEDINFER_ERR_OUT_OF_MEMORY,
                  "rows");
    }
    CHECK(first_written(out, need, need + GUARD) == (size_t)-1, "%s: an overflow call wrote past out", name);
  }

  /* NaN, +Inf and -Inf are valid inputs. */
  {
    float *special = malloc(3 * F * sizeof *special);
    for (size_t j = 0; j < F; j++) {
      special[j] = NAN;
      special[F + j] = INFINITY;
      special[2 * F + j] = -INFINITY;
    }
    double *o = guarded(3 * per_row);
    snprintf(what, sizeof what, "%s: predict(NaN / +Inf / -Inf rows)", name);
    CHECK_OK(what, medinfer_predict(m, special, 3, F, NULL, o, 3 * per_row));
    for (size_t i = 0; i < 3 * per_row; i++) CHECK(isfinite(o[i]), "%s: output %zu is %g", what, i, o[i]);
    CHECK(first_written(o, 3 * per_row, 3 * per_row + GUARD) == (size_t)-1, "%s: wrote past out", what);
    free(o);
    free(special);
  }

done:
  free(x);
  free(out);
  medinfer_model_free(m);
}

/* ------------------------------------------------------------------------------------ */
/* SHAP argument errors                                                                   */
/* ------------------------------------------------------------------------------------ */

typedef int (*explain_fn)(const medinfer_model *, const float *, size_t, size_t, const medinfer_explain_options *,
                          double *, size_t);

/* The same argument checks as for medinfer_predict, for one of the two SHAP functions.
 * `interactions` selects the output layout: rows x (M+1) [x (M+1)] x K. */
static void test_explain_errors(const model_spec *spec, explain_fn fn, const char *fname, int interactions) {
  medinfer_model *m = NULL;
  if (medinfer_model_load(path_of(spec->rel_path), &m) != MEDINFER_OK) {
    CHECK(0, "cannot load %s: %s", spec->rel_path, last_error());
    return;
  }
  char what[512], num[64];
  size_t F = 0, K = 0, iterations = 0;
  medinfer_model_feature_count(m, &F);
  medinfer_model_output_count(m, MEDINFER_OUTPUT_RAW, &K);
  medinfer_model_iteration_count(m, &iterations);
  const size_t rows = 13;
  size_t per_row = (F + 1) * (interactions ? F + 1 : 1) * K;
  size_t need = rows * per_row;
  float *x = make_rows(rows, F + 1, 5);
  double *out = guarded(need);
  medinfer_explain_options opt;
#define WHAT(...) snprintf(what, sizeof what, __VA_ARGS__)

  WHAT("%s: %s(rows 0)", spec->rel_path, fname);
  CHECK_ERROR(what, fn(m, x, 0, F, NULL, out, need), MEDINFER_ERR_INVALID_ARGUMENT, "rows");
  WHAT("%s: %s(feature_count %zu)", spec->rel_path, fname, F + 1);
  CHECK_ERROR(what, fn(m, x, rows, F + 1, NULL, out, need), MEDINFER_ERR_SHAPE_MISMATCH, "feature_count");
  WHAT("%s: %s(feature_count %zu)", spec->rel_path, fname, F - 1);
  CHECK_ERROR(what, fn(m, x, rows, F - 1, NULL, out, need), MEDINFER_ERR_SHAPE_MISMATCH, "feature_count");

  snprintf(num, sizeof num, "%zu", need);
  size_t short_lengths[] = {need - 1, rows * (F + 1) * K - 1, 0};
  for (size_t i = 0; i < sizeof short_lengths / sizeof short_lengths[0]; i++) {
    WHAT("%s: %s(out_length %zu, %zu needed)", spec->rel_path, fname, short_lengths[i], need);
    CHECK_ERROR(what, fn(m, x, rows, F, NULL, out, short_lengths[i]), MEDINFER_ERR_BUFFER_TOO_SMALL, num);
    size_t w = first_written(out, 0, need + GUARD);
    CHECK(w == (size_t)-1, "%s: element %zu of out was written", what, w);
  }
  WHAT("%s: %s(out_length exactly %zu)", spec->rel_path, fname, need);
  CHECK_OK(what, fn(m, x, rows, F, NULL, out, need));
  CHECK(first_written(out, need, need + GUARD) == (size_t)-1, "%s: wrote past out_length", what);
  double *copy = guarded(need);
  WHAT("%s: %s(out_length SIZE_MAX)", spec->rel_path, fname);
  if (CHECK_OK(what, fn(m, x, rows, F, NULL, copy, SIZE_MAX)))
    CHECK(doubles_identical(out, copy, need), "%s: results differ from out_length = exact", what);
  CHECK(first_written(copy, need, need + GUARD) == (size_t)-1, "%s: wrote past the result", what);

  medinfer_explain_options_init(&opt);
  CHECK(opt.struct_size == sizeof opt && opt.iteration_limit == 0,
        "medinfer_explain_options_init: struct_size %zu, iteration_limit %llu", opt.struct_size,
        (unsigned long long)opt.iteration_limit);
  size_t bad_sizes[] = {0, 1, sizeof opt - 1};
  for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
    medinfer_explain_options_init(&opt);
    opt.struct_size = bad_sizes[i];
    WHAT("%s: %s(options.struct_size %zu)", spec->rel_path, fname, bad_sizes[i]);
    CHECK_ERROR(what, fn(m, x, rows, F, &opt, out, need), MEDINFER_ERR_INVALID_ARGUMENT, "struct_size");
  }
  uint64_t bad_limits[] = {(uint64_t)iterations + 1, UINT64_MAX};
  for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++) {
    medinfer_explain_options_init(&opt);
    opt.iteration_limit = bad_limits[i];
    WHAT("%s: %s(iteration_limit %llu of %zu)", spec->rel_path, fname, (unsigned long long)bad_limits[i],
         iterations);
    CHECK_ERROR(what, fn(m, x, rows, F, &opt, out, need), MEDINFER_ERR_INVALID_ARGUMENT, "iteration_limit");
  }
  {
    struct {
      medinfer_explain_options base;
      uint64_t future_fields[3];
    } big;
    memset(&big, 0, sizeof big);
    medinfer_explain_options_init(&big.base);
    big.base.struct_size = sizeof big;
    WHAT("%s: %s(struct_size %zu > sizeof)", spec->rel_path, fname, sizeof big);
    if (CHECK_OK(what, fn(m, x, rows, F, &big.base, copy, need)))
      CHECK(doubles_identical(out, copy, need), "%s: results differ from the defaults", what);
  }
  /* rows * features overflowing, and (interactions) an output size that overflows
   * size_t although the input size does not. */
  size_t huge_rows[] = {SIZE_MAX / F + 1, SIZE_MAX / 2 + 1, SIZE_MAX};
  for (size_t i = 0; i < sizeof huge_rows / sizeof huge_rows[0]; i++) {
    WHAT("%s: %s(rows %zu)", spec->rel_path, fname, huge_rows[i]);
    CHECK_ERROR(what, fn(m, x, huge_rows[i], F, NULL, out, SIZE_MAX), MEDINFER_ERR_OUT_OF_MEMORY, "rows");
  }
  if (interactions && per_row > F * sizeof(float)) {
    size_t r = SIZE_MAX / per_row + 1; /* r * F * 4 fits, r * per_row does not */
    WHAT("%s: %s(rows %zu: %zu x %zu outputs overflow size_t)", spec->rel_path, fname, r, r, per_row);
    CHECK_ERROR(what, fn(m, x, r, F, NULL, out, SIZE_MAX), MEDINFER_ERR_OUT_OF_MEMORY, "overflow");
  }
  CHECK(first_written(out, need, need + GUARD) == (size_t)-1, "%s: %s: a failed call wrote past out",
        spec->rel_path, fname);
#undef WHAT
  free(copy);
  free(x);
  free(out);
  medinfer_model_free(m);
}

/* Models without node covers load and predict, but SHAP needs covers: UNSUPPORTED,
 * with a message that says so, and nothing written. */
static void test_explain_without_covers(void) {
  static const char *files[] = {"Tests/Fixtures/valid/xgb_tiny_no_covers.json",
                                "Tests/Fixtures/valid/lgbm_tiny_no_covers.txt",
                                "Tests/Fixtures/valid/forest_tiny_no_covers.json"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    medinfer_model *m = load_or_fail(files[i]);
    if (!m) continue;
    float row[3] = {0.2f, NAN, 1.0f};
    double out[64];
    char what[512];
    snprintf(what, sizeof what, "%s: predict", files[i]);
    CHECK_OK(what, medinfer_predict(m, row, 1, 3, NULL, out, 64));
    double *g = guarded(64);
    for (int rep = 0; rep < 2; rep++) { /* the failure is remembered; ask twice */
      snprintf(what, sizeof what, "%s: shap_values (call %d)", files[i], rep + 1);
      CHECK_ERROR(what, medinfer_shap_values(m, row, 1, 3, NULL, g, 64), MEDINFER_ERR_UNSUPPORTED, "cover");
      snprintf(what, sizeof what, "%s: shap_interaction_values (call %d)", files[i], rep + 1);
      CHECK_ERROR(what, medinfer_shap_interaction_values(m, row, 1, 3, NULL, g, 64), MEDINFER_ERR_UNSUPPORTED,
                  "cover");
    }
    CHECK(first_written(g, 0, 64 + GUARD) == (size_t)-1, "%s: a refused SHAP call wrote to out", files[i]);
    free(g);
    medinfer_model_free(m);
  }
}

/* ------------------------------------------------------------------------------------ */
/* File errors                                                                            */
/* ------------------------------------------------------------------------------------ */

static void test_file_errors(const char *tmpdir) {
  medinfer_model *m = NULL;
  char path[4096];

  snprintf(path, sizeof path, "%s/no-such-model.json", tmpdir);
  CHECK_ERROR("load(missing file)", medinfer_model_load(path, &m), MEDINFER_ERR_IO, "no-such-model.json");
  CHECK(m == NULL, "load(missing file) set *out_model");

  CHECK_ERROR("load(a directory)", medinfer_model_load(tmpdir, &m), MEDINFER_ERR_IO, tmpdir);
  CHECK(m == NULL, "load(directory) set *out_model");

  snprintf(path, sizeof path, "%s/empty.json", tmpdir);
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL, "cannot create %s", path);
  if (f) fclose(f);
  CHECK_ERROR("load(empty file)", medinfer_model_load(path, &m), MEDINFER_ERR_IO, "empty");
  CHECK(contains_nocase(last_error(), "empty.json"), "empty-file message \"%s\" lacks the path", last_error());

  CHECK_ERROR("load(/dev/null)", medinfer_model_load("/dev/null", &m), MEDINFER_ERR_IO, "/dev/null");
  CHECK_ERROR("load(\"\")", medinfer_model_load("", &m), MEDINFER_ERR_IO, NULL);

  /* A path far beyond PATH_MAX. */
  size_t n = 3 * 4096;
  char *longpath = malloc(n + 1);
  memset(longpath, 'a', n);
  longpath[0] = '/';
  longpath[n] = '\0';
  CHECK_ERROR("load(path of 12 kB)", medinfer_model_load(longpath, &m), MEDINFER_ERR_IO, NULL);
  free(longpath);

  static const char blank[] = "  \n\t\n";
  CHECK_ERROR("load_from_memory(white space)", medinfer_model_load_from_memory(blank, sizeof blank - 1, &m),
              MEDINFER_ERR_PARSE, "white space");
}

/* A valid model behind a UTF-8 byte order mark: the loader skips a BOM when it detects
 * the format, so the parser must not then see it. */
static void test_utf8_bom(void) {
  for (size_t i = 0; i < 3; i++) {
    size_t size;
    unsigned char *bytes = read_file(path_of(k_models[i].rel_path), &size);
    if (!bytes) continue;
    unsigned char *with_bom = malloc(size + 3);
    memcpy(with_bom, "\xEF\xBB\xBF", 3);
    memcpy(with_bom + 3, bytes, size);
    medinfer_model *m = NULL;
    char what[512];
    snprintf(what, sizeof what, "load_from_memory(UTF-8 BOM + %s)", k_models[i].rel_path);
    if (CHECK_OK(what, medinfer_model_load_from_memory(with_bom, size + 3, &m))) medinfer_model_free(m);
    free(with_bom);
    free(bytes);
  }
}

/* ------------------------------------------------------------------------------------ */
/* Isolation: run a piece of the test in a forked child                                   */
/* ------------------------------------------------------------------------------------ */

static long env_long(const char *name, long fallback) {
  const char *v = getenv(name);
  if (!v || !*v) return fallback;
  char *end;
  long x = strtol(v, &end, 10);
  return *end ? fallback : x;
}

/* What a child reports back through its pipe. */
typedef struct {
  int passed, failed;
  int status[2];          /* file, memory (malformed-file children) */
  int model_set[2];       /* *out_model non-NULL after the call */
  long rss_growth_kb;     /* peak RSS growth during the call ("rss-load" children) */
  char message[2][600];
} child_report;

static const char *g_self; /* argv[0], to run this program again as a child */

/* Runs `test_capi --child FD KIND ARG ROOT` with a memory limit and a timeout in seconds
 * (0: $MEDINFER_TEST_CHILD_TIMEOUT or 120; see child_main). Returns 1 and fills *report when the child finished cleanly, 0 (after
 * recording a failure that names `what`) when it crashed, hung, or exited with an error
 * (an abort in the library, an ASan or valgrind finding, a leak). */
static int run_isolated(const char *what, const char *kind, const char *arg, unsigned timeout, child_report *report) {
  int fds[2];
  if (pipe(fds) != 0) {
    CHECK(0, "%s: pipe: %s", what, strerror(errno));
    return 0;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    CHECK(0, "%s: fork: %s", what, strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return 0;
  }
  if (pid == 0) {
    close(fds[0]);
    long limit_mb = env_long("MEDINFER_TEST_MEMORY_LIMIT_MB", 4096);
    if (limit_mb > 0) {
      struct rlimit rl;
      rl.rlim_cur = rl.rlim_max = (rlim_t)limit_mb << 20;
      setrlimit(RLIMIT_AS, &rl);
    }
    alarm(timeout ? timeout : (unsigned)env_long("MEDINFER_TEST_CHILD_TIMEOUT", 120)); /* survives exec */
    char fd[16];
    snprintf(fd, sizeof fd, "%d", fds[1]);
    char *args[] = {(char *)g_self, "--child", fd, (char *)kind, (char *)arg, (char *)g_root, NULL};
    execv(g_self, args);
    _exit(4);
  }
  close(fds[1]);
  memset(report, 0, sizeof *report);
  size_t got = 0;
  while (got < sizeof *report) {
    ssize_t n = read(fds[0], (char *)report + got, sizeof *report - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fds[0]);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(wstatus)) {
    int sig = WTERMSIG(wstatus);
    CHECK(0, "%s: the process died with signal %d (%s)%s", what, sig, strsignal(sig),
          sig == SIGALRM ? ": it hung (timeout)" : ": the library crashed");
    return 0;
  }
  if (WEXITSTATUS(wstatus) == 4 && got != sizeof *report) {
    CHECK(0, "%s: cannot run %s as a child process", what, g_self);
    return 0;
  }
  if (got == sizeof *report) {
    g_passed += report->passed;
    g_failed += report->failed;
  }
  if (WEXITSTATUS(wstatus) != 0 || got != sizeof *report) {
    CHECK(0, "%s: the process exited with status %d %s (an abort inside the library, or an ASan, LeakSanitizer "
             "or valgrind error: see its output above)",
          what, WEXITSTATUS(wstatus), got == sizeof *report ? "after reporting" : "before reporting");
    return 0;
  }
  return 1;
}

/* A FIFO (named pipe) as the model path: not a regular file, so IO; opening it must not
 * block the host forever waiting for a writer. Run in a child with a 10 s timeout. */
static void test_fifo_path(const char *tmpdir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/model.fifo", tmpdir);
  remove(path);
  if (mkfifo(path, 0600) != 0) {
    CHECK(0, "mkfifo %s: %s", path, strerror(errno));
    return;
  }
  child_report r;
  if (run_isolated("load(a FIFO as the model path)", "loadfile", path, 10, &r)) {
    CHECK(r.status[0] == MEDINFER_ERR_IO, "load(FIFO): expected MEDINFER_ERR_IO, got %s (\"%s\")",
          medinfer_status_name(r.status[0]), r.message[0]);
    CHECK(contains_nocase(r.message[0], "model.fifo"), "load(FIFO): message \"%s\" lacks the path", r.message[0]);
  }
  remove(path);
}

/* LightGBM text with Windows line ends (CRLF, e.g. after a git checkout with autocrlf):
 * the reader strips a trailing \r from each line, so the model must load and predict
 * exactly like the LF original. */
static void test_crlf_lightgbm(void) {
  size_t size;
  unsigned char *lf = read_file(path_of(k_models[1].rel_path), &size);
  CHECK(lf != NULL, "cannot read %s", k_models[1].rel_path);
  if (!lf) return;
  unsigned char *crlf = malloc(2 * size);
  size_t n = 0;
  for (size_t i = 0; i < size; i++) {
    if (lf[i] == '\n') crlf[n++] = '\r';
    crlf[n++] = lf[i];
  }
  medinfer_model *a = NULL, *b = NULL;
  CHECK_OK("load_from_memory(LightGBM, LF)", medinfer_model_load_from_memory(lf, size, &a));
  if (CHECK_OK("load_from_memory(LightGBM, CRLF line ends)", medinfer_model_load_from_memory(crlf, n, &b)) && a) {
    float *x = make_rows(64, 3, 77);
    double pa[64], pb[64];
    int sa = medinfer_predict(a, x, 64, 3, NULL, pa, 64), sb = medinfer_predict(b, x, 64, 3, NULL, pb, 64);
    CHECK(sa == MEDINFER_OK && sb == MEDINFER_OK && doubles_identical(pa, pb, 64),
          "LightGBM CRLF: predictions differ from the LF model");
    free(x);
  }
  medinfer_model_free(a);
  medinfer_model_free(b);
  free(crlf);
  free(lf);
}

/* ------------------------------------------------------------------------------------ */
/* Malformed model files                                                                  */
/* ------------------------------------------------------------------------------------ */

typedef struct {
  char file[256];
  int statuses[2];  /* accepted statuses; the second may be -1 */
  char needle[128];
  int seen;
} fixture_row;

static int status_from_word(const char *w) {
  static const struct {
    const char *word;
    int code;
  } table[] = {{"PARSE", MEDINFER_ERR_PARSE},
               {"UNSUPPORTED", MEDINFER_ERR_UNSUPPORTED},
               {"OUT_OF_MEMORY", MEDINFER_ERR_OUT_OF_MEMORY},
               {"IO", MEDINFER_ERR_IO},
               {"INVALID_ARGUMENT", MEDINFER_ERR_INVALID_ARGUMENT}};
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(w, table[i].word) == 0) return table[i].code;
  return -1;
}

/* Copies the text between the first pair of backticks in `cell` (or the trimmed cell). */
static void cell_text(const char *cell, size_t len, char *out, size_t cap) {
  const char *a = memchr(cell, '`', len);
  const char *b = a ? memchr(a + 1, '`', (size_t)(cell + len - a - 1)) : NULL;
  if (a && b) {
    cell = a + 1;
    len = (size_t)(b - a - 1);
  } else {
    while (len && isspace((unsigned char)*cell)) cell++, len--;
    while (len && isspace((unsigned char)cell[len - 1])) len--;
  }
  if (len >= cap) len = cap - 1;
  memcpy(out, cell, len);
  out[len] = '\0';
}

/* Reads the "| `file` | STATUS [or STATUS] | `word` | ... |" rows of the README table. */
static fixture_row *read_fixture_table(const char *readme, size_t *count) {
  FILE *f = fopen(readme, "r");
  *count = 0;
  if (!f) return NULL;
  size_t cap = 64;
  fixture_row *rows = calloc(cap, sizeof *rows);
  char *line = NULL;
  size_t line_cap = 0;
  while (getline(&line, &line_cap, f) > 0) {
    if (strncmp(line, "| `", 3) != 0) continue;
    const char *cells[5];
    size_t lens[5], n = 0;
    const char *p = line + 1;
    while (n < 5) {
      const char *bar = strchr(p, '|');
      if (!bar) break;
      cells[n] = p;
      lens[n] = (size_t)(bar - p);
      n++;
      p = bar + 1;
    }
    if (n < 3) continue;
    if (*count == cap) {
      cap *= 2;
      rows = realloc(rows, cap * sizeof *rows);
    }
    fixture_row *r = &rows[(*count)++];
    memset(r, 0, sizeof *r);
    cell_text(cells[0], lens[0], r->file, sizeof r->file);
    char status[128];
    cell_text(cells[1], lens[1], status, sizeof status);
    char *or = strstr(status, " or ");
    r->statuses[1] = -1;
    if (or) {
      *or = '\0';
      r->statuses[1] = status_from_word(or + 4);
    }
    r->statuses[0] = status_from_word(status);
    cell_text(cells[2], lens[2], r->needle, sizeof r->needle);
  }
  free(line);
  fclose(f);
  return rows;
}

/* Child side: load one file from disk and from memory, report statuses and messages. */
static void load_both_ways(const char *path, child_report *r) {
  for (int how = 0; how < 2; how++) {
    static int dummy;
    medinfer_model *m = (medinfer_model *)&dummy;
    if (how == 0) {
      r->status[0] = medinfer_model_load(path, &m);
    } else {
      size_t size = 0;
      unsigned char *bytes = read_file(path, &size);
      r->status[1] = bytes ? medinfer_model_load_from_memory(bytes, size, &m) : -100;
      free(bytes);
    }
    r->model_set[how] = m != NULL;
    snprintf(r->message[how], sizeof r->message[how], "%s", last_error());
    if (r->status[how] == MEDINFER_OK && m != (medinfer_model *)&dummy) medinfer_model_free(m);
  }
}

static int is_bad_status(int s) {
  return s == MEDINFER_ERR_PARSE || s == MEDINFER_ERR_UNSUPPORTED || s == MEDINFER_ERR_OUT_OF_MEMORY;
}

static void test_malformed_fixtures(void) {
  const char *dir = path_of("Tests/Fixtures/malformed");
  char readme[4096];
  snprintf(readme, sizeof readme, "%s/README.md", dir);
  size_t n_rows = 0;
  fixture_row *table = read_fixture_table(readme, &n_rows);
  CHECK(table && n_rows > 0, "cannot read the fixture table in %s", readme);
  if (!table) return;
  for (size_t i = 0; i < n_rows; i++) {
    CHECK(is_bad_status(table[i].statuses[0]) && (table[i].statuses[1] == -1 || is_bad_status(table[i].statuses[1])),
          "README row for %s: expected status must be PARSE, UNSUPPORTED or OUT_OF_MEMORY", table[i].file);
  }

  DIR *d = opendir(dir);
  CHECK(d != NULL, "cannot open %s: %s", dir, strerror(errno));
  if (!d) {
    free(table);
    return;
  }
  /* Sorted list of the files, so that the output is stable. */
  char **names = NULL;
  size_t n_names = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0 || strcmp(e->d_name, "make_malformed.py") == 0)
      continue;
    if (n_names == cap) {
      cap = cap ? cap * 2 : 64;
      names = realloc(names, cap * sizeof *names);
    }
    names[n_names++] = strdup(e->d_name);
  }
  closedir(d);
  for (size_t i = 1; i < n_names; i++)
    for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  CHECK(n_names >= 50, "only %zu malformed fixtures in %s", n_names, dir);

  int crashed = 0;
  for (size_t i = 0; i < n_names; i++) {
    fixture_row *row = NULL;
    for (size_t k = 0; k < n_rows; k++)
      if (strcmp(table[k].file, names[i]) == 0) row = &table[k];
    CHECK(row != NULL, "%s has no row in %s", names[i], readme);
    if (!row) continue;
    row->seen = 1;
    char path[4096], what[4400];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    snprintf(what, sizeof what, "malformed fixture %s", names[i]);
    child_report r;
    if (!run_isolated(what, "load", path, 0, &r)) {
      crashed++;
      continue;
    }
    for (int how = 0; how < 2; how++) {
      const char *via = how == 0 ? "medinfer_model_load" : "medinfer_model_load_from_memory";
      int s = r.status[how];
      if (s == MEDINFER_OK) {
        CHECK(0, "%s via %s: a malformed model loaded (expected %s%s%s)", names[i], via,
              medinfer_status_name(row->statuses[0]), row->statuses[1] >= 0 ? " or " : "",
              row->statuses[1] >= 0 ? medinfer_status_name(row->statuses[1]) : "");
        continue;
      }
      CHECK(s == row->statuses[0] || s == row->statuses[1], "%s via %s: expected %s%s%s, got %s (\"%s\")", names[i],
            via, medinfer_status_name(row->statuses[0]), row->statuses[1] >= 0 ? " or " : "",
            row->statuses[1] >= 0 ? medinfer_status_name(row->statuses[1]) : "", medinfer_status_name(s),
            r.message[how]);
      CHECK(r.message[how][0] != '\0', "%s via %s: empty message", names[i], via);
      CHECK(contains_nocase(r.message[how], row->needle), "%s via %s: message \"%s\" does not mention \"%s\"",
            names[i], via, r.message[how], row->needle);
      CHECK(!r.model_set[how], "%s via %s: *out_model not NULL after a failure", names[i], via);
    }
    if (r.status[0] != MEDINFER_OK)
      CHECK(contains_nocase(r.message[0], names[i]), "%s: the file error \"%s\" does not name the file",
            names[i], r.message[0]);
  }
  for (size_t k = 0; k < n_rows; k++)
    CHECK(table[k].seen, "README row for %s, but no such file in %s", table[k].file, dir);
  printf("  %zu malformed fixtures checked (%d crashed or hung)\n", n_names, crashed);
  for (size_t i = 0; i < n_names; i++) free(names[i]);
  free(names);
  free(table);
}

/* The valid seeds of the malformed files load: proof that each defect is what fails. */
static void test_valid_fixtures(void) {
  const char *dir = path_of("Tests/Fixtures/valid");
  DIR *d = opendir(dir);
  CHECK(d != NULL, "cannot open %s", dir);
  if (!d) return;
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len < 5 || !(strcmp(e->d_name + len - 5, ".json") == 0 || strcmp(e->d_name + len - 4, ".txt") == 0))
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    medinfer_model *m = NULL;
    char what[4200];
    snprintf(what, sizeof what, "valid fixture %s", e->d_name);
    if (CHECK_OK(what, medinfer_model_load(path, &m))) medinfer_model_free(m);
    n++;
  }
  closedir(d);
  CHECK(n >= 3, "only %d valid fixtures", n);
}

/* A small valid file must not make the library allocate without bound: 1,023
 * categorical splits on category 16777215 (see Tests/Fixtures/valid/README.md). Loaded in
 * a child, which reports how much its peak RSS grew. */
static void test_wide_categories(void) {
  child_report r;
  const char *rel = "Tests/Fixtures/valid/xgb_wide_categories.json";
  if (!run_isolated("load(xgb_wide_categories.json)", "rss-load", path_of(rel), 0, &r)) return;
  CHECK(r.status[0] == MEDINFER_OK, "%s: %s \"%s\"", rel, medinfer_status_name(r.status[0]), r.message[0]);
  CHECK(r.rss_growth_kb < 256 * 1024, "%s: loading an 80 kB model grew the process by %ld MB", rel,
        r.rss_growth_kb / 1024);
  printf("  %s: loading grew the peak RSS by %ld kB\n", rel, r.rss_growth_kb);
}

/* ------------------------------------------------------------------------------------ */
/* Garbage and mutated models (seeded)                                                    */
/* ------------------------------------------------------------------------------------ */

static void fuzz_garbage(void) {
  uint64_t s = 0x5EED0001ull;
  static const char *prefixes[] = {"", "{", "{\"learner\":", "tree\n", "{\"format\":\"medinfer-forest\",",
                                   "\xEF\xBB\xBF{"};
  int bad = 0;
  for (int i = 0; i < 600; i++) {
    const char *prefix = prefixes[i % 6];
    size_t plen = strlen(prefix);
    size_t n = plen + 1 + (size_t)(next_u64(&s) % 4096);
    unsigned char *buf = malloc(n);
    memcpy(buf, prefix, plen);
    for (size_t k = plen; k < n; k++) buf[k] = (unsigned char)next_u64(&s);
    medinfer_model *m = NULL;
    int st = medinfer_model_load_from_memory(buf, n, &m);
    if (!is_bad_status(st) || m != NULL || last_error()[0] == '\0') {
      bad++;
      CHECK(0, "garbage buffer %d (%zu bytes, prefix \"%s\"): %s \"%s\"", i, n, prefix, medinfer_status_name(st),
            last_error());
    }
    if (st == MEDINFER_OK) medinfer_model_free(m);
    free(buf);
  }
  CHECK(bad == 0, "%d garbage buffers misbehaved", bad);
}

typedef struct {
  const char *rel_path;
  uint64_t seed;
  int rounds;
} mutate_arg;

/* Random small edits to a valid model: the result may load or fail, but only with a
 * documented status; a model that loads must score without trouble. */
static void fuzz_mutations(const mutate_arg *arg) {
  size_t size;
  unsigned char *orig = read_file(path_of(arg->rel_path), &size);
  if (!orig) {
    CHECK(0, "cannot read %s", arg->rel_path);
    return;
  }
  static const char alphabet[] = "0123456789-+.,eE[]{}\":\n -1e999nan 1e12 ";
  uint64_t s = arg->seed;
  int loaded = 0, rejected = 0;
  unsigned char *buf = malloc(size + 64);
  for (int i = 0; i < arg->rounds; i++) {
    memcpy(buf, orig, size);
    size_t n = size;
    int edits = 1 + (int)(next_u64(&s) % 6);
    for (int e = 0; e < edits; e++) {
      size_t at = (size_t)(next_u64(&s) % n);
      switch (next_u64(&s) % 4) {
      case 0: buf[at] = (unsigned char)alphabet[next_u64(&s) % (sizeof alphabet - 1)]; break;
      case 1: buf[at] = (unsigned char)next_u64(&s); break;
      case 2: /* delete a short run */ {
        size_t len = 1 + (size_t)(next_u64(&s) % 8);
        if (at + len > n) len = n - at;
        memmove(buf + at, buf + at + len, n - at - len);
        n -= len;
        if (n == 0) n = 1;
        break;
      }
      default: /* duplicate a digit run: grows numbers */
        if (n + 4 <= size + 64) {
          memmove(buf + at + 4, buf + at, n - at);
          memcpy(buf + at, "9999", 4);
          n += 4;
        }
      }
    }
    medinfer_model *m = NULL;
    int st = medinfer_model_load_from_memory(buf, n, &m);
    if (st == MEDINFER_OK) {
      loaded++;
      size_t F = 0, per_row = 0;
      int q = medinfer_model_feature_count(m, &F) | medinfer_model_output_count(m, MEDINFER_OUTPUT_TRANSFORMED, &per_row);
      CHECK(q == MEDINFER_OK && F > 0 && per_row > 0, "mutant %d of %s: queries failed after a successful load", i,
            arg->rel_path);
      if (q == MEDINFER_OK && F > 0 && F <= 4096 && per_row > 0 && per_row <= 4096) {
        float *x = make_rows(16, F, (uint64_t)i);
        double *o = guarded(16 * per_row);
        int p = medinfer_predict(m, x, 16, F, NULL, o, 16 * per_row);
        CHECK(p == MEDINFER_OK, "mutant %d of %s: predict failed: %s", i, arg->rel_path, last_error());
        CHECK(first_written(o, 16 * per_row, 16 * per_row + GUARD) == (size_t)-1,
              "mutant %d of %s: predict wrote past out", i, arg->rel_path);
        /* SHAP on a mutated model: values, or UNSUPPORTED (e.g. covers damaged). */
        size_t K = 0;
        if (F <= 64 && medinfer_model_output_count(m, MEDINFER_OUTPUT_RAW, &K) == MEDINFER_OK && K <= 64) {
          size_t n = 4 * (F + 1) * (F + 1) * K;
          double *e = guarded(n);
          int sv = medinfer_shap_values(m, x, 4, F, NULL, e, n);
          int iv = medinfer_shap_interaction_values(m, x, 4, F, NULL, e, n);
          CHECK((sv == MEDINFER_OK || sv == MEDINFER_ERR_UNSUPPORTED) && (iv == MEDINFER_OK || iv == MEDINFER_ERR_UNSUPPORTED),
                "mutant %d of %s: SHAP gave %s / %s: %s", i, arg->rel_path, medinfer_status_name(sv),
                medinfer_status_name(iv), last_error());
          CHECK(first_written(e, n, n + GUARD) == (size_t)-1, "mutant %d of %s: SHAP wrote past out", i,
                arg->rel_path);
          free(e);
        }
        free(o);
        free(x);
      }
      medinfer_model_free(m);
    } else {
      rejected++;
      CHECK(is_bad_status(st) && m == NULL && last_error()[0] != '\0', "mutant %d of %s: %s \"%s\"", i,
            arg->rel_path, medinfer_status_name(st), last_error());
    }
  }
  printf("  %s: %d mutants loaded, %d rejected\n", arg->rel_path, loaded, rejected);
  free(buf);
  free(orig);
}

static void test_fuzz(void) {
  child_report r;
  run_isolated("random garbage buffers", "garbage", "", 0, &r);
  for (size_t i = 0; i < N_MODELS; i++) {
    if (!file_exists(path_of(k_models[i].rel_path))) continue;
    char what[512], index[16];
    snprintf(what, sizeof what, "mutations of %s", k_models[i].rel_path);
    snprintf(index, sizeof index, "%zu", i);
    run_isolated(what, "mutate", index, 0, &r);
  }
}

/* The child process: runs one isolated piece and writes a child_report to `fd`. */
static int child_main(int fd, const char *kind, const char *arg) {
  child_report r;
  memset(&r, 0, sizeof r);
  if (strcmp(kind, "load") == 0) {
    load_both_ways(arg, &r);
  } else if (strcmp(kind, "rss-load") == 0) {
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    medinfer_model *m = NULL;
    r.status[0] = medinfer_model_load(arg, &m);
    getrusage(RUSAGE_SELF, &after);
    r.rss_growth_kb = after.ru_maxrss - before.ru_maxrss;
    snprintf(r.message[0], sizeof r.message[0], "%s", last_error());
    medinfer_model_free(m);
  } else if (strcmp(kind, "loadfile") == 0) {
    medinfer_model *m = NULL;
    r.status[0] = medinfer_model_load(arg, &m);
    r.model_set[0] = m != NULL;
    snprintf(r.message[0], sizeof r.message[0], "%s", last_error());
    medinfer_model_free(m);
  } else if (strcmp(kind, "garbage") == 0) {
    fuzz_garbage();
  } else if (strcmp(kind, "mutate") == 0) {
    size_t i = (size_t)strtoul(arg, NULL, 10);
    if (i >= N_MODELS) return 5;
    /* The tiny models get more mutants: each edit hits a larger share of the file. */
    mutate_arg m = {k_models[i].rel_path, 0xC0FFEE00ull + i, i < 3 ? 1000 : 200};
    fuzz_mutations(&m);
  } else {
    return 5;
  }
  r.passed = g_passed;
  r.failed = g_failed;
  fflush(stdout);
  ssize_t wrote = write(fd, &r, sizeof r);
  close(fd);
  return wrote == (ssize_t)sizeof r ? 0 : 3;
}

/* ------------------------------------------------------------------------------------ */
/* Per-thread last error                                                                  */
/* ------------------------------------------------------------------------------------ */

typedef struct {
  medinfer_model *model;
  int ok_initial_empty, ok_own_error, ok_cleared;
  char initial[256], own[256], after[256];
} thread_probe;

static void *error_thread(void *p) {
  thread_probe *t = p;
  snprintf(t->initial, sizeof t->initial, "%s", last_error());
  t->ok_initial_empty = t->initial[0] == '\0';
  const char *name;
  int s = medinfer_model_feature_name(t->model, 1000000, &name);
  snprintf(t->own, sizeof t->own, "%s", last_error());
  t->ok_own_error = s == MEDINFER_ERR_INVALID_ARGUMENT && contains_nocase(t->own, "index") &&
                    !contains_nocase(t->own, "path");
  size_t n;
  s = medinfer_model_feature_count(t->model, &n);
  snprintf(t->after, sizeof t->after, "%s", last_error());
  t->ok_cleared = s == MEDINFER_OK && t->after[0] == '\0';
  return NULL;
}

static void test_last_error_per_thread(void) {
  thread_probe t;
  memset(&t, 0, sizeof t);
  t.model = load_or_fail(k_models[0].rel_path);
  if (!t.model) return;
  medinfer_model *m = NULL;
  int s = medinfer_model_load(NULL, &m);
  CHECK_ERROR("main thread: load(path NULL)", s, MEDINFER_ERR_INVALID_ARGUMENT, "path");
  const char *mine = medinfer_last_error();
  char before[512];
  snprintf(before, sizeof before, "%s", mine);

  pthread_t th;
  CHECK(pthread_create(&th, NULL, error_thread, &t) == 0, "pthread_create failed");
  pthread_join(th, NULL);
  CHECK(t.ok_initial_empty, "a new thread sees last_error \"%s\" instead of \"\"", t.initial);
  CHECK(t.ok_own_error, "the other thread's error is \"%s\" (expected its own index error)", t.own);
  CHECK(t.ok_cleared, "the other thread's error after a success is \"%s\"", t.after);
  CHECK(strcmp(last_error(), before) == 0, "main thread's error changed to \"%s\" (was \"%s\")", last_error(), before);
  CHECK(strcmp(mine, before) == 0, "main thread's message string was overwritten by another thread: \"%s\"", mine);
  medinfer_model_free(t.model);
}

/* ------------------------------------------------------------------------------------ */
/* Success paths: every model, from file and from memory                                  */
/* ------------------------------------------------------------------------------------ */

/* The header of a CSV file, split at commas; returns the column count. */
static size_t csv_header(const char *path, char ***cols) {
  FILE *f = fopen(path, "r");
  *cols = NULL;
  if (!f) return 0;
  char *line = NULL;
  size_t cap = 0, n = 0;
  if (getline(&line, &cap, f) > 0) {
    line[strcspn(line, "\r\n")] = '\0';
    size_t max = 1;
    for (char *p = line; *p; p++) max += *p == ',';
    *cols = calloc(max, sizeof **cols);
    char *start = line;
    for (;;) {
      char *comma = strchr(start, ',');
      if (comma) *comma = '\0';
      char *c = start;
      size_t len = strlen(c);
      if (len >= 2 && c[0] == '"' && c[len - 1] == '"') {
        c[len - 1] = '\0';
        c++;
      }
      (*cols)[n++] = strdup(c);
      if (!comma) break;
      start = comma + 1;
    }
  }
  free(line);
  fclose(f);
  return n;
}

typedef struct {
  int kind;
  size_t features, classes, trees, iterations, default_limit, out_t, out_r;
  const char *objective;
} model_facts;

static int facts_of(medinfer_model *m, model_facts *f) {
  int s = 0;
  s |= medinfer_model_kind(m, &f->kind);
  s |= medinfer_model_feature_count(m, &f->features);
  s |= medinfer_model_class_count(m, &f->classes);
  s |= medinfer_model_tree_count(m, &f->trees);
  s |= medinfer_model_iteration_count(m, &f->iterations);
  s |= medinfer_model_default_iteration_limit(m, &f->default_limit);
  s |= medinfer_model_output_count(m, MEDINFER_OUTPUT_TRANSFORMED, &f->out_t);
  s |= medinfer_model_output_count(m, MEDINFER_OUTPUT_RAW, &f->out_r);
  s |= medinfer_model_objective(m, &f->objective);
  return s;
}

/* SHAP on a model loaded twice (a from file, b from memory): identical results; the
 * values plus the bias sum to the raw margin (for several iteration limits); each row of
 * an interaction matrix sums to that feature's SHAP value and entry [M][M] is the bias. */
static void test_model_shap(const model_spec *spec, medinfer_model *a, medinfer_model *b, const model_facts *f,
                            const float *x) {
  const char *rel = spec->rel_path;
  const size_t rows = 48, M = f->features, K = f->out_r;
  const size_t n1 = rows * (M + 1) * K, n2 = rows * (M + 1) * (M + 1) * K;
  double *sa = guarded(n1), *sb = guarded(n1), *ia = guarded(n2), *ib = guarded(n2), *raw = guarded(rows * K);
  char what[512];
  size_t limits[] = {0, 1, f->iterations};
  double worst_sum = 0;
  for (size_t li = 0; li < sizeof limits / sizeof limits[0]; li++) {
    medinfer_explain_options eopt;
    medinfer_explain_options_init(&eopt);
    eopt.iteration_limit = limits[li];
    medinfer_predict_options popt;
    medinfer_predict_options_init(&popt);
    popt.output = MEDINFER_OUTPUT_RAW;
    popt.iteration_limit = limits[li];
    snprintf(what, sizeof what, "%s: shap_values(iteration_limit %zu)", rel, limits[li]);
    int ok = CHECK_OK(what, medinfer_shap_values(a, x, rows, M, &eopt, sa, n1));
    ok &= CHECK_OK(what, medinfer_shap_values(b, x, rows, M, &eopt, sb, n1));
    ok &= CHECK_OK(what, medinfer_predict(a, x, rows, M, &popt, raw, rows * K));
    if (!ok) continue;
    CHECK(doubles_identical(sa, sb, n1), "%s: file and memory loads give different SHAP values", what);
    CHECK(first_written(sa, n1, n1 + GUARD) == (size_t)-1, "%s: wrote past out", what);
    double worst = 0;
    for (size_t r = 0; r < rows; r++)
      for (size_t k = 0; k < K; k++) {
        double sum = 0;
        for (size_t j = 0; j <= M; j++) sum += sa[(r * (M + 1) + j) * K + k];
        double err = fabs(sum - raw[r * K + k]) / (1 + fabs(raw[r * K + k]));
        if (!(err <= worst)) worst = err; /* NaN counts as worst */
      }
    if (!(worst <= worst_sum)) worst_sum = worst;
    CHECK(worst < 1e-5, "%s: SHAP values + bias differ from the raw margin (worst relative error %g)", what, worst);
  }
  /* Interactions (default iteration limit), against the SHAP values of that limit. */
  medinfer_explain_options eopt;
  medinfer_explain_options_init(&eopt);
  snprintf(what, sizeof what, "%s: shap_interaction_values", rel);
  int ok = CHECK_OK(what, medinfer_shap_interaction_values(a, x, rows, M, &eopt, ia, n2));
  ok &= CHECK_OK(what, medinfer_shap_interaction_values(b, x, rows, M, &eopt, ib, n2));
  ok &= CHECK_OK(what, medinfer_shap_values(a, x, rows, M, &eopt, sa, n1));
  if (ok) {
    CHECK(doubles_identical(ia, ib, n2), "%s: file and memory loads give different interaction values", what);
    CHECK(first_written(ia, n2, n2 + GUARD) == (size_t)-1, "%s: wrote past out", what);
    double worst_row = 0, worst_bias = 0;
    for (size_t r = 0; r < rows; r++)
      for (size_t k = 0; k < K; k++) {
        for (size_t i = 0; i <= M; i++) {
          double sum = 0;
          for (size_t j = 0; j <= M; j++) sum += ia[((r * (M + 1) + i) * (M + 1) + j) * K + k];
          double shap = sa[(r * (M + 1) + i) * K + k];
          double err = fabs(sum - shap) / (1 + fabs(shap));
          if (!(err <= worst_row)) worst_row = err;
        }
        double bias_err = fabs(ia[((r * (M + 1) + M) * (M + 1) + M) * K + k] - sa[(r * (M + 1) + M) * K + k]);
        if (!(bias_err <= worst_bias)) worst_bias = bias_err;
      }
    CHECK(worst_row < 1e-6, "%s: interaction rows do not sum to the SHAP values (worst relative error %g)", what,
          worst_row);
    CHECK(worst_bias < 1e-9, "%s: entry [M][M] differs from the SHAP bias by %g", what, worst_bias);
    printf("  %s: SHAP sums match the margin to %.1e, interaction rows the SHAP values to %.1e\n", rel, worst_sum,
           worst_row);
  }
  free(sa);
  free(sb);
  free(ia);
  free(ib);
  free(raw);
}

static void test_model(const model_spec *spec) {
  const char *rel = spec->rel_path;
  const char *path = path_of(rel);
  if (!file_exists(path)) {
    CHECK(0, "model %s does not exist (the bundled models are part of the suite)", rel);
    return;
  }
  medinfer_model *a = NULL, *b = NULL;
  char what[512];
  snprintf(what, sizeof what, "load(%s)", rel);
  if (!CHECK_OK(what, medinfer_model_load(path, &a))) return;

  /* From memory, with the buffer scribbled over and freed right after the call: the
   * model must not keep pointers into it. */
  size_t size;
  unsigned char *bytes = read_file(path, &size);
  snprintf(what, sizeof what, "load_from_memory(%s)", rel);
  int s = bytes ? medinfer_model_load_from_memory(bytes, size, &b) : -1;
  if (bytes) {
    memset(bytes, 0xA5, size);
    free(bytes);
  }
  if (!CHECK_OK(what, s)) {
    medinfer_model_free(a);
    return;
  }

  model_facts fa, fb;
  memset(&fa, 0, sizeof fa);
  memset(&fb, 0, sizeof fb);
  CHECK(facts_of(a, &fa) == MEDINFER_OK, "%s: a query failed: %s", rel, last_error());
  CHECK(facts_of(b, &fb) == MEDINFER_OK, "%s (memory): a query failed: %s", rel, last_error());
  CHECK(fa.kind == spec->kind, "%s: kind %d, expected %d", rel, fa.kind, spec->kind);
  CHECK(fa.features == spec->features, "%s: %zu features, expected %zu", rel, fa.features, spec->features);
  CHECK(fa.classes == spec->classes, "%s: %zu classes, expected %zu", rel, fa.classes, spec->classes);
  CHECK(fa.out_t == spec->outputs_transformed && fa.out_r == spec->outputs_raw,
        "%s: output counts %zu/%zu, expected %zu/%zu", rel, fa.out_t, fa.out_r, spec->outputs_transformed,
        spec->outputs_raw);
  CHECK(fa.objective && fa.objective[0], "%s: empty objective", rel);
  CHECK(fa.iterations >= 1 && fa.trees >= fa.iterations && fa.trees % fa.iterations == 0,
        "%s: %zu trees in %zu iterations", rel, fa.trees, fa.iterations);
  CHECK(fa.default_limit >= 1 && fa.default_limit <= fa.iterations, "%s: default limit %zu of %zu iterations", rel,
        fa.default_limit, fa.iterations);
  CHECK(fa.kind == fb.kind && fa.features == fb.features && fa.classes == fb.classes && fa.trees == fb.trees &&
            fa.iterations == fb.iterations && fa.default_limit == fb.default_limit && fa.out_t == fb.out_t &&
            fa.out_r == fb.out_r && fb.objective && strcmp(fa.objective, fb.objective) == 0,
        "%s: file and memory loads answer queries differently", rel);

  /* Feature names: all or none, stable pointers, equal between the two loads, and
   * (bundled models) each one a column of the sample CSV. */
  char **cols = NULL;
  size_t ncols = spec->csv ? csv_header(path_of(spec->csv), &cols) : 0;
  CHECK(!spec->csv || ncols > 0, "%s: cannot read the header of %s", rel, spec->csv);
  size_t named = 0;
  for (size_t j = 0; j < fa.features; j++) {
    const char *na = NULL, *na2 = NULL, *nb = NULL;
    s = medinfer_model_feature_name(a, j, &na) | medinfer_model_feature_name(a, j, &na2) |
        medinfer_model_feature_name(b, j, &nb);
    CHECK(s == MEDINFER_OK, "%s: feature_name(%zu) failed: %s", rel, j, last_error());
    CHECK(na == na2, "%s: feature_name(%zu) returned different pointers", rel, j);
    CHECK((na == NULL) == (nb == NULL) && (!na || strcmp(na, nb) == 0), "%s: name %zu differs file/memory", rel, j);
    if (na) {
      named++;
      CHECK(na[0] != '\0', "%s: feature %zu has an empty name", rel, j);
      if (ncols) {
        int found = 0;
        for (size_t c = 0; c < ncols; c++) found |= strcmp(cols[c], na) == 0;
        CHECK(found, "%s: feature \"%s\" is not a column of %s", rel, na, spec->csv);
      }
    }
  }
  CHECK(named == 0 || named == fa.features, "%s: %zu of %zu features named", rel, named, fa.features);
  for (size_t c = 0; c < ncols; c++) free(cols[c]);
  free(cols);

  /* Predictions: identical (bitwise) between the two loads, for both output kinds and
   * several iteration limits; options NULL equals initialised defaults. */
  const size_t rows = 257;
  float *x = make_rows(rows, fa.features, 1234);
  size_t width = fa.out_t > fa.out_r ? fa.out_t : fa.out_r;
  double *pa = guarded(rows * width), *pb = guarded(rows * width), *pt = guarded(rows * width);
  size_t limits[] = {0, 1, fa.iterations / 2, fa.iterations};
  for (size_t li = 0; li < sizeof limits / sizeof limits[0]; li++) {
    for (int output = 0; output < 2; output++) {
      medinfer_predict_options opt;
      medinfer_predict_options_init(&opt);
      opt.output = output;
      opt.iteration_limit = limits[li];
      size_t per = output == MEDINFER_OUTPUT_RAW ? fa.out_r : fa.out_t;
      snprintf(what, sizeof what, "%s: predict(output %d, iteration_limit %zu)", rel, output, limits[li]);
      int sa = medinfer_predict(a, x, rows, fa.features, &opt, pa, rows * per);
      int sb = medinfer_predict(b, x, rows, fa.features, &opt, pb, rows * per);
      CHECK_OK(what, sa);
      CHECK_OK(what, sb);
      CHECK(doubles_identical(pa, pb, rows * per), "%s: file and memory loads predict differently", what);
      CHECK(first_written(pa, rows * per, rows * per + GUARD) == (size_t)-1, "%s: wrote past out", what);
      for (size_t i = 0; i < rows * per; i++)
        if (!isfinite(pa[i])) {
          CHECK(0, "%s: output %zu is %g", what, i, pa[i]);
          break;
        }
      if (output == MEDINFER_OUTPUT_TRANSFORMED && spec->binary_sigmoid) {
        /* Keep these for the sigmoid check against the raw margins below. */
        memcpy(pt, pa, rows * per * sizeof *pt);
      }
      if (output == MEDINFER_OUTPUT_RAW && spec->binary_sigmoid) {
        double worst = 0;
        for (size_t i = 0; i < rows; i++) {
          double p = 1.0 / (1.0 + exp(-pa[i]));
          if (fabs(p - pt[i]) > worst) worst = fabs(p - pt[i]);
        }
        CHECK(worst < 1e-6, "%s: transformed output is not sigmoid(raw) (max error %g)", what, worst);
      }
      if (output == MEDINFER_OUTPUT_TRANSFORMED && !spec->binary_sigmoid && fa.out_t == fa.classes) {
        double worst = 0;
        for (size_t i = 0; i < rows; i++) {
          double sum = 0;
          for (size_t k = 0; k < fa.out_t; k++) sum += pa[i * fa.out_t + k];
          if (fabs(sum - 1) > worst) worst = fabs(sum - 1);
        }
        CHECK(worst < 1e-6, "%s: class probabilities do not sum to 1 (max error %g)", what, worst);
      }
    }
  }
  /* NULL options == initialised defaults; one row at a time == one batch. */
  medinfer_predict_options opt;
  medinfer_predict_options_init(&opt);
  snprintf(what, sizeof what, "%s: predict(options NULL vs defaults)", rel);
  CHECK_OK(what, medinfer_predict(a, x, rows, fa.features, NULL, pa, rows * fa.out_t));
  CHECK_OK(what, medinfer_predict(a, x, rows, fa.features, &opt, pb, rows * fa.out_t));
  CHECK(doubles_identical(pa, pb, rows * fa.out_t), "%s: results differ", what);
  int single_ok = 1;
  for (size_t r = 0; r < rows && single_ok; r++) {
    single_ok = medinfer_predict(a, x + r * fa.features, 1, fa.features, NULL, pb + r * fa.out_t, fa.out_t) ==
                MEDINFER_OK;
  }
  CHECK(single_ok, "%s: single-row predict failed: %s", rel, last_error());
  CHECK(doubles_identical(pa, pb, rows * fa.out_t), "%s: row-by-row results differ from one batch", rel);

  test_model_shap(spec, a, b, &fa, x);

  free(x);
  free(pa);
  free(pb);
  free(pt);
  medinfer_model_free(a);
  medinfer_model_free(b);
}

/* ------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  g_self = argv[0];
  if (argc == 6 && strcmp(argv[1], "--child") == 0) {
    g_root = argv[5];
    return child_main(atoi(argv[2]), argv[3], argv[4]);
  }
  if (argc > 1) g_root = argv[1];
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("libmedinfer %s (ABI %d), root %s\n", medinfer_version(), medinfer_abi_version(), g_root);

  char tmpdir[4096];
  snprintf(tmpdir, sizeof tmpdir, "%s/.build/capi/tmp-test_capi-XXXXXX", g_root);
  if (!mkdtemp(tmpdir)) snprintf(tmpdir, sizeof tmpdir, "/tmp");

  printf("- library functions, last error\n");
  test_last_error_lifecycle(); /* first: checks the fresh-thread "" */
  test_versions_and_status_names();
  printf("- NULL pointers\n");
  test_null_pointers();
  printf("- prediction argument errors\n");
  for (size_t i = 0; i < N_MODELS; i++)
    if (file_exists(path_of(k_models[i].rel_path))) test_predict_errors(&k_models[i]);
  printf("- SHAP argument errors\n");
  for (size_t i = 0; i < N_MODELS; i++) {
    if (!file_exists(path_of(k_models[i].rel_path))) continue;
    test_explain_errors(&k_models[i], medinfer_shap_values, "shap_values", 0);
    test_explain_errors(&k_models[i], medinfer_shap_interaction_values, "shap_interaction_values", 1);
  }
  test_explain_without_covers();
  printf("- file errors\n");
  test_file_errors(tmpdir);
  test_utf8_bom();
  test_crlf_lightgbm();
  test_fifo_path(tmpdir);
  printf("- per-thread last error\n");
  test_last_error_per_thread();
  printf("- valid and malformed fixtures\n");
  test_valid_fixtures();
  test_wide_categories();
  test_malformed_fixtures();
  printf("- garbage and mutations\n");
  test_fuzz();
  printf("- models from file and memory\n");
  for (size_t i = 0; i < N_MODELS; i++) test_model(&k_models[i]);

  char empty[4200];
  snprintf(empty, sizeof empty, "%s/empty.json", tmpdir);
  remove(empty);
  if (strcmp(tmpdir, "/tmp") != 0) rmdir(tmpdir);

  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
