/*
 * test_threads.c - one shared medinfer_model, many threads predicting at once.
 *
 *   test_threads [MODEL]    (default: examples/models/noshow_xgb.json)
 *
 * The header promises that a loaded model is immutable and may be used by any number of
 * threads at the same time without locks. This test loads one model, scores 20,000
 * generated rows (deterministic, about 5% NaN) on one thread as the reference, then
 * starts 8 threads that each score the same rows several rounds over, in batches of
 * different sizes (the whole matrix, 1 row, 7, 64, 1000 rows), both output kinds, and
 * compares every result bitwise with the reference. Each thread also makes failing
 * calls with its own bad argument and checks that medinfer_last_error() shows its own
 * message, not another thread's.
 *
 * SHAP: a second instance of the model is loaded and never explained before the threads
 * start; all threads are released at once (a barrier) into medinfer_shap_values() on it,
 * so they race for the lazily built explainer. Every thread's SHAP values (300 rows) and
 * interaction values (40 rows) must equal, bitwise, those computed single-threaded on the
 * first instance.
 *
 * The last line of output is "N passed, N failed"; the exit status is non-zero when
 * anything failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medinfer.h"

#define THREADS 8
#define ROWS 20000
#define ROUNDS 4
#define SHAP_ROWS 300
#define INTERACTION_ROWS 40

/* Counters shared by all threads. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_passed, g_failed;

static void check_impl(int ok, const char *file, int line, const char *expr, const char *fmt, ...) {
  pthread_mutex_lock(&g_lock);
  if (ok) {
    g_passed++;
  } else {
    g_failed++;
    printf("FAIL %s:%d: %s\n     ", file, line, expr);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
  }
  pthread_mutex_unlock(&g_lock);
}
#define CHECK(cond, ...) check_impl(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

/* splitmix64 */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double next_unit(uint64_t *s) { return (double)(next_u64(s) >> 11) / 9007199254740992.0; }

/* Rows of plausible values for tabular clinical features: ~5% NaN, a quarter small
 * integers (flags, categories), the rest spread over ranges from 1 to a day in seconds. */
static float *make_rows(size_t rows, size_t features, uint64_t seed) {
  float *x = malloc(rows * features * sizeof *x);
  if (!x) return NULL;
  static const double scales[] = {1.0, 5.0, 30.0, 100.0, 1000.0, 86400.0};
  uint64_t s = seed;
  for (size_t i = 0; i < rows * features; i++) {
    double u = next_unit(&s);
    if (u < 0.05) x[i] = NAN;
    else if (u < 0.30) x[i] = (float)(next_u64(&s) % 5);
    else x[i] = (float)((next_unit(&s) * 1.2 - 0.1) * scales[(i % features) % 6]);
  }
  return x;
}

typedef struct {
  const medinfer_model *model;
  const medinfer_model *fresh; /* a second instance, not yet explained when threads start */
  const float *x;
  size_t features;
  size_t per_row[2];           /* values per row: transformed, raw */
  const double *reference[2];  /* single-threaded results */
  size_t shap_len, interaction_len;
  const double *shap_reference, *interaction_reference;
  pthread_barrier_t start;
} shared_state;

typedef struct {
  shared_state *shared;
  int index;
  pthread_t thread;
} worker;

static const size_t k_batches[] = {ROWS, 1, 7, 64, 1000};

/* SHAP values (and, when `interactions`, interaction values) from `model`, compared
 * bitwise with the single-threaded reference. */
static void check_shap(const worker *w, const medinfer_model *model, const char *which, int round, int interactions) {
  const shared_state *s = w->shared;
  size_t len = interactions ? s->interaction_len : s->shap_len;
  size_t rows = interactions ? INTERACTION_ROWS : SHAP_ROWS;
  const double *ref = interactions ? s->interaction_reference : s->shap_reference;
  double *out = malloc(len * sizeof *out);
  if (!out) {
    CHECK(0, "thread %d: out of memory", w->index);
    return;
  }
  int st = interactions ? medinfer_shap_interaction_values(model, s->x, rows, s->features, NULL, out, len)
                        : medinfer_shap_values(model, s->x, rows, s->features, NULL, out, len);
  CHECK(st == MEDINFER_OK, "thread %d round %d: %s on the %s model: %s: %s", w->index, round,
        interactions ? "shap_interaction_values" : "shap_values", which, medinfer_status_name(st),
        medinfer_last_error());
  if (st == MEDINFER_OK) {
    size_t mismatches = 0;
    for (size_t i = 0; i < len; i++) mismatches += memcmp(&out[i], &ref[i], sizeof out[i]) != 0;
    CHECK(mismatches == 0, "thread %d round %d: %zu of %zu %s values on the %s model differ from the "
                           "single-threaded run",
          w->index, round, mismatches, len, interactions ? "interaction" : "SHAP", which);
  }
  free(out);
}

static void *work(void *arg) {
  worker *w = arg;
  const shared_state *s = w->shared;
  /* All threads at once into the first SHAP call on the fresh model. */
  pthread_barrier_wait(&w->shared->start);
  check_shap(w, s->fresh, "fresh", -1, w->index % 2);
  size_t width = s->per_row[0] > s->per_row[1] ? s->per_row[0] : s->per_row[1];
  double *out = malloc((size_t)ROWS * width * sizeof *out);
  if (!out) {
    CHECK(0, "thread %d: out of memory", w->index);
    return NULL;
  }
  for (int round = 0; round < ROUNDS; round++) {
    /* Threads start with different batch sizes and output kinds so that different code
     * paths overlap in time. */
    size_t batch = k_batches[(size_t)(w->index + round) % (sizeof k_batches / sizeof k_batches[0])];
    int output = (w->index + round) % 2;
    medinfer_predict_options opt;
    medinfer_predict_options_init(&opt);
    opt.output = output;
    size_t per = s->per_row[output];
    memset(out, 0xFF, (size_t)ROWS * per * sizeof *out);
    int failures = 0;
    for (size_t start = 0; start < ROWS; start += batch) {
      size_t n = ROWS - start < batch ? ROWS - start : batch;
      int st = medinfer_predict(s->model, s->x + start * s->features, n, s->features, &opt, out + start * per,
                                n * per);
      if (st != MEDINFER_OK && failures++ == 0)
        CHECK(0, "thread %d round %d: predict rows %zu..%zu: %s: %s", w->index, round, start, start + n,
              medinfer_status_name(st), medinfer_last_error());
    }
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < (size_t)ROWS * per; i++)
      if (memcmp(&out[i], &s->reference[output][i], sizeof out[i]) != 0 && mismatches++ == 0) first = i;
    CHECK(mismatches == 0,
          "thread %d round %d (batch %zu, output %d): %zu values differ from the single-threaded run; first at "
          "row %zu: %.17g vs %.17g",
          w->index, round, batch, output, mismatches, first / per, out[first], s->reference[output][first]);

    /* A failing call with this thread's own bad feature count: the message is ours. */
    size_t bad = 1000 + (size_t)w->index * 7 + (size_t)round;
    char own[32];
    snprintf(own, sizeof own, "%zu", bad);
    int st = medinfer_predict(s->model, s->x, 1, bad, NULL, out, width);
    const char *msg = medinfer_last_error();
    CHECK(st == MEDINFER_ERR_SHAPE_MISMATCH && strstr(msg, own) != NULL,
          "thread %d: expected its own shape error naming %s, got %s \"%s\"", w->index, own,
          medinfer_status_name(st), msg);
    size_t count;
    st = medinfer_model_feature_count(s->model, &count);
    CHECK(st == MEDINFER_OK && medinfer_last_error()[0] == '\0',
          "thread %d: last error \"%s\" after a successful call", w->index, medinfer_last_error());

    /* SHAP alongside the other threads' predictions. */
    check_shap(w, round % 2 ? s->model : s->fresh, round % 2 ? "first" : "fresh", round, round == 1);
  }
  free(out);
  return NULL;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "examples/models/noshow_xgb.json";
  setvbuf(stdout, NULL, _IOLBF, 0);
  medinfer_model *model = NULL;
  int st = medinfer_model_load(path, &model);
  CHECK(st == MEDINFER_OK, "load %s: %s: %s", path, medinfer_status_name(st), medinfer_last_error());
  if (st != MEDINFER_OK) {
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return 1;
  }

  shared_state s;
  memset(&s, 0, sizeof s);
  s.model = model;
  st = medinfer_model_feature_count(model, &s.features);
  st |= medinfer_model_output_count(model, MEDINFER_OUTPUT_TRANSFORMED, &s.per_row[0]);
  st |= medinfer_model_output_count(model, MEDINFER_OUTPUT_RAW, &s.per_row[1]);
  CHECK(st == MEDINFER_OK, "queries: %s", medinfer_last_error());
  float *x = make_rows(ROWS, s.features, 0xC11A1CA1ull);
  double *ref[2] = {malloc((size_t)ROWS * s.per_row[0] * sizeof(double)),
                    malloc((size_t)ROWS * s.per_row[1] * sizeof(double))};
  if (!x || !ref[0] || !ref[1]) {
    printf("out of memory\n");
    return 1;
  }
  s.x = x;

  /* The reference: one thread, one call per output kind. */
  for (int output = 0; output < 2; output++) {
    medinfer_predict_options opt;
    medinfer_predict_options_init(&opt);
    opt.output = output;
    st = medinfer_predict(model, x, ROWS, s.features, &opt, ref[output], (size_t)ROWS * s.per_row[output]);
    CHECK(st == MEDINFER_OK, "reference predict (output %d): %s", output, medinfer_last_error());
    s.reference[output] = ref[output];
  }
  size_t nan_outputs = 0;
  for (size_t i = 0; i < (size_t)ROWS * s.per_row[0]; i++) nan_outputs += !isfinite(ref[0][i]);
  CHECK(nan_outputs == 0, "%zu reference outputs are not finite", nan_outputs);
  /* SHAP references, single-threaded, on the first instance; then a second instance that
   * nothing has explained yet. */
  s.shap_len = (size_t)SHAP_ROWS * (s.features + 1) * s.per_row[1];
  s.interaction_len = (size_t)INTERACTION_ROWS * (s.features + 1) * (s.features + 1) * s.per_row[1];
  double *shap_ref = malloc(s.shap_len * sizeof *shap_ref);
  double *interaction_ref = malloc(s.interaction_len * sizeof *interaction_ref);
  if (!shap_ref || !interaction_ref) {
    printf("out of memory\n");
    return 1;
  }
  st = medinfer_shap_values(model, x, SHAP_ROWS, s.features, NULL, shap_ref, s.shap_len);
  CHECK(st == MEDINFER_OK, "reference shap_values: %s: %s", medinfer_status_name(st), medinfer_last_error());
  st = medinfer_shap_interaction_values(model, x, INTERACTION_ROWS, s.features, NULL, interaction_ref,
                                        s.interaction_len);
  CHECK(st == MEDINFER_OK, "reference shap_interaction_values: %s: %s", medinfer_status_name(st),
        medinfer_last_error());
  s.shap_reference = shap_ref;
  s.interaction_reference = interaction_ref;
  medinfer_model *fresh = NULL;
  st = medinfer_model_load(path, &fresh);
  CHECK(st == MEDINFER_OK, "second load of %s: %s", path, medinfer_last_error());
  if (st != MEDINFER_OK) {
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return 1;
  }
  s.fresh = fresh;
  pthread_barrier_init(&s.start, NULL, THREADS);

  printf("model %s: %zu features, %d rows, %d threads x %d rounds, SHAP on %d rows\n", path, s.features, ROWS,
         THREADS, ROUNDS, SHAP_ROWS);

  worker workers[THREADS];
  for (int t = 0; t < THREADS; t++) {
    workers[t].shared = &s;
    workers[t].index = t;
    int e = pthread_create(&workers[t].thread, NULL, work, &workers[t]);
    CHECK(e == 0, "pthread_create %d: error %d", t, e);
    if (e != 0) { /* the others wait at the barrier for all THREADS: give up */
      printf("%d passed, %d failed\n", g_passed, g_failed);
      return 1;
    }
  }
  for (int t = 0; t < THREADS; t++) pthread_join(workers[t].thread, NULL);

  /* The main thread still scores the same after all that. */
  double *again = malloc((size_t)ROWS * s.per_row[0] * sizeof *again);
  st = medinfer_predict(model, x, ROWS, s.features, NULL, again, (size_t)ROWS * s.per_row[0]);
  CHECK(st == MEDINFER_OK && memcmp(again, ref[0], (size_t)ROWS * s.per_row[0] * sizeof *again) == 0,
        "single-threaded results changed after the threaded run");

  pthread_barrier_destroy(&s.start);
  free(shap_ref);
  free(interaction_ref);
  medinfer_model_free(fresh);
  free(again);
  free(ref[0]);
  free(ref[1]);
  free(x);
  medinfer_model_free(model);
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
