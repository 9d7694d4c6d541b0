/*
 * C API tests for Shapley explanations of networks: medinfer_explain_sequence (icu_lstm,
 * icu_two_branch), medinfer_stream_explain (an exact stream and a window-mode stream) and
 * medinfer_explain_image (skin_cnn_300).
 *
 *  - Exact values equal a brute force written here: every coalition of players built as a
 *    masked sequence, run with medinfer_sequence_run, combined with the Shapley weights
 *    |S|! (M - |S| - 1)! / M!, within 1e-5; for one and several background rows, full-
 *    length and one-step backgrounds, static players, time windows.
 *  - Additivity (base + sum of values = the output on the explained input, 1e-5) for exact
 *    and permutation values, sequences, streams and images; permutation values depend only
 *    on the seed.
 *  - A stream explanation equals the sequence explanation of the same steps, and leaves the
 *    stream exactly as it was: the next pushes equal, bit for bit, a twin that never explained.
 *  - Images: segment values over a grid or the caller's segments, the per-pixel map, dummy
 *    segments of a uniform image, the BUFFER_TOO_SMALL protocol.
 *  - Every bad argument: a status, a message that names the problem, nothing written.
 *
 *   test_explain REPO_ROOT
 *
 * MEDINFER_TEST_QUICK (run.sh under ASan, TSan and valgrind): the 2^16-coalition brute
 * force and most CNN runs are skipped.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "medinfer.h"

static const char *g_root = ".";
static int g_quick;

#define FEATURES 8
#define STATIC_WIDTH 4
#define TOLERANCE 1e-5
#define CANARY (-12345.25)

static const char *const kChannel[FEATURES] = {"HR", "SBP", "DBP", "MAP", "RR", "SpO2", "Temp", "GCS"};

static medinfer_model *load_model(const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/examples/models/%s", g_root, name);
  medinfer_model *model = NULL;
  int status = medinfer_model_load(path, &model);
  CHECK(status == MEDINFER_OK, "load %s: %s", path, medinfer_status_name(status));
  return model;
}

/* ---- data: vital signs as in test_stream.c --------------------------------------------- */

static uint64_t g_rng = 1;
static float next_uniform(void) { /* [-1, 1) */
  g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(g_rng >> 40) / (double)(1ull << 23) - 1.0);
}
static const float kTypical[FEATURES] = {85, 120, 70, 87, 18, 96, 37.2f, 13};
static const float kSpread[FEATURES] = {25, 25, 15, 18, 8, 4, 1.2f, 3};
static float *make_sequence(uint64_t seed, size_t steps) {
  float *values = malloc(steps * FEATURES * sizeof(float));
  g_rng = seed * 0x9E3779B97F4A7C15ull + 1;
  float level[FEATURES];
  for (size_t f = 0; f < FEATURES; f++) level[f] = next_uniform();
  for (size_t t = 0; t < steps; t++)
    for (size_t f = 0; f < FEATURES; f++) {
      level[f] = 0.9f * level[f] + 0.4f * next_uniform();
      values[t * FEATURES + f] = kTypical[f] + kSpread[f] * level[f];
    }
  return values;
}
static void make_static_row(uint64_t seed, float row[STATIC_WIDTH]) {
  g_rng = seed * 0xD1B54A32D192ED03ull + 7;
  row[0] = next_uniform() < 0 ? 0.0f : 1.0f;
  row[1] = 55 + 30 * next_uniform();
  row[2] = 170 + 15 * next_uniform();
  row[3] = 80 + 30 * next_uniform();
}

static const char *static_input_name(const medinfer_model *model) {
  size_t count = 0;
  if (medinfer_network_input_count(model, &count) != MEDINFER_OK) return NULL;
  for (size_t i = 0; i < count; i++) {
    const char *name = NULL;
    int64_t dims[MEDINFER_MAX_RANK];
    size_t rank = 0;
    if (medinfer_network_input(model, i, &name, dims, MEDINFER_MAX_RANK, &rank) == MEDINFER_OK && rank == 2)
      return name;
  }
  return NULL;
}

/* Case-insensitive: does the message contain one of the '|'-separated words? */
static int mentions(const char *message, const char *words) {
  char lower[2048];
  size_t n = 0;
  for (; message[n] && n + 1 < sizeof lower; n++)
    lower[n] = (char)((message[n] >= 'A' && message[n] <= 'Z') ? message[n] + 32 : message[n]);
  lower[n] = '\0';
  const char *w = words;
  while (*w) {
    const char *end = strchr(w, '|');
    size_t len = end ? (size_t)(end - w) : strlen(w);
    char word[128];
    if (len >= sizeof word) len = sizeof word - 1;
    for (size_t i = 0; i < len; i++) word[i] = (char)((w[i] >= 'A' && w[i] <= 'Z') ? w[i] + 32 : w[i]);
    word[len] = '\0';
    if (len && strstr(lower, word)) return 1;
    if (!end) break;
    w = end + 1;
  }
  return 0;
}

/* A refusal: the status, a message naming the problem (one of `words`, when given). */
static void check_refusal(int status, int want, const char *what, const char *words, const char *file, int line) {
  char message[2048];
  snprintf(message, sizeof message, "%s", medinfer_last_error());
  check_impl(status == want, file, line, "%s: status %s, expected %s", what, medinfer_status_name(status),
             medinfer_status_name(want));
  check_impl(message[0] != '\0', file, line, "%s: no message", what);
  if (words && status == want && message[0])
    check_impl(mentions(message, words), file, line, "%s: the message does not name the problem (%s): \"%s\"", what,
               words, message);
}
#define REFUSED(call, want, what, words) check_refusal((call), (want), (what), (words), __FILE__, __LINE__)

/* A size given as SIZE_MAX is reported as such, not as -1 (a size_t read as signed). */
#define CHECK_NOT_NEGATIVE(what)                                                              \
  CHECK(strstr(medinfer_last_error(), " -1 ") == NULL && strstr(medinfer_last_error(), " -9") == NULL, \
        "%s: the message shows a size_t as a negative number", what)

static int untouched(const double *buffer, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (buffer[i] != CANARY) return 0;
  return 1;
}
static void fill_canary(double *buffer, size_t n) {
  for (size_t i = 0; i < n; i++) buffer[i] = CANARY;
}

/* ---- a sequence explanation problem ---------------------------------------------------- */

/* An explained sequence (batch 1) and its background, with everything the brute force
 * needs to rebuild coalitions. */
typedef struct {
  medinfer_model *model;
  medinfer_session *session;
  const char *static_name; /* NULL: no static input */
  const float *values;     /* steps x FEATURES */
  size_t steps;
  const float *static_row; /* STATIC_WIDTH, when static_name */
  const float *bg_values;  /* bg_rows x bg_steps x FEATURES */
  size_t bg_steps, bg_rows;
  const float *bg_statics; /* bg_rows x STATIC_WIDTH, when static_name */
} problem;

typedef struct {
  medinfer_sequence_batch sequence, background;
  medinfer_input_tensor sequence_static, background_static;
} batches;

static void make_batches(const problem *p, batches *b) {
  medinfer_sequence_batch_init(&b->sequence);
  b->sequence.values = p->values;
  b->sequence.batch = 1;
  b->sequence.max_steps = p->steps;
  b->sequence.features = FEATURES;
  medinfer_sequence_batch_init(&b->background);
  b->background.values = p->bg_values;
  b->background.batch = p->bg_rows;
  b->background.max_steps = p->bg_steps;
  b->background.features = FEATURES;
  if (p->static_name) {
    medinfer_input_tensor s = {p->static_name, p->static_row, STATIC_WIDTH, 2, {1, STATIC_WIDTH}};
    medinfer_input_tensor g = {p->static_name, p->bg_statics, p->bg_rows * STATIC_WIDTH, 2,
                               {(int64_t)p->bg_rows, STATIC_WIDTH}};
    b->sequence_static = s;
    b->background_static = g;
    b->sequence.static_inputs = &b->sequence_static;
    b->sequence.static_input_count = 1;
    b->background.static_inputs = &b->background_static;
    b->background.static_input_count = 1;
  }
}

/* medinfer_explain_sequence with a buffer of the right size (asked for first); returns the
 * status, *values malloc'ed ((players + 1) * K) on success. */
static int explain(const problem *p, const medinfer_shapley_options *options, double **values, size_t *players,
                   size_t *outputs) {
  batches b;
  make_batches(p, &b);
  *values = NULL;
  *players = *outputs = 0;
  int status = medinfer_explain_sequence(p->session, &b.sequence, &b.background, options, NULL, 0, players, outputs);
  if (status != MEDINFER_ERR_BUFFER_TOO_SMALL) return status;
  size_t n = (*players + 1) * *outputs;
  *values = malloc((n + 1) * sizeof(double));
  fill_canary(*values, n + 1);
  status = medinfer_explain_sequence(p->session, &b.sequence, &b.background, options, *values, n, players, outputs);
  CHECK((*values)[n] == CANARY, "explain_sequence wrote past its length");
  if (status != MEDINFER_OK) {
    free(*values);
    *values = NULL;
  }
  return status;
}

/* medinfer_sequence_run on `rows` sequences of `steps` steps (statics: rows x STATIC_WIDTH
 * when the model has a static input); writes rows * K floats, returns K (0 on failure). */
static size_t run_rows(medinfer_session *session, const char *static_name, const float *values, size_t rows,
                       size_t steps, const float *statics, float *out, size_t out_length) {
  medinfer_sequence_batch batch;
  medinfer_sequence_batch_init(&batch);
  batch.values = values;
  batch.batch = rows;
  batch.max_steps = steps;
  batch.features = FEATURES;
  medinfer_input_tensor s = {static_name, statics, rows * STATIC_WIDTH, 2, {(int64_t)rows, STATIC_WIDTH}};
  if (static_name) {
    batch.static_inputs = &s;
    batch.static_input_count = 1;
  }
  size_t count = 0;
  int status = medinfer_sequence_run(session, &batch, out, out_length, &count);
  CHECK(status == MEDINFER_OK, "sequence_run of %zu rows: %s", rows, medinfer_status_name(status));
  return status == MEDINFER_OK ? count / rows : 0;
}

/* The explained output: the model's first output on the explained sequence. */
static size_t output_of(const problem *p, float *out, size_t length) {
  return run_rows(p->session, p->static_name, p->values, 1, p->steps, p->static_row, out, length);
}

/* The first step of window w (0 = earliest) of `windows` over `steps` steps, and its
 * length, as the header defines them. */
static void window_range(size_t steps, size_t windows, size_t window_steps, size_t w, size_t *first, size_t *count) {
  if (window_steps > 0) {
    *first = steps - (windows - w) * window_steps;
    *count = window_steps;
  } else {
    size_t base = steps / windows, rest = steps % windows;
    if (w == 0) {
      *first = 0;
      *count = base + rest;
    } else {
      *first = base + rest + (w - 1) * base;
      *count = base;
    }
  }
}

/* Brute-force Shapley values: v(S) for all 2^M coalitions by medinfer_sequence_run (the
 * mean over the background rows), then phi_i = sum over S without i of
 * |S|! (M - |S| - 1)! / M! (v(S + i) - v(S)). Writes (M + 1) * K doubles (the last row:
 * v(empty)); returns K, 0 on failure. */
static size_t brute_force(const problem *p, size_t windows, size_t window_steps, double *phi) {
  size_t statics = p->static_name ? STATIC_WIDTH : 0;
  size_t players = statics + windows * FEATURES;
  size_t coalitions = (size_t)1 << players;
  size_t L = p->steps, B = p->bg_rows;
  /* which player masks step t channel c (SIZE_MAX: never masked) */
  size_t *owner = malloc(L * FEATURES * sizeof(size_t));
  for (size_t i = 0; i < L * FEATURES; i++) owner[i] = SIZE_MAX;
  for (size_t w = 0; w < windows; w++) {
    size_t first, count;
    window_range(L, windows, window_steps, w, &first, &count);
    for (size_t t = first; t < first + count; t++)
      for (size_t c = 0; c < FEATURES; c++) owner[t * FEATURES + c] = statics + w * FEATURES + c;
  }
  const size_t chunk = 4096; /* sequences per run */
  float *seqs = malloc(chunk * L * FEATURES * sizeof(float));
  float *rows = malloc(chunk * STATIC_WIDTH * sizeof(float));
  float *outs = malloc(chunk * 64 * sizeof(float));
  size_t K = 0;
  double *v = NULL;
  size_t total = coalitions * B, done = 0;
  while (done < total) {
    size_t n = total - done < chunk ? total - done : chunk;
    for (size_t i = 0; i < n; i++) {
      size_t s = (done + i) / B, b = (done + i) % B;
      float *x = seqs + i * L * FEATURES;
      for (size_t t = 0; t < L; t++)
        for (size_t c = 0; c < FEATURES; c++) {
          size_t o = owner[t * FEATURES + c];
          int keep = o == SIZE_MAX || ((s >> o) & 1);
          x[t * FEATURES + c] = keep ? p->values[t * FEATURES + c]
                                     : p->bg_values[(b * p->bg_steps + (p->bg_steps == 1 ? 0 : t)) * FEATURES + c];
        }
      for (size_t j = 0; j < statics; j++)
        rows[i * STATIC_WIDTH + j] = ((s >> j) & 1) ? p->static_row[j] : p->bg_statics[b * STATIC_WIDTH + j];
    }
    size_t k = run_rows(p->session, p->static_name, seqs, n, L, rows, outs, chunk * 64);
    if (k == 0) break;
    if (!v) {
      K = k;
      v = calloc(coalitions * K, sizeof(double));
    }
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < K; j++) v[((done + i) / B) * K + j] += (double)outs[i * K + j] / (double)B;
    done += n;
  }
  if (done == total && v) {
    /* weight(s) = 1 / (M * C(M - 1, s)) */
    double *weight = malloc(players * sizeof(double));
    for (size_t s = 0; s < players; s++) {
      double binomial = 1;
      for (size_t i = 0; i < s; i++) binomial = binomial * (double)(players - 1 - i) / (double)(i + 1);
      weight[s] = 1.0 / ((double)players * binomial);
    }
    for (size_t i = 0; i < (players + 1) * K; i++) phi[i] = 0;
    for (size_t S = 0; S < coalitions; S++) {
      size_t size = (size_t)__builtin_popcountll((unsigned long long)S);
      for (size_t i = 0; i < players; i++) {
        if ((S >> i) & 1) continue;
        size_t with = S | ((size_t)1 << i);
        for (size_t j = 0; j < K; j++) phi[i * K + j] += weight[size] * (v[with * K + j] - v[S * K + j]);
      }
    }
    for (size_t j = 0; j < K; j++) phi[players * K + j] = v[j];
    free(weight);
  } else {
    K = 0;
  }
  free(v);
  free(outs);
  free(rows);
  free(seqs);
  free(owner);
  return K;
}

static double max_diff(const double *a, const double *b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    if (!(d <= worst)) worst = d; /* NaN wins */
  }
  return worst;
}

/* base + sum of values vs the output, for each of K outputs; returns the worst error. */
static double additivity_error(const double *values, size_t players, size_t K, const float *output) {
  double worst = 0;
  for (size_t k = 0; k < K; k++) {
    double sum = values[players * K + k];
    for (size_t i = 0; i < players; i++) sum += values[i * K + k];
    double d = fabs(sum - (double)output[k]);
    if (!(d <= worst)) worst = d;
  }
  return worst;
}

/* Explains, checks counts, additivity and (when brute) the brute force. */
static void check_exact(const char *what, const problem *p, const medinfer_shapley_options *options, size_t windows,
                        size_t window_steps, int brute) {
  double *values = NULL;
  size_t players = 0, K = 0;
  int status = explain(p, options, &values, &players, &K);
  CHECK(status == MEDINFER_OK, "%s: explain_sequence: %s", what, medinfer_status_name(status));
  size_t want_players = (p->static_name ? STATIC_WIDTH : 0) + windows * FEATURES;
  CHECK(players == want_players && K == 1, "%s: players %zu (expected %zu), outputs %zu (expected 1)", what, players,
        want_players, K);
  if (!values || players != want_players || K != 1) {
    free(values);
    return;
  }
  float output[4];
  output_of(p, output, 4);
  double add = additivity_error(values, players, K, output);
  CHECK(add <= TOLERANCE, "%s: base %.9g + sum of values differs from the output %.9g by %.3g", what, values[players],
        (double)output[0], add);
  double worst = -1;
  if (brute) {
    double *phi = malloc((players + 1) * K * sizeof(double));
    if (brute_force(p, windows, window_steps, phi) == K) {
      worst = max_diff(values, phi, (players + 1) * K);
      CHECK(worst <= TOLERANCE, "%s: max |library - brute force| %.3g", what, worst);
      for (size_t i = 0; i <= players && !(worst <= TOLERANCE); i++)
        fprintf(stderr, "    player %2zu: library %+.9f brute force %+.9f\n", i, values[i], phi[i]);
    }
    free(phi);
  }
  double spread = 0;
  for (size_t i = 0; i < players; i++) spread = fmax(spread, fabs(values[i]));
  CHECK(spread > 1e-4, "%s: every value is ~0 (max %.3g): a vacuous test", what, spread);
  if (brute)
    printf("%s: %zu players, additivity %.2g, brute force %.2g\n", what, players, add, worst);
  else
    printf("%s: %zu players, additivity %.2g\n", what, players, add);
  free(values);
}

/* ---- option defaults ------------------------------------------------------------------ */

static void test_option_defaults(void) {
  medinfer_shapley_options_init(NULL);
  medinfer_image_explain_options_init(NULL);
  medinfer_shapley_options s;
  memset(&s, 0xAB, sizeof s);
  medinfer_shapley_options_init(&s);
  CHECK(s.struct_size == sizeof s && s.method == MEDINFER_SHAPLEY_AUTO && s.reserved == 0 && s.budget == 1000 &&
            s.time_windows == 1 && s.window_steps == 0,
        "shapley defaults: size %zu method %d reserved %d budget %zu windows %zu window_steps %zu", s.struct_size,
        s.method, s.reserved, s.budget, s.time_windows, s.window_steps);
  medinfer_image_explain_options m;
  memset(&m, 0xAB, sizeof m);
  medinfer_image_explain_options_init(&m);
  CHECK(m.struct_size == sizeof m && m.grid_rows == 8 && m.grid_cols == 8 && m.segments == NULL &&
            m.segment_count == 0 && m.masker == MEDINFER_MASK_MEAN && m.method == MEDINFER_SHAPLEY_AUTO &&
            m.blur_radius == 0 && m.budget == 1000,
        "image explain defaults: size %zu grid %zux%zu segments %p count %zu masker %d method %d radius %zu budget %zu",
        m.struct_size, m.grid_rows, m.grid_cols, (const void *)m.segments, m.segment_count, m.masker, m.method,
        m.blur_radius, m.budget);
  medinfer_stream_options o;
  memset(&o, 0xAB, sizeof o);
  medinfer_stream_options_init(&o);
  CHECK(o.struct_size == sizeof o && o.explain_steps == 0 && o.window == 48, "stream defaults: explain_steps %zu",
        o.explain_steps);
}

/* ---- explain_sequence: exact values ---------------------------------------------------- */

/* A reference sample: the typical value of each vital sign. */
static void typical_sample(float sample[FEATURES]) { memcpy(sample, kTypical, sizeof kTypical); }

static void test_sequence_exact(void) {
  medinfer_model *lstm = load_model("icu_lstm.onnx");
  medinfer_model *two = load_model("icu_two_branch.onnx");
  medinfer_session *ls = NULL, *ts = NULL;
  if (!lstm || !two) goto done;
  CHECK_STATUS(medinfer_session_create(lstm, &ls), MEDINFER_OK, "lstm session");
  CHECK_STATUS(medinfer_session_create(two, &ts), MEDINFER_OK, "two-branch session");
  if (!ls || !ts) goto done;

  /* 12 steps, windows of 4 (quick: 6 steps, windows of 2) */
  const size_t L = g_quick ? 6 : 12, W = L / 3;
  float *x = make_sequence(7, L);
  float reference[FEATURES];
  typical_sample(reference);
  float *bg_full = make_sequence(8, L); /* one reference sequence */
  float *bg3 = make_sequence(9, 3 * L); /* three rows of L steps: 3 sequences back to back */
  medinfer_shapley_options options;
  medinfer_shapley_options_init(&options);
  char what[128];

  /* icu_lstm, one background row of one step; AUTO = EXACT for 8 players */
  problem p = {lstm, ls, NULL, x, L, NULL, reference, 1, 1, NULL};
  check_exact("icu_lstm, 1 reference sample, AUTO", &p, NULL, 1, 0, 1);
  options.method = MEDINFER_SHAPLEY_EXACT;
  if (!g_quick) check_exact("icu_lstm, 1 reference sample, EXACT", &p, &options, 1, 0, 1);
  /* a full-length reference sequence: masked steps take its value at the same step */
  problem full = {lstm, ls, NULL, x, L, NULL, bg_full, L, 1, NULL};
  snprintf(what, sizeof what, "icu_lstm, 1 background sequence of %zu steps", L);
  check_exact(what, &full, &options, 1, 0, 1);
  /* three background rows: the mean over them */
  problem three = {lstm, ls, NULL, x, L, NULL, bg3, L, 3, NULL};
  check_exact("icu_lstm, 3 background sequences", &three, &options, 1, 0, 1);
  /* only the last W steps explained: the earlier ones are never masked */
  options.window_steps = W;
  snprintf(what, sizeof what, "icu_lstm, 1 window of the last %zu steps", W);
  check_exact(what, &p, &options, 1, W, 1);
  /* two windows of W steps: 16 players, 65536 coalitions (sampled in quick mode) */
  options.time_windows = 2;
  if (g_quick) {
    options.method = MEDINFER_SHAPLEY_PERMUTATION;
    options.budget = 32;
  }
  snprintf(what, sizeof what, "icu_lstm, time_windows 2 x window_steps %zu%s", W, g_quick ? ", sampled" : "");
  check_exact(what, &p, &options, 2, W, !g_quick);
  options.method = MEDINFER_SHAPLEY_EXACT;
  options.time_windows = 1;
  options.window_steps = 0;

  /* The base value of two windows of W steps: steps 0..L-2W-1 are the sequence's own, the
   * rest the reference's (the same for any method: sampled, it is cheap). */
  {
    options.time_windows = 2;
    options.window_steps = W;
    options.method = MEDINFER_SHAPLEY_PERMUTATION;
    options.budget = 32;
    double *values = NULL;
    size_t players = 0, K = 0;
    if (explain(&p, &options, &values, &players, &K) == MEDINFER_OK && players == 16 && K == 1) {
      float *masked = malloc(L * FEATURES * sizeof(float));
      memcpy(masked, x, L * FEATURES * sizeof(float));
      for (size_t t = L - 2 * W; t < L; t++) memcpy(masked + t * FEATURES, reference, sizeof reference);
      float base = 0;
      run_rows(ls, NULL, masked, 1, L, NULL, &base, 1);
      CHECK(fabs(values[players] - base) <= TOLERANCE, "2 windows of %zu: base %.9g, output with steps %zu.. masked %.9g",
            W, values[players], (double)base, L - 2 * W);
      free(masked);
    } else {
      CHECK(0, "2 windows of %zu steps: explain failed (%zu players)", W, players);
    }
    free(values);
    options.time_windows = 1;
    options.window_steps = 0;
    options.method = MEDINFER_SHAPLEY_EXACT;
  }

  /* window_steps 0 splits evenly, the earliest window taking the remainder: on n = L - 1
   * steps (11: windows 0..5 and 6..10). A sequence equal to the reference over the latest
   * window makes its players dummies (value 0); the other split (5 + 6) would not. */
  {
    const size_t n = L - 1, latest_first = n - n / 2;
    float *y = make_sequence(10, n);
    for (size_t t = latest_first; t < n; t++) memcpy(y + t * FEATURES, reference, sizeof reference);
    problem q = {lstm, ls, NULL, y, n, NULL, reference, 1, 1, NULL};
    options.time_windows = 2;
    options.method = MEDINFER_SHAPLEY_PERMUTATION; /* a dummy's sampled value is 0 too */
    options.budget = g_quick ? 32 : 160;
    double *values = NULL;
    size_t players = 0, K = 0;
    int status = explain(&q, &options, &values, &players, &K);
    CHECK(status == MEDINFER_OK && players == 16, "%zu steps in 2 windows: %s, %zu players", n,
          medinfer_status_name(status), players);
    if (values && players == 16) {
      double latest = 0, earliest = 0;
      for (size_t c = 0; c < FEATURES; c++) {
        latest = fmax(latest, fabs(values[FEATURES + c]));
        earliest = fmax(earliest, fabs(values[c]));
      }
      CHECK(latest <= 1e-7 && earliest > 1e-4,
            "%zu steps, 2 windows: the latest window (steps %zu..%zu, equal to the reference) should be dummies: "
            "max |value| latest %.3g, earliest %.3g",
            n, latest_first, n - 1, latest, earliest);
      float output = 0;
      output_of(&q, &output, 1);
      CHECK(additivity_error(values, players, K, &output) <= TOLERANCE, "%zu steps, 2 windows: additivity", n);
    }
    free(values);
    options.time_windows = 1;
    options.method = MEDINFER_SHAPLEY_EXACT;
    free(y);
  }

  /* a length below max_steps: the first lengths[0] steps are the sequence; the background
   * matches that length */
  {
    int64_t length = (int64_t)L - 2;
    batches b;
    problem q = {lstm, ls, NULL, x, L, NULL, bg_full, L - 2, 1, NULL};
    make_batches(&q, &b);
    b.sequence.lengths = &length;
    double values[9 * 1 + 1];
    fill_canary(values, 10);
    size_t players = 0, K = 0;
    CHECK_STATUS(medinfer_explain_sequence(ls, &b.sequence, &b.background, &options, values, 9, &players, &K),
                 MEDINFER_OK, "lengths[0] = max_steps - 2");
    float output = 0;
    run_rows(ls, NULL, x, 1, L - 2, NULL, &output, 1);
    CHECK(players == 8 && K == 1 && additivity_error(values, 8, 1, &output) <= TOLERANCE && values[9] == CANARY,
          "lengths[0] = max_steps - 2: additivity against the first steps");
    problem shorter = {lstm, ls, NULL, x, L - 2, NULL, bg_full, L - 2, 1, NULL};
    double *alone = NULL;
    if (explain(&shorter, &options, &alone, &players, &K) == MEDINFER_OK)
      CHECK(max_diff(alone, values, 9) <= 1e-9, "lengths[0] = max_steps - 2 differs from the shorter sequence");
    free(alone);
  }

  /* icu_two_branch: 4 static players, then 8 channels (4096 coalitions: sampled in quick
   * mode, without the brute force) */
  const char *name = static_input_name(two);
  CHECK(name != NULL, "icu_two_branch has no static input");
  if (name) {
    float row[STATIC_WIDTH], bg_rows[2 * STATIC_WIDTH];
    make_static_row(21, row);
    make_static_row(22, bg_rows);
    make_static_row(23, bg_rows + STATIC_WIDTH);
    medinfer_shapley_options sampled;
    medinfer_shapley_options_init(&sampled);
    sampled.method = MEDINFER_SHAPLEY_PERMUTATION;
    sampled.budget = 24;
    problem t1 = {two, ts, name, x, L, row, reference, 1, 1, bg_rows};
    if (g_quick) {
      check_exact("icu_two_branch, 1 reference sample + static row, sampled", &t1, &sampled, 1, 0, 0);
    } else {
      check_exact("icu_two_branch, 1 reference sample + static row, AUTO", &t1, NULL, 1, 0, 1);
      problem t2 = {two, ts, name, x, L, row, bg3, L, 2, bg_rows};
      check_exact("icu_two_branch, 2 background rows", &t2, &options, 1, 0, 1);
    }
    /* the static players are dummies when the background row is the patient's own */
    problem same = {two, ts, name, x, L, row, reference, 1, 1, row};
    double *values = NULL;
    size_t players = 0, K = 0;
    if (explain(&same, g_quick ? &sampled : &options, &values, &players, &K) == MEDINFER_OK && players == 12) {
      double statics = 0;
      for (size_t j = 0; j < STATIC_WIDTH; j++) statics = fmax(statics, fabs(values[j]));
      CHECK(statics <= 1e-7, "static players with the patient's own row as background: max |value| %.3g", statics);
    } else {
      CHECK(0, "two-branch, own static row: explain failed (%zu players)", players);
    }
    free(values);
  }
  free(bg3);
  free(bg_full);
  free(x);
done:
  medinfer_session_free(ls);
  medinfer_session_free(ts);
  medinfer_model_free(lstm);
  medinfer_model_free(two);
}

/* ---- explain_sequence: permutation sampling -------------------------------------------- */

static void test_sequence_permutation(void) {
  medinfer_model *lstm = load_model("icu_lstm.onnx");
  medinfer_model *two = load_model("icu_two_branch.onnx");
  medinfer_session *ls = NULL, *ts = NULL;
  if (!lstm || !two) goto done;
  CHECK_STATUS(medinfer_session_create(lstm, &ls), MEDINFER_OK, "lstm session");
  CHECK_STATUS(medinfer_session_create(two, &ts), MEDINFER_OK, "two-branch session");
  if (!ls || !ts) goto done;
  const size_t L = g_quick ? 8 : 12, budget = g_quick ? 48 : 200;
  float *x = make_sequence(31, L);
  float *bg = make_sequence(32, 2 * L);
  float reference[FEATURES];
  typical_sample(reference);
  float output = 0;

  medinfer_shapley_options options;
  medinfer_shapley_options_init(&options);
  options.method = MEDINFER_SHAPLEY_PERMUTATION;
  options.time_windows = 2;
  options.window_steps = 4;
  options.budget = budget;
  problem p = {lstm, ls, NULL, x, L, NULL, bg, L, 2, NULL};
  output_of(&p, &output, 1);
  double *a = NULL, *b = NULL, *c = NULL;
  size_t players = 0, K = 0;
  options.seed = 1;
  CHECK_STATUS(explain(&p, &options, &a, &players, &K), MEDINFER_OK, "permutation, seed 1");
  CHECK_STATUS(explain(&p, &options, &b, &players, &K), MEDINFER_OK, "permutation, seed 1 again");
  options.seed = 2;
  CHECK_STATUS(explain(&p, &options, &c, &players, &K), MEDINFER_OK, "permutation, seed 2");
  if (a && b && c && players == 16 && K == 1) {
    size_t n = (players + 1) * K;
    CHECK(memcmp(a, b, n * sizeof(double)) == 0, "permutation: the same seed gave different values");
    CHECK(memcmp(a, c, players * sizeof(double)) != 0, "permutation: seeds 1 and 2 gave identical values");
    double ea = additivity_error(a, players, K, &output), ec = additivity_error(c, players, K, &output);
    CHECK(ea <= TOLERANCE && ec <= TOLERANCE, "permutation additivity: %.3g, %.3g", ea, ec);
    CHECK(a[players] == c[players], "permutation: the base value depends on the seed: %.17g vs %.17g", a[players],
          c[players]);
    printf("icu_lstm permutation (16 players, budget %zu, 2 background rows): seed-determined, additivity %.2g\n",
           budget, ea);
  }
  free(a);
  free(b);
  free(c);

  /* the smallest budget (2 * players) still works and is additive */
  options.budget = 32;
  CHECK_STATUS(explain(&p, &options, &a, &players, &K), MEDINFER_OK, "permutation, budget 2 * players");
  if (a) CHECK(additivity_error(a, players, K, &output) <= TOLERANCE, "budget 2 * players: additivity");
  free(a);
  a = NULL;

  /* a large budget on 8 players lands near the exact values */
  if (!g_quick) {
    problem one = {lstm, ls, NULL, x, L, NULL, reference, 1, 1, NULL};
    medinfer_shapley_options exact;
    medinfer_shapley_options_init(&exact);
    exact.method = MEDINFER_SHAPLEY_EXACT;
    options.time_windows = 1;
    options.window_steps = 0;
    options.budget = 4000;
    options.seed = 5;
    CHECK_STATUS(explain(&one, &exact, &a, &players, &K), MEDINFER_OK, "exact, 8 players");
    CHECK_STATUS(explain(&one, &options, &b, &players, &K), MEDINFER_OK, "permutation, 8 players, budget 4000");
    if (a && b) {
      double scale = 0;
      for (size_t i = 0; i < 8; i++) scale = fmax(scale, fabs(a[i]));
      double d = max_diff(a, b, 8);
      CHECK(d <= 0.1 * scale + 1e-4, "permutation (budget 4000) vs exact: max diff %.3g, largest value %.3g", d, scale);
      CHECK(fabs(a[8] - b[8]) <= 1e-9, "permutation and exact base values differ: %.17g vs %.17g", a[8], b[8]);
      printf("icu_lstm: permutation (budget 4000) within %.2g of exact (largest value %.2g)\n", d, scale);
    }
    free(a);
    free(b);
    a = b = NULL;
  }

  /* AUTO beyond 16 players samples permutations: icu_two_branch with 2 windows = 20 players */
  const char *name = static_input_name(two);
  if (name) {
    float row[STATIC_WIDTH], bg_row[STATIC_WIDTH];
    make_static_row(41, row);
    make_static_row(42, bg_row);
    problem t = {two, ts, name, x, L, row, reference, 1, 1, bg_row};
    medinfer_shapley_options auto_options;
    medinfer_shapley_options_init(&auto_options);
    auto_options.time_windows = 2;
    auto_options.budget = g_quick ? 48 : 300;
    CHECK_STATUS(explain(&t, &auto_options, &a, &players, &K), MEDINFER_OK, "AUTO with 20 players");
    CHECK(players == 20 && K == 1, "two-branch, 2 windows: %zu players (expected 20)", players);
    float out2 = 0;
    output_of(&t, &out2, 1);
    if (a) CHECK(additivity_error(a, players, K, &out2) <= TOLERANCE, "AUTO (permutation) with 20 players: additivity");
    free(a);
    a = NULL;
    auto_options.method = MEDINFER_SHAPLEY_PERMUTATION;
    auto_options.time_windows = 1;
    t.bg_values = bg;
    t.bg_steps = L;
    CHECK_STATUS(explain(&t, &auto_options, &a, &players, &K), MEDINFER_OK, "two-branch permutation, 12 players");
    if (a) CHECK(additivity_error(a, players, K, &out2) <= TOLERANCE, "two-branch permutation: additivity");
    free(a);
  }
  free(bg);
  free(x);
done:
  medinfer_session_free(ls);
  medinfer_session_free(ts);
  medinfer_model_free(lstm);
  medinfer_model_free(two);
}

/* ---- explain_sequence: bad arguments --------------------------------------------------- */

static void test_sequence_arguments(void) {
  medinfer_model *lstm = load_model("icu_lstm.onnx");
  medinfer_model *two = load_model("icu_two_branch.onnx");
  medinfer_model *cnn = load_model("skin_cnn_300.onnx");
  medinfer_session *ls = NULL, *ts = NULL, *cs = NULL;
  if (!lstm || !two || !cnn) goto done;
  CHECK_STATUS(medinfer_session_create(lstm, &ls), MEDINFER_OK, "lstm session");
  CHECK_STATUS(medinfer_session_create(two, &ts), MEDINFER_OK, "two-branch session");
  CHECK_STATUS(medinfer_session_create(cnn, &cs), MEDINFER_OK, "cnn session");
  if (!ls || !ts || !cs) goto done;

  const size_t L = 12;
  float *x = make_sequence(51, L);
  float *bg = make_sequence(52, 20 * L);
  float reference[FEATURES];
  typical_sample(reference);
  problem p = {lstm, ls, NULL, x, L, NULL, reference, 1, 1, NULL};
  batches good;
  make_batches(&p, &good);
  medinfer_shapley_options options;
  medinfer_shapley_options_init(&options);
  if (g_quick) { /* the calls that pass run cheaply: 24 evaluations, not 256 or 4096 */
    options.method = MEDINFER_SHAPLEY_PERMUTATION;
    options.budget = 24;
  }
  double values[64];
  size_t players = 0, K = 0;
  fill_canary(values, 64);
  /* Each refusal leaves the buffer as it was. */
#define BAD(call, want, what, words)                                                   \
  do {                                                                                 \
    REFUSED(call, want, what, words);                                                  \
    CHECK(untouched(values, 64), "%s: the values buffer was written", what);          \
    fill_canary(values, 64);                                                           \
  } while (0)
#define RUN(seq, back, opts) medinfer_explain_sequence(ls, (seq), (back), (opts), values, 9, &players, &K)

  CHECK_STATUS(RUN(&good.sequence, &good.background, &options), MEDINFER_OK, "the valid call");
  fill_canary(values, 64);
  BAD(medinfer_explain_sequence(NULL, &good.sequence, &good.background, &options, values, 9, &players, &K),
      MEDINFER_ERR_INVALID_ARGUMENT, "session NULL", "session|null");
  BAD(RUN(NULL, &good.background, &options), MEDINFER_ERR_INVALID_ARGUMENT, "sequence NULL", "sequence|null");
  BAD(RUN(&good.sequence, NULL, &options), MEDINFER_ERR_INVALID_ARGUMENT, "background NULL", "background|null");
  /* NULL with a length: refused, as INVALID_ARGUMENT or as no buffer at all */
  {
    int status = medinfer_explain_sequence(ls, &good.sequence, &good.background, &options, NULL, 9, &players, &K);
    CHECK(status == MEDINFER_ERR_INVALID_ARGUMENT || status == MEDINFER_ERR_BUFFER_TOO_SMALL,
          "values NULL with length 9: %s", medinfer_status_name(status));
    CHECK(medinfer_last_error()[0] != '\0', "values NULL with length 9: no message");
  }

  medinfer_sequence_batch seq, back;
  /* the sequence */
  seq = good.sequence;
  seq.struct_size = 0;
  BAD(RUN(&seq, &good.background, &options), MEDINFER_ERR_INVALID_ARGUMENT, "sequence struct_size 0", "struct_size");
  seq = good.sequence;
  seq.batch = 2;
  float *x2 = malloc(2 * L * FEATURES * sizeof(float));
  memcpy(x2, x, L * FEATURES * sizeof(float));
  memcpy(x2 + L * FEATURES, x, L * FEATURES * sizeof(float));
  seq.values = x2;
  BAD(RUN(&seq, &good.background, &options), MEDINFER_ERR_INVALID_ARGUMENT, "sequence batch 2", "batch");
  seq = good.sequence;
  seq.batch = 0;
  BAD(RUN(&seq, &good.background, &options), MEDINFER_ERR_INVALID_ARGUMENT, "sequence batch 0", "batch");
  seq = good.sequence;
  seq.values = NULL;
  BAD(RUN(&seq, &good.background, &options), MEDINFER_ERR_INVALID_ARGUMENT, "sequence values NULL", "values|null");
  seq = good.sequence;
  seq.features = 7;
  BAD(RUN(&seq, &good.background, &options), MEDINFER_ERR_SHAPE_MISMATCH, "sequence of 7 features", "feature|7");
  int64_t length = 13;
  seq = good.sequence;
  seq.lengths = &length;
  BAD(RUN(&seq, &good.background, &options), MEDINFER_ERR_INVALID_ARGUMENT, "sequence length 13 of 12", "length");
  float *poisoned = malloc(L * FEATURES * sizeof(float));
  memcpy(poisoned, x, L * FEATURES * sizeof(float));
  poisoned[5 * FEATURES + 2] = NAN;
  seq = good.sequence;
  seq.values = poisoned;
  BAD(RUN(&seq, &good.background, &options), MEDINFER_ERR_INVALID_ARGUMENT, "NaN in the sequence", "nan|finite");
  poisoned[5 * FEATURES + 2] = -INFINITY;
  BAD(RUN(&seq, &good.background, &options), MEDINFER_ERR_INVALID_ARGUMENT, "-Inf in the sequence", "inf|finite");

  /* the background */
  back = good.background;
  back.struct_size = 4;
  BAD(RUN(&good.sequence, &back, &options), MEDINFER_ERR_INVALID_ARGUMENT, "background struct_size 4", "struct_size");
  int64_t lengths[2] = {1, 1};
  back = good.background;
  back.lengths = lengths;
  BAD(RUN(&good.sequence, &back, &options), MEDINFER_ERR_INVALID_ARGUMENT, "background lengths given", "length");
  back = good.background;
  back.values = bg;
  back.max_steps = 5;
  BAD(RUN(&good.sequence, &back, &options), MEDINFER_ERR_SHAPE_MISMATCH, "background of 5 steps for 12",
      "step|max_steps");
  back.max_steps = L + 1;
  BAD(RUN(&good.sequence, &back, &options), MEDINFER_ERR_SHAPE_MISMATCH, "background of 13 steps for 12",
      "step|max_steps");
  /* lengths[0] = 10: the background must have 10 steps (or 1), not max_steps */
  length = 10;
  seq = good.sequence;
  seq.lengths = &length;
  back.max_steps = L;
  BAD(RUN(&seq, &back, &options), MEDINFER_ERR_SHAPE_MISMATCH, "background of 12 steps for lengths[0] = 10",
      "step|max_steps|length");
  back = good.background;
  back.features = 9;
  BAD(RUN(&good.sequence, &back, &options), MEDINFER_ERR_SHAPE_MISMATCH, "background of 9 features", "feature|9");
  back = good.background;
  back.batch = 0;
  BAD(RUN(&good.sequence, &back, &options), MEDINFER_ERR_INVALID_ARGUMENT, "background batch 0", "batch");
  back = good.background;
  back.values = NULL;
  BAD(RUN(&good.sequence, &back, &options), MEDINFER_ERR_INVALID_ARGUMENT, "background values NULL", "values|null");
  float bad_reference[FEATURES];
  memcpy(bad_reference, reference, sizeof reference);
  bad_reference[6] = NAN;
  back = good.background;
  back.values = bad_reference;
  BAD(RUN(&good.sequence, &back, &options), MEDINFER_ERR_INVALID_ARGUMENT, "NaN in the background", "nan|finite");
  bad_reference[6] = INFINITY;
  BAD(RUN(&good.sequence, &back, &options), MEDINFER_ERR_INVALID_ARGUMENT, "Inf in the background", "inf|finite");
  /* icu_lstm has no static input */
  float row[STATIC_WIDTH] = {1, 60, 170, 80};
  medinfer_input_tensor stray = {"static", row, STATIC_WIDTH, 2, {1, STATIC_WIDTH}};
  back = good.background;
  back.static_inputs = &stray;
  back.static_input_count = 1;
  BAD(RUN(&good.sequence, &back, &options), MEDINFER_ERR_INVALID_ARGUMENT, "a static input given to icu_lstm",
      "static");

  /* the options */
  medinfer_shapley_options o;
  size_t small_sizes[] = {0, sizeof(size_t), offsetof(medinfer_shapley_options, window_steps)};
  for (size_t i = 0; i < 3; i++) {
    o = options;
    o.struct_size = small_sizes[i];
    char what[64];
    snprintf(what, sizeof what, "shapley options struct_size %zu", small_sizes[i]);
    BAD(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, what, "struct_size");
  }
  o = options;
  o.reserved = 1;
  BAD(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "reserved 1", "reserved");
  o = options;
  o.method = 3;
  BAD(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "method 3", "method");
  o.method = -1;
  BAD(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "method -1", "method");
  o = options;
  o.time_windows = 0;
  BAD(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "time_windows 0", "window");
  o.time_windows = 2;
  o.window_steps = 7; /* 14 steps > 12 */
  BAD(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "2 windows of 7 steps on 12",
      "window|step");
  o.time_windows = 13; /* windows of 0 steps */
  o.window_steps = 0;
  BAD(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "13 windows on 12 steps",
      "window|step");
  o.time_windows = SIZE_MAX;
  o.window_steps = SIZE_MAX;
  REFUSED(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "SIZE_MAX windows of SIZE_MAX steps",
          NULL);
  CHECK_NOT_NEGATIVE("SIZE_MAX windows");
  CHECK(untouched(values, 64), "SIZE_MAX windows: written");
  /* EXACT beyond 20 players: 3 windows = 24 players */
  o = options;
  o.method = MEDINFER_SHAPLEY_EXACT;
  o.time_windows = 3;
  BAD(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "EXACT with 24 players",
      "20|exact|player");
  /* a budget below 2 * players (8 players) */
  o = options;
  o.method = MEDINFER_SHAPLEY_PERMUTATION;
  o.budget = 15;
  BAD(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "budget 15 for 8 players",
      "budget");
  o.budget = 0;
  BAD(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "budget 0", "budget");
  /* evaluations beyond MEDINFER_SHAPLEY_MAX_EVALUATIONS: 2^16 coalitions x 17 rows =
   * 1,114,112; a permutation budget of 60,000 x 20 rows = 1,200,000; budget SIZE_MAX */
  medinfer_sequence_batch rows17 = good.background, rows20 = good.background;
  rows17.values = bg;
  rows17.batch = 17;
  rows17.max_steps = L;
  rows20.values = bg;
  rows20.batch = 20;
  rows20.max_steps = L;
  o = options;
  o.method = MEDINFER_SHAPLEY_EXACT;
  o.time_windows = 2;
  BAD(RUN(&good.sequence, &rows17, &o), MEDINFER_ERR_INVALID_ARGUMENT, "EXACT 16 players x 17 background rows",
      "1048576|1,048,576|evaluation");
  o.method = MEDINFER_SHAPLEY_AUTO;
  BAD(RUN(&good.sequence, &rows20, &o), MEDINFER_ERR_INVALID_ARGUMENT, "AUTO (EXACT) 16 players x 20 background rows",
      "1048576|1,048,576|evaluation");
  o.method = MEDINFER_SHAPLEY_PERMUTATION;
  o.budget = 60000;
  BAD(RUN(&good.sequence, &rows20, &o), MEDINFER_ERR_INVALID_ARGUMENT, "permutation budget 60000 x 20 rows",
      "1048576|1,048,576|evaluation");
  /* (the budget is rounded down to whole permutations of players - 1 evaluations: the
   * cost is what counts, so a budget just above the limit may be allowed) */
  o.time_windows = 1;
  o.budget = 1100000;
  BAD(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "permutation budget 1100000",
      "1048576|1,048,576|evaluation");
  o.budget = SIZE_MAX;
  BAD(RUN(&good.sequence, &rows20, &o), MEDINFER_ERR_INVALID_ARGUMENT, "permutation budget SIZE_MAX x 20 rows", NULL);
  /* the refusal names the limit it exceeds, not a budget "below 2 x players" */
  REFUSED(RUN(&good.sequence, &good.background, &o), MEDINFER_ERR_INVALID_ARGUMENT, "permutation budget SIZE_MAX",
          "1048576|1,048,576");
  CHECK_NOT_NEGATIVE("budget SIZE_MAX");
  CHECK(untouched(values, 64), "budget SIZE_MAX: written");

  /* the buffer: too small gives the counts and writes nothing */
  players = K = 0;
  REFUSED(medinfer_explain_sequence(ls, &good.sequence, &good.background, &options, NULL, 0, &players, &K),
          MEDINFER_ERR_BUFFER_TOO_SMALL, "values NULL, length 0", NULL);
  CHECK(players == 8 && K == 1, "BUFFER_TOO_SMALL: players %zu outputs %zu", players, K);
  players = K = 0;
  REFUSED(medinfer_explain_sequence(ls, &good.sequence, &good.background, &options, values, 8, &players, &K),
          MEDINFER_ERR_BUFFER_TOO_SMALL, "length 8 of 9", "9");
  CHECK(players == 8 && K == 1 && untouched(values, 64), "length 8 of 9: counts %zu/%zu, buffer written", players, K);
  CHECK_STATUS(medinfer_explain_sequence(ls, &good.sequence, &good.background, &options, values, 9, NULL, NULL),
               MEDINFER_OK, "out_players and out_outputs NULL");
  CHECK(values[9] == CANARY && values[8] != CANARY, "length 9: a value past it was written, or the base was not");
  fill_canary(values, 64);

  /* two-branch: the statics of both batches */
  const char *name = static_input_name(two);
  if (name) {
    float srow[STATIC_WIDTH], bg_rows[2 * STATIC_WIDTH];
    make_static_row(61, srow);
    make_static_row(62, bg_rows);
    make_static_row(63, bg_rows + STATIC_WIDTH);
    problem t = {two, ts, name, x, L, srow, reference, 1, 1, bg_rows};
    batches tb;
    make_batches(&t, &tb);
#define RUN2(seq, back) medinfer_explain_sequence(ts, (seq), (back), &options, values, 13, &players, &K)
    CHECK_STATUS(RUN2(&tb.sequence, &tb.background), MEDINFER_OK, "two-branch valid call");
    fill_canary(values, 64);
    back = tb.background;
    back.static_inputs = NULL;
    back.static_input_count = 0;
    BAD(RUN2(&tb.sequence, &back), MEDINFER_ERR_INVALID_ARGUMENT, "background static input missing", "static");
    seq = tb.sequence;
    seq.static_inputs = NULL;
    seq.static_input_count = 0;
    BAD(RUN2(&seq, &tb.background), MEDINFER_ERR_INVALID_ARGUMENT, "sequence static input missing", "static");
    medinfer_input_tensor narrow = {name, bg_rows, 3, 2, {1, 3}};
    back = tb.background;
    back.static_inputs = &narrow;
    BAD(RUN2(&tb.sequence, &back), MEDINFER_ERR_SHAPE_MISMATCH, "background static row of 3", "static|3");
    /* two background rows but one static row */
    medinfer_input_tensor one_row = {name, bg_rows, STATIC_WIDTH, 2, {1, STATIC_WIDTH}};
    back = tb.background;
    back.values = bg;
    back.batch = 2;
    back.max_steps = L;
    back.static_inputs = &one_row;
    REFUSED(RUN2(&tb.sequence, &back), MEDINFER_ERR_SHAPE_MISMATCH, "2 background rows, 1 static row", NULL);
    CHECK(untouched(values, 64), "2 background rows, 1 static row: written");
    fill_canary(values, 64);
    float bad_row[STATIC_WIDTH];
    memcpy(bad_row, srow, sizeof bad_row);
    bad_row[1] = NAN;
    medinfer_input_tensor nan_static = {name, bad_row, STATIC_WIDTH, 2, {1, STATIC_WIDTH}};
    seq = tb.sequence;
    seq.static_inputs = &nan_static;
    BAD(RUN2(&seq, &tb.background), MEDINFER_ERR_INVALID_ARGUMENT, "NaN in the sequence's static row", "nan|finite");
    back = tb.background;
    back.static_inputs = &nan_static;
    BAD(RUN2(&tb.sequence, &back), MEDINFER_ERR_INVALID_ARGUMENT, "NaN in the background's static row", "nan|finite");
    bad_row[1] = INFINITY;
    BAD(RUN2(&tb.sequence, &back), MEDINFER_ERR_INVALID_ARGUMENT, "Inf in the background's static row", "inf|finite");
    players = 0;
    REFUSED(medinfer_explain_sequence(ts, &tb.sequence, &tb.background, &options, values, 12, &players, &K),
            MEDINFER_ERR_BUFFER_TOO_SMALL, "two-branch: length 12 of 13", NULL);
    CHECK(players == 12 && untouched(values, 64), "two-branch BUFFER_TOO_SMALL: players %zu, or written", players);
#undef RUN2
  }

  /* not a sequence model */
  BAD(medinfer_explain_sequence(cs, &good.sequence, &good.background, &options, values, 9, &players, &K),
      MEDINFER_ERR_UNSUPPORTED, "a CNN session", NULL);
#undef RUN
#undef BAD
  free(poisoned);
  free(x2);
  free(bg);
  free(x);
done:
  medinfer_session_free(ls);
  medinfer_session_free(ts);
  medinfer_session_free(cs);
  medinfer_model_free(lstm);
  medinfer_model_free(two);
  medinfer_model_free(cnn);
}

/* ---- streams ---------------------------------------------------------------------------- */

static medinfer_stream *new_stream(const medinfer_model *model, size_t explain_steps, int32_t mode, size_t window,
                                   const float *static_row) {
  medinfer_stream_options options;
  medinfer_stream_options_init(&options);
  options.explain_steps = explain_steps;
  options.mode = mode;
  if (window) options.window = window;
  medinfer_stream *stream = NULL;
  CHECK_STATUS(medinfer_stream_create(model, &options, &stream), MEDINFER_OK, "stream_create");
  if (stream && static_row)
    CHECK_STATUS(medinfer_stream_set_static(stream, NULL, static_row, STATIC_WIDTH), MEDINFER_OK, "set_static");
  return stream;
}

static float push(const medinfer_model *model, medinfer_stream *stream, const float *sample) {
  float risk = NAN;
  CHECK_STATUS(medinfer_stream_push(model, stream, sample, FEATURES, &risk, 1, NULL), MEDINFER_OK, "push");
  return risk;
}

/* medinfer_stream_explain into a malloc'ed buffer of the right size. */
static int stream_explain(const medinfer_model *model, const medinfer_stream *stream, const float *reference,
                          const medinfer_shapley_options *options, double **values, size_t *players, size_t *K) {
  *values = NULL;
  *players = *K = 0;
  int status = medinfer_stream_explain(model, stream, reference, FEATURES, options, NULL, 0, players, K);
  if (status != MEDINFER_ERR_BUFFER_TOO_SMALL) return status;
  size_t n = (*players + 1) * *K;
  *values = malloc((n + 1) * sizeof(double));
  fill_canary(*values, n + 1);
  status = medinfer_stream_explain(model, stream, reference, FEATURES, options, *values, n, players, K);
  CHECK((*values)[n] == CANARY, "stream_explain wrote past its length");
  if (status != MEDINFER_OK) {
    free(*values);
    *values = NULL;
  }
  return status;
}

/* A stream with explain_steps 8: after 20 pushes its explanation (`windows` windows over
 * the 8 kept steps) equals the sequence explanation of those 20 steps (or of the last
 * `window` in window mode) with the reference as a one-step background, adds up to its
 * latest output, and changes nothing: 10 more pushes equal a twin stream's bit for bit. */
static void check_stream(const char *file, int32_t mode, size_t window, size_t windows) {
  medinfer_model *model = load_model(file);
  medinfer_session *session = NULL;
  if (!model) return;
  CHECK_STATUS(medinfer_session_create(model, &session), MEDINFER_OK, "session");
  const char *name = static_input_name(model);
  float row[STATIC_WIDTH];
  make_static_row(71, row);
  const size_t first = g_quick ? 10 : 20, steps = first + 10;
  float *x = make_sequence(72, steps);
  medinfer_stream *stream = new_stream(model, 8, mode, window, name ? row : NULL);
  medinfer_stream *twin = new_stream(model, 0, mode, window, name ? row : NULL);
  if (!stream || !twin || !session) goto done;
  float latest = NAN, twin_latest = NAN;
  for (size_t t = 0; t < first; t++) {
    latest = push(model, stream, x + t * FEATURES);
    twin_latest = push(model, twin, x + t * FEATURES);
  }
  CHECK(memcmp(&latest, &twin_latest, sizeof latest) == 0, "%s: explain_steps changes the outputs: %.9g vs %.9g", file,
        latest, twin_latest);
  /* the reference: each channel's mean over the steps so far */
  float reference[FEATURES] = {0};
  for (size_t t = 0; t < first; t++)
    for (size_t c = 0; c < FEATURES; c++) reference[c] += x[t * FEATURES + c] / (float)first;

  medinfer_shapley_options options;
  medinfer_shapley_options_init(&options);
  options.time_windows = windows;
  options.window_steps = 8 / windows;
  const size_t want = windows * FEATURES;
  double *values = NULL, *again = NULL;
  size_t players = 0, K = 0;
  CHECK_STATUS(stream_explain(model, stream, reference, &options, &values, &players, &K), MEDINFER_OK,
               "stream_explain");
  CHECK(players == want && K == 1, "%s stream: %zu players (expected %zu: statics are not players), %zu outputs", file,
        players, want, K);
  if (values && players == want && K == 1) {
    double add = additivity_error(values, players, K, &latest);
    CHECK(add <= TOLERANCE, "%s stream: base + values vs the latest output %.9g: %.3g", file, latest, add);
    /* the same steps as a sequence explanation; the statics are the background's too,
     * so the static players (first) are dummies */
    size_t begin = (mode == MEDINFER_STREAM_WINDOW && window < first) ? first - window : 0;
    problem p = {model, session, name, x + begin * FEATURES, first - begin, name ? row : NULL, reference, 1, 1,
                 name ? row : NULL};
    double *seq_values = NULL;
    size_t seq_players = 0, seq_K = 0;
    /* exact on both sides (4 statics + 16 channels would be sampled under AUTO) */
    medinfer_shapley_options exact = options;
    exact.method = MEDINFER_SHAPLEY_EXACT;
    double *exact_values = values;
    if (name && windows > 1) { /* 2^20 coalitions is too many for a test: 1 window of 8 steps */
      exact.time_windows = 1;
      exact.window_steps = 8;
      CHECK_STATUS(stream_explain(model, stream, reference, &exact, &exact_values, &players, &K), MEDINFER_OK,
                   "stream explanation, 1 window of 8 steps");
    }
    size_t channels = exact.time_windows * FEATURES;
    CHECK_STATUS(explain(&p, &exact, &seq_values, &seq_players, &seq_K), MEDINFER_OK, "the sequence explanation");
    size_t statics = name ? STATIC_WIDTH : 0;
    if (seq_values && exact_values && seq_players == statics + channels && players == channels) {
      double d = max_diff(exact_values, seq_values + statics, channels);
      d = fmax(d, fabs(exact_values[channels] - seq_values[seq_players]));
      CHECK(d <= TOLERANCE, "%s: stream explanation vs explain_sequence of steps %zu..%zu: max diff %.3g", file, begin,
            first - 1, d);
      size_t top = 0;
      for (size_t i = 1; i < want; i++)
        if (fabs(values[i]) > fabs(values[top])) top = i;
      printf("%s stream (%s): %zu players, additivity %.2g, = explain_sequence of steps %zu..%zu (%zu players) within "
             "%.2g; largest: %s in window %zu, %+.4f\n",
             file, mode == MEDINFER_STREAM_WINDOW ? "window" : "exact", want, add, begin, first - 1, channels, d,
             kChannel[top % FEATURES], top / FEATURES + 1, values[top]);
    }
    if (exact_values != values) free(exact_values);
    free(seq_values);
    /* asked twice: the same values */
    CHECK_STATUS(stream_explain(model, stream, reference, &options, &again, &players, &K), MEDINFER_OK, "again");
    if (again) CHECK(memcmp(values, again, (want + 1) * sizeof(double)) == 0, "%s: a second explanation differs", file);
    free(again);
    again = NULL;
    /* permutation and the other shapes of options */
    options.method = MEDINFER_SHAPLEY_PERMUTATION;
    options.budget = 64;
    CHECK_STATUS(stream_explain(model, stream, reference, &options, &again, &players, &K), MEDINFER_OK,
                 "stream permutation");
    if (again) CHECK(additivity_error(again, players, K, &latest) <= TOLERANCE, "%s: stream permutation additivity", file);
    free(again);
    again = NULL;
    options.method = MEDINFER_SHAPLEY_AUTO;
    options.time_windows = 1;
    options.window_steps = 8;
    CHECK_STATUS(stream_explain(model, stream, reference, &options, &again, &players, &K), MEDINFER_OK,
                 "1 window of all 8 kept steps");
    if (again) CHECK(players == 8 && additivity_error(again, players, K, &latest) <= TOLERANCE, "8 steps: additivity");
    /* NULL options: the defaults (one window; window_steps 0 = the steps kept) */
    double *defaults = NULL;
    CHECK_STATUS(stream_explain(model, stream, reference, NULL, &defaults, &players, &K), MEDINFER_OK,
                 "stream_explain, options NULL");
    if (defaults && again) {
      CHECK(players == 8 && additivity_error(defaults, players, K, &latest) <= TOLERANCE, "options NULL: additivity");
      CHECK(memcmp(defaults, again, 9 * sizeof(double)) == 0,
            "%s: options NULL differs from 1 window of the 8 kept steps", file);
    }
    free(defaults);
    free(again);
    again = NULL;
  }
  free(values);

  /* refusals on this stream, which must leave it as it was */
  options.time_windows = 3;
  options.window_steps = 4;
  double buffer[64];
  fill_canary(buffer, 64);
  REFUSED(medinfer_stream_explain(model, stream, reference, FEATURES, &options, buffer, 64, &players, &K),
          MEDINFER_ERR_INVALID_ARGUMENT, "12 steps asked, 8 kept", "explain_steps|8|12|step");
  CHECK(untouched(buffer, 64), "12 of 8 steps: written");

  /* 10 more pushes: bit for bit the twin's */
  size_t differing = 0;
  for (size_t t = first; t < steps; t++) {
    float a = push(model, stream, x + t * FEATURES), b = push(model, twin, x + t * FEATURES);
    differing += memcmp(&a, &b, sizeof a) != 0;
  }
  CHECK(differing == 0, "%s: %zu of 10 outputs after explaining differ from a twin that never explained", file,
        differing);
done:
  medinfer_stream_free(stream);
  medinfer_stream_free(twin);
  free(x);
  medinfer_session_free(session);
  medinfer_model_free(model);
}

static void test_stream_arguments(void) {
  medinfer_model *lstm = load_model("icu_lstm.onnx");
  medinfer_model *lstm_again = load_model("icu_lstm.onnx");
  medinfer_model *gru = load_model("icu_gru_fused.onnx");
  if (!lstm || !lstm_again || !gru) goto done;
  float *x = make_sequence(81, 12);
  float reference[FEATURES];
  typical_sample(reference);
  medinfer_shapley_options options;
  medinfer_shapley_options_init(&options);
  options.window_steps = 4;
  double values[64];
  size_t players = 0, K = 0;
  fill_canary(values, 64);
#define BAD(call, want, what, words)                                          \
  do {                                                                        \
    REFUSED(call, want, what, words);                                         \
    CHECK(untouched(values, 64), "%s: the values buffer was written", what); \
    fill_canary(values, 64);                                                  \
  } while (0)

  /* explain_steps at creation */
  medinfer_stream_options so;
  medinfer_stream_options_init(&so);
  medinfer_stream *stream = NULL;
  so.explain_steps = 4097;
  REFUSED(medinfer_stream_create(lstm, &so, &stream), MEDINFER_ERR_INVALID_ARGUMENT, "explain_steps 4097",
          "explain_steps|4096");
  CHECK(stream == NULL, "explain_steps 4097 left a stream");
  so.explain_steps = SIZE_MAX;
  REFUSED(medinfer_stream_create(lstm, &so, &stream), MEDINFER_ERR_INVALID_ARGUMENT, "explain_steps SIZE_MAX",
          "explain_steps|4096");
  so.explain_steps = 4096;
  CHECK_STATUS(medinfer_stream_create(lstm, &so, &stream), MEDINFER_OK, "explain_steps 4096");
  medinfer_stream_free(stream);
  stream = NULL;
  /* an options struct from before explain_steps: the default (0) */
  so.struct_size = offsetof(medinfer_stream_options, explain_steps);
  so.explain_steps = 8; /* beyond struct_size: must not be read */
  medinfer_stream *old = NULL;
  CHECK_STATUS(medinfer_stream_create(lstm, &so, &old), MEDINFER_OK, "stream options of the 0.1.0 size");

  medinfer_stream *none = new_stream(lstm, 0, MEDINFER_STREAM_AUTO, 0, NULL);
  medinfer_stream *kept = new_stream(lstm, 8, MEDINFER_STREAM_AUTO, 0, NULL);
  medinfer_stream *gru_stream = new_stream(gru, 8, MEDINFER_STREAM_AUTO, 0, NULL);
  if (!old || !none || !kept || !gru_stream) goto free_streams;
  for (size_t t = 0; t < 3; t++) {
    push(lstm, old, x + t * FEATURES);
    push(lstm, none, x + t * FEATURES);
    push(lstm, kept, x + t * FEATURES);
    push(gru, gru_stream, x + t * FEATURES);
  }
  options.window_steps = 2;
#define EXPLAIN(model, stream, ref, count, opts) \
  medinfer_stream_explain((model), (stream), (ref), (count), (opts), values, 64, &players, &K)
  CHECK_STATUS(EXPLAIN(lstm, kept, reference, FEATURES, &options), MEDINFER_OK, "2 of 3 consumed steps");
  CHECK(players == 8 && K == 1, "2 steps: players %zu outputs %zu", players, K);
  fill_canary(values, 64);
  BAD(EXPLAIN(lstm, none, reference, FEATURES, &options), MEDINFER_ERR_INVALID_ARGUMENT, "explain_steps 0",
      "explain_steps");
  BAD(EXPLAIN(lstm, old, reference, FEATURES, &options), MEDINFER_ERR_INVALID_ARGUMENT,
      "0.1.0 options (explain_steps past struct_size)", "explain_steps");
  options.window_steps = 4;
  BAD(EXPLAIN(lstm, kept, reference, FEATURES, &options), MEDINFER_ERR_INVALID_ARGUMENT, "4 steps, 3 consumed",
      "step|consumed");
  options.window_steps = 2;
  BAD(EXPLAIN(NULL, kept, reference, FEATURES, &options), MEDINFER_ERR_INVALID_ARGUMENT, "model NULL", "model|null");
  BAD(EXPLAIN(lstm, NULL, reference, FEATURES, &options), MEDINFER_ERR_INVALID_ARGUMENT, "stream NULL",
      "stream|null");
  BAD(EXPLAIN(lstm, kept, NULL, FEATURES, &options), MEDINFER_ERR_INVALID_ARGUMENT, "reference NULL",
      "reference|null");
  BAD(EXPLAIN(lstm_again, kept, reference, FEATURES, &options), MEDINFER_ERR_INVALID_ARGUMENT,
      "another load of the same file", "model|stream");
  BAD(EXPLAIN(lstm, gru_stream, reference, FEATURES, &options), MEDINFER_ERR_INVALID_ARGUMENT,
      "a GRU stream with the LSTM", "model|stream");
  BAD(EXPLAIN(lstm, kept, reference, 7, &options), MEDINFER_ERR_SHAPE_MISMATCH, "7 reference values", "7|8|feature");
  BAD(EXPLAIN(lstm, kept, reference, 9, &options), MEDINFER_ERR_SHAPE_MISMATCH, "9 reference values", "9|8|feature");
  float bad_reference[FEATURES];
  memcpy(bad_reference, reference, sizeof reference);
  bad_reference[4] = NAN;
  BAD(EXPLAIN(lstm, kept, bad_reference, FEATURES, &options), MEDINFER_ERR_INVALID_ARGUMENT, "NaN reference",
      "nan|finite");
  bad_reference[4] = -INFINITY;
  BAD(EXPLAIN(lstm, kept, bad_reference, FEATURES, &options), MEDINFER_ERR_INVALID_ARGUMENT, "-Inf reference",
      "inf|finite");
  medinfer_shapley_options o = options;
  o.struct_size = offsetof(medinfer_shapley_options, time_windows);
  BAD(EXPLAIN(lstm, kept, reference, FEATURES, &o), MEDINFER_ERR_INVALID_ARGUMENT, "options struct_size too small",
      "struct_size");
  o = options;
  o.reserved = -1;
  BAD(EXPLAIN(lstm, kept, reference, FEATURES, &o), MEDINFER_ERR_INVALID_ARGUMENT, "reserved -1", "reserved");
  o = options;
  o.method = 7;
  BAD(EXPLAIN(lstm, kept, reference, FEATURES, &o), MEDINFER_ERR_INVALID_ARGUMENT, "method 7", "method");
  o = options;
  o.method = MEDINFER_SHAPLEY_PERMUTATION;
  o.budget = 10;
  BAD(EXPLAIN(lstm, kept, reference, FEATURES, &o), MEDINFER_ERR_INVALID_ARGUMENT, "budget 10 for 8 players",
      "budget");
  o.budget = 1100000;
  BAD(EXPLAIN(lstm, kept, reference, FEATURES, &o), MEDINFER_ERR_INVALID_ARGUMENT, "budget over the evaluation limit",
      "1048576|1,048,576|evaluation");
  o = options;
  o.time_windows = 0;
  BAD(EXPLAIN(lstm, kept, reference, FEATURES, &o), MEDINFER_ERR_INVALID_ARGUMENT, "time_windows 0", "window");
  o.time_windows = SIZE_MAX;
  o.window_steps = SIZE_MAX;
  BAD(EXPLAIN(lstm, kept, reference, FEATURES, &o), MEDINFER_ERR_INVALID_ARGUMENT, "SIZE_MAX x SIZE_MAX steps", NULL);
  /* buffer */
  players = K = 0;
  REFUSED(medinfer_stream_explain(lstm, kept, reference, FEATURES, &options, NULL, 0, &players, &K),
          MEDINFER_ERR_BUFFER_TOO_SMALL, "stream: values NULL", NULL);
  CHECK(players == 8 && K == 1, "stream BUFFER_TOO_SMALL: %zu players, %zu outputs", players, K);
  REFUSED(medinfer_stream_explain(lstm, kept, reference, FEATURES, &options, values, 8, &players, &K),
          MEDINFER_ERR_BUFFER_TOO_SMALL, "stream: length 8 of 9", "9");
  CHECK(untouched(values, 64), "stream length 8 of 9: written");
  {
    int status = medinfer_stream_explain(lstm, kept, reference, FEATURES, &options, NULL, 9, &players, &K);
    CHECK(status == MEDINFER_ERR_INVALID_ARGUMENT || status == MEDINFER_ERR_BUFFER_TOO_SMALL,
          "stream: values NULL with length 9: %s", medinfer_status_name(status));
    CHECK(medinfer_last_error()[0] != '\0', "stream: values NULL with length 9: no message");
  }

  /* after a reset: nothing consumed */
  CHECK_STATUS(medinfer_stream_reset(kept), MEDINFER_OK, "reset");
  BAD(EXPLAIN(lstm, kept, reference, FEATURES, &options), MEDINFER_ERR_INVALID_ARGUMENT, "explain after reset",
      "step|consumed");
  push(lstm, kept, x);
  options.window_steps = 1;
  CHECK_STATUS(EXPLAIN(lstm, kept, reference, FEATURES, &options), MEDINFER_OK, "1 step after reset");
  /* a window-mode stream whose window is shorter than the explained steps: a status
   * either way (the header does not say), never a crash */
  {
    medinfer_stream *short_window = NULL;
    medinfer_stream_options wo;
    medinfer_stream_options_init(&wo);
    wo.mode = MEDINFER_STREAM_WINDOW;
    wo.window = 4;
    wo.explain_steps = 8;
    int status = medinfer_stream_create(lstm, &wo, &short_window);
    if (status == MEDINFER_OK) {
      for (size_t t = 0; t < 10; t++) push(lstm, short_window, x + t * FEATURES);
      options.window_steps = 8;
      status = EXPLAIN(lstm, short_window, reference, FEATURES, &options);
      printf("window-mode stream, window 4, explain_steps 8: 8 steps explained: %s%s%s\n", medinfer_status_name(status),
             status ? ": " : "", status ? medinfer_last_error() : "");
      CHECK(status == MEDINFER_OK || status == MEDINFER_ERR_INVALID_ARGUMENT, "window 4, 8 steps: %s",
            medinfer_status_name(status));
    } else {
      printf("window-mode stream, window 4, explain_steps 8: create refused: %s\n", medinfer_last_error());
      CHECK(status == MEDINFER_ERR_INVALID_ARGUMENT, "window 4 with explain_steps 8: %s", medinfer_status_name(status));
    }
    medinfer_stream_free(short_window);
  }
#undef EXPLAIN
#undef BAD
free_streams:
  medinfer_stream_free(old);
  medinfer_stream_free(none);
  medinfer_stream_free(kept);
  medinfer_stream_free(gru_stream);
  free(x);
done:
  medinfer_model_free(lstm);
  medinfer_model_free(lstm_again);
  medinfer_model_free(gru);
}

/* Two threads, each pushing and explaining its own streams of one shared model (the
 * explanations borrow pooled sessions of the model): the results equal one thread's, bit
 * for bit. */
#define THREAD_STREAMS 2
#define THREAD_STEPS 16
typedef struct {
  const medinfer_model *model;
  float *x[THREAD_STREAMS]; /* made before the threads start: make_sequence is not thread-safe */
  double values[THREAD_STREAMS][THREAD_STEPS / 4][9];
  int failures;
} explain_worker;

static void *explain_streams(void *arg) {
  explain_worker *w = arg;
  medinfer_stream *streams[THREAD_STREAMS] = {0};
  float reference[FEATURES];
  typical_sample(reference);
  medinfer_shapley_options options;
  medinfer_shapley_options_init(&options);
  options.window_steps = 4;
  if (g_quick) { /* 16 evaluations instead of 256 */
    options.method = MEDINFER_SHAPLEY_PERMUTATION;
    options.budget = 16;
  }
  medinfer_stream_options so;
  medinfer_stream_options_init(&so);
  so.explain_steps = 4;
  for (size_t s = 0; s < THREAD_STREAMS; s++)
    if (medinfer_stream_create(w->model, &so, &streams[s]) != MEDINFER_OK) w->failures++;
  for (size_t t = 0; t < THREAD_STEPS; t++)
    for (size_t s = 0; s < THREAD_STREAMS; s++) {
      if (!streams[s]) continue;
      float risk;
      if (medinfer_stream_push(w->model, streams[s], w->x[s] + t * FEATURES, FEATURES, &risk, 1, NULL) != MEDINFER_OK)
        w->failures++;
      if (t % 4 == 3 &&
          medinfer_stream_explain(w->model, streams[s], reference, FEATURES, &options, w->values[s][t / 4], 9, NULL,
                                  NULL) != MEDINFER_OK)
        w->failures++;
    }
  for (size_t s = 0; s < THREAD_STREAMS; s++) medinfer_stream_free(streams[s]);
  return NULL;
}

static void test_stream_threads(void) {
  medinfer_model *model = load_model("icu_lstm.onnx");
  if (!model) return;
  enum { kThreads = 2 };
  static explain_worker single[kThreads], threaded[kThreads];
  for (size_t i = 0; i < kThreads; i++) {
    memset(&single[i], 0, sizeof single[i]);
    single[i].model = model;
    for (size_t s = 0; s < THREAD_STREAMS; s++) single[i].x[s] = make_sequence(900 + 10 * i + s, THREAD_STEPS);
    threaded[i] = single[i];
    explain_streams(&single[i]);
    CHECK(single[i].failures == 0, "one thread: %d failed calls", single[i].failures);
  }
  pthread_t threads[kThreads];
  int started[kThreads] = {0};
  for (size_t i = 0; i < kThreads; i++) {
    started[i] = pthread_create(&threads[i], NULL, explain_streams, &threaded[i]) == 0;
    CHECK(started[i], "pthread_create");
  }
  for (size_t i = 0; i < kThreads; i++)
    if (started[i]) pthread_join(threads[i], NULL);
  for (size_t i = 0; i < kThreads; i++) {
    CHECK(threaded[i].failures == 0, "thread %zu: %d failed calls", i, threaded[i].failures);
    CHECK(memcmp(single[i].values, threaded[i].values, sizeof single[i].values) == 0,
          "thread %zu: explanations differ from one thread's", i);
    for (size_t s = 0; s < THREAD_STREAMS; s++) free(single[i].x[s]);
  }
  printf("icu_lstm: %d threads x %d streams pushing and explaining = one thread, bit for bit\n", kThreads,
         THREAD_STREAMS);
  medinfer_model_free(model);
}

/* ---- images --------------------------------------------------------------------------- */

#define IMAGE_W 40
#define IMAGE_H 30

static void make_image(uint8_t *pixels, int uniform) {
  for (size_t y = 0; y < IMAGE_H; y++)
    for (size_t x = 0; x < IMAGE_W; x++) {
      uint8_t *p = pixels + (y * IMAGE_W + x) * 3;
      if (uniform) {
        p[0] = 180, p[1] = 120, p[2] = 100;
        continue;
      }
      /* a dark blob right of centre on skin-coloured, shaded background */
      double dx = (double)x - 26, dy = (double)y - 12;
      int blob = dx * dx / 64 + dy * dy / 36 < 1;
      p[0] = (uint8_t)(blob ? 70 + x : 200 - y);
      p[1] = (uint8_t)(blob ? 40 + y : 150 - x / 2);
      p[2] = (uint8_t)(blob ? 30 : 120 + (x * y) % 40);
    }
}

/* medinfer_explain_image into buffers of the right size; pixels too when `with_pixels`. */
static int image_explain(medinfer_session *session, const medinfer_image *image,
                         const medinfer_image_explain_options *options, int with_pixels, double **values,
                         float **pixels, size_t *segments, size_t *K) {
  *values = NULL;
  *pixels = NULL;
  *segments = *K = 0;
  int status = medinfer_explain_image(session, image, options, NULL, 0, NULL, 0, segments, K);
  if (status != MEDINFER_ERR_BUFFER_TOO_SMALL) return status;
  size_t n = (*segments + 1) * *K, np = with_pixels ? image->width * image->height * *K : 0;
  *values = malloc((n + 1) * sizeof(double));
  fill_canary(*values, n + 1);
  if (with_pixels) {
    *pixels = malloc((np + 1) * sizeof(float));
    for (size_t i = 0; i <= np; i++) (*pixels)[i] = (float)CANARY;
  }
  status = medinfer_explain_image(session, image, options, *values, n, *pixels, np, segments, K);
  CHECK((*values)[n] == CANARY && (!with_pixels || (*pixels)[np] == (float)CANARY),
        "explain_image wrote past a buffer");
  if (status != MEDINFER_OK) {
    free(*values);
    free(*pixels);
    *values = NULL;
    *pixels = NULL;
  }
  return status;
}

static void test_image(void) {
  medinfer_model *cnn = load_model("skin_cnn_300.onnx");
  medinfer_model *lstm = load_model("icu_lstm.onnx");
  medinfer_session *session = NULL, *ls = NULL;
  double *grid_values = NULL;
  if (!cnn || !lstm) goto done;
  CHECK_STATUS(medinfer_session_create(cnn, &session), MEDINFER_OK, "cnn session");
  CHECK_STATUS(medinfer_session_create(lstm, &ls), MEDINFER_OK, "lstm session");
  if (!session || !ls) goto done;
  static uint8_t pixels[IMAGE_W * IMAGE_H * 3], flat[IMAGE_W * IMAGE_H * 3];
  make_image(pixels, 0);
  make_image(flat, 1);
  medinfer_image image = {sizeof(medinfer_image), pixels, IMAGE_W, IMAGE_H, IMAGE_W * 3, MEDINFER_PIXELS_RGB, 0};
  float probabilities[8];
  size_t count = 0;
  CHECK_STATUS(medinfer_classify_image(session, &image, probabilities, 8, &count), MEDINFER_OK, "classify_image");
  CHECK(count == 5, "classify_image: %zu values", count);

  /* exact over a 2 x 2 grid (quick mode, where a CNN run takes seconds: 1 x 2) */
  const size_t GR = g_quick ? 1 : 2, GC = 2, NSEG = GR * GC;
  medinfer_image_explain_options options;
  medinfer_image_explain_options_init(&options);
  options.grid_rows = GR;
  options.grid_cols = GC;
  options.method = MEDINFER_SHAPLEY_EXACT;

  /* the BUFFER_TOO_SMALL protocol: NULL buffers give the counts */
  size_t segments = 0, K = 0;
  REFUSED(medinfer_explain_image(session, &image, &options, NULL, 0, NULL, 0, &segments, &K),
          MEDINFER_ERR_BUFFER_TOO_SMALL, "image: NULL buffers", NULL);
  CHECK(segments == NSEG && K == 5, "image BUFFER_TOO_SMALL: %zu segments (expected %zu), %zu outputs (expected 5)",
        segments, NSEG, K);

  /* with the per-pixel map */
  double *values = NULL;
  float *map = NULL;
  CHECK_STATUS(image_explain(session, &image, &options, 1, &values, &map, &segments, &K), MEDINFER_OK,
               "image EXACT over a grid");
  grid_values = values;
  if (values && segments == NSEG && K == 5) {
    double add = additivity_error(values, NSEG, 5, probabilities);
    CHECK(add <= TOLERANCE, "image %zu x %zu EXACT: additivity %.3g", GR, GC, add);
    double spread = 0;
    for (size_t i = 0; i < NSEG * 5; i++) spread = fmax(spread, fabs(values[i]));
    CHECK(spread > 1e-4, "image: every segment value ~0 (%.3g): a vacuous test", spread);
    /* every pixel holds its segment's values: the grid's cells, labelled row-major */
    size_t wrong = 0;
    for (size_t y = 0; y < IMAGE_H; y++)
      for (size_t x = 0; x < IMAGE_W; x++) {
        size_t s = (y * GR / IMAGE_H) * GC + x * GC / IMAGE_W;
        for (size_t k = 0; k < 5; k++) wrong += map[(y * IMAGE_W + x) * 5 + k] != (float)values[s * 5 + k];
      }
    CHECK(wrong == 0, "pixel_values: %zu of %d values are not their cell's segment value", wrong,
          IMAGE_W * IMAGE_H * 5);
    printf("skin_cnn_300 image 40x30, grid %zux%zu EXACT: additivity %.2g over 5 classes, pixel map = segment values\n",
           GR, GC, add);
  }
  free(map);
  map = NULL;

  /* the caller's segmentation equal to the grid gives the grid's values */
  static int32_t labels[IMAGE_W * IMAGE_H];
  for (size_t y = 0; y < IMAGE_H; y++)
    for (size_t x = 0; x < IMAGE_W; x++) labels[y * IMAGE_W + x] = (int32_t)((y * 2 / IMAGE_H) * 2 + x * 2 / IMAGE_W);
  medinfer_image_explain_options custom = options;
  custom.segments = labels;
  custom.segment_count = 4;
  /* Quick mode (ASan, valgrind: a CNN run takes seconds) stops at the one explanation
   * above and the refusals, which compute nothing. */
  if (!g_quick) {
    CHECK_STATUS(image_explain(session, &image, &custom, 0, &values, &map, &segments, &K), MEDINFER_OK,
                 "segments = the 2 x 2 grid");
    if (values && grid_values && segments == 4)
      CHECK(max_diff(values, grid_values, 25) <= 1e-9, "custom segments equal to the grid: max diff %.3g",
            max_diff(values, grid_values, 25));
    free(values);

    /* three irregular segments: additivity */
    for (size_t y = 0; y < IMAGE_H; y++)
      for (size_t x = 0; x < IMAGE_W; x++) labels[y * IMAGE_W + x] = (int32_t)(x < 10 ? 0 : (x + y) % 2 ? 1 : 2);
    custom.segment_count = 3;
    CHECK_STATUS(image_explain(session, &image, &custom, 1, &values, &map, &segments, &K), MEDINFER_OK,
                 "3 irregular segments");
    if (values && segments == 3)
      CHECK(additivity_error(values, 3, 5, probabilities) <= TOLERANCE, "3 segments: additivity");
    free(values);
    free(map);
    map = NULL;
    /* blur masker, permutation */
    medinfer_image_explain_options o = options;
    o.masker = MEDINFER_MASK_BLUR;
    CHECK_STATUS(image_explain(session, &image, &o, 0, &values, &map, &segments, &K), MEDINFER_OK, "BLUR 2 x 2");
    if (values) CHECK(additivity_error(values, 4, 5, probabilities) <= TOLERANCE, "BLUR: additivity");
    free(values);
    o.blur_radius = 3;
    CHECK_STATUS(image_explain(session, &image, &o, 0, &values, &map, &segments, &K), MEDINFER_OK, "BLUR radius 3");
    if (values) CHECK(additivity_error(values, 4, 5, probabilities) <= TOLERANCE, "BLUR radius 3: additivity");
    free(values);
    o = options;
    o.method = MEDINFER_SHAPLEY_PERMUTATION;
    o.budget = 8;
    o.seed = 3;
    double *again = NULL;
    CHECK_STATUS(image_explain(session, &image, &o, 0, &values, &map, &segments, &K), MEDINFER_OK,
                 "permutation, budget 8");
    CHECK_STATUS(image_explain(session, &image, &o, 0, &again, &map, &segments, &K), MEDINFER_OK,
                 "permutation, budget 8, again");
    if (values) CHECK(additivity_error(values, 4, 5, probabilities) <= TOLERANCE, "image permutation: additivity");
    if (values && again) CHECK(memcmp(values, again, 25 * sizeof(double)) == 0, "image permutation: same seed differs");
    free(values);
    free(again);
    /* a uniform image: the mean colour is the image, every segment a dummy */
    medinfer_image uniform = image;
    uniform.pixels = flat;
    float flat_probabilities[8];
    CHECK_STATUS(medinfer_classify_image(session, &uniform, flat_probabilities, 8, &count), MEDINFER_OK, "classify");
    CHECK_STATUS(image_explain(session, &uniform, &options, 0, &values, &map, &segments, &K), MEDINFER_OK,
                 "uniform image");
    if (values && segments == 4) {
      double most = 0;
      for (size_t i = 0; i < 20; i++) most = fmax(most, fabs(values[i]));
      CHECK(most <= 1e-6, "uniform image, mean masker: segment values should be 0, max %.3g", most);
      CHECK(additivity_error(values, 4, 5, flat_probabilities) <= TOLERANCE, "uniform image: additivity");
    }
    free(values);
    /* grey and RGBA images, a padded stride */
    static uint8_t rgba[IMAGE_W * IMAGE_H * 4 + 64];
    for (size_t i = 0; i < IMAGE_W * IMAGE_H; i++) {
      memcpy(rgba + i * 4, pixels + i * 3, 3);
      rgba[i * 4 + 3] = 7;
    }
    medinfer_image four = {sizeof four, rgba, IMAGE_W, IMAGE_H, IMAGE_W * 4, MEDINFER_PIXELS_RGBA, 0};
    CHECK_STATUS(image_explain(session, &four, &options, 0, &values, &map, &segments, &K), MEDINFER_OK, "RGBA image");
    if (values && grid_values)
      CHECK(max_diff(values, grid_values, 25) <= 1e-9, "RGBA differs from RGB: %.3g", max_diff(values, grid_values, 25));
    free(values);
  }

  /* bad arguments (against a 2 x 2 grid: 4 segments, 25 values) */
  options.grid_rows = options.grid_cols = 2;
  double buffer[64];
  float pixbuf[IMAGE_W * IMAGE_H * 5 + 1];
  for (size_t i = 0; i < sizeof pixbuf / sizeof pixbuf[0]; i++) pixbuf[i] = (float)CANARY;
  fill_canary(buffer, 64);
#define IMG(sess, img, opts) medinfer_explain_image((sess), (img), (opts), buffer, 64, NULL, 0, &segments, &K)
#define BAD(call, want, what, words)                                          \
  do {                                                                        \
    REFUSED(call, want, what, words);                                         \
    CHECK(untouched(buffer, 64), "%s: the values buffer was written", what); \
    fill_canary(buffer, 64);                                                  \
  } while (0)
  BAD(IMG(NULL, &image, &options), MEDINFER_ERR_INVALID_ARGUMENT, "image: session NULL", "session|null");
  BAD(IMG(session, NULL, &options), MEDINFER_ERR_INVALID_ARGUMENT, "image NULL", "image|null");
  BAD(IMG(ls, &image, &options), MEDINFER_ERR_UNSUPPORTED, "an LSTM session", NULL);
  medinfer_image bad_image = image;
  bad_image.struct_size = 0;
  BAD(IMG(session, &bad_image, &options), MEDINFER_ERR_INVALID_ARGUMENT, "image struct_size 0", "struct_size");
  bad_image = image;
  bad_image.format = 9;
  BAD(IMG(session, &bad_image, &options), MEDINFER_ERR_INVALID_ARGUMENT, "image format 9", "format");
  bad_image = image;
  bad_image.stride = IMAGE_W * 3 - 1;
  BAD(IMG(session, &bad_image, &options), MEDINFER_ERR_INVALID_ARGUMENT, "stride too small", "stride");
  bad_image = image;
  bad_image.width = 0;
  BAD(IMG(session, &bad_image, &options), MEDINFER_ERR_INVALID_ARGUMENT, "width 0", "width|size");

  medinfer_image_explain_options o;
  size_t small_sizes[] = {0, sizeof(size_t), offsetof(medinfer_image_explain_options, seed)};
  for (size_t i = 0; i < 3; i++) {
    o = options;
    o.struct_size = small_sizes[i];
    char what[64];
    snprintf(what, sizeof what, "image options struct_size %zu", small_sizes[i]);
    BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, what, "struct_size");
  }
  o = options;
  o.masker = 2;
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "masker 2", "masker");
  o.masker = -1;
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "masker -1", "masker");
  o = options;
  o.method = 3;
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "image method 3", "method");
  o = options;
  o.grid_rows = IMAGE_H + 1;
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "grid of 31 rows on 30 rows", "grid");
  o = options;
  o.grid_cols = IMAGE_W + 1;
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "grid of 41 columns on 40", "grid");
  o = options;
  o.grid_rows = 0;
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "grid of 0 rows", "grid");
  o = options;
  o.grid_rows = SIZE_MAX;
  o.grid_cols = SIZE_MAX;
  REFUSED(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "grid SIZE_MAX x SIZE_MAX", "grid");
  CHECK_NOT_NEGATIVE("grid SIZE_MAX x SIZE_MAX");
  CHECK(untouched(buffer, 64), "grid SIZE_MAX: written");
  o.method = MEDINFER_SHAPLEY_PERMUTATION;
  o.grid_rows = o.grid_cols = 2;
  o.budget = SIZE_MAX;
  REFUSED(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "image budget SIZE_MAX", "1048576|1,048,576");
  CHECK_NOT_NEGATIVE("image budget SIZE_MAX");
  CHECK(untouched(buffer, 64), "image budget SIZE_MAX: written");
  o = options;
  o.grid_rows = 5;
  o.grid_cols = 5; /* 25 players */
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "EXACT with 25 segments", "20|exact|segment|player");
  o = options;
  o.method = MEDINFER_SHAPLEY_PERMUTATION;
  o.budget = 7;
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "image budget 7 for 4 segments", "budget");
  o.budget = 1100000;
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "image budget over the limit",
      "1048576|1,048,576|evaluation");
  /* the caller's segments */
  for (size_t i = 0; i < IMAGE_W * IMAGE_H; i++) labels[i] = (int32_t)(i % 4);
  o = options;
  o.segments = labels;
  o.segment_count = 0;
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "segment_count 0 with segments", "segment");
  o.segment_count = 3; /* label 3 out of range */
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "label 3 with 3 segments", "label|segment");
  o.segment_count = 5; /* label 4 unused */
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "label 4 unused", "label|segment|unused");
  labels[17] = -1;
  o.segment_count = 4;
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "label -1", "label|segment");
  labels[17] = INT32_MAX;
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "label INT32_MAX", "label|segment");
  labels[17] = 1;
  o.segment_count = 21; /* more than the labels used: unused */
  BAD(IMG(session, &image, &o), MEDINFER_ERR_INVALID_ARGUMENT, "segment_count 21, 4 labels used", NULL);
  /* buffers */
  segments = K = 0;
  REFUSED(medinfer_explain_image(session, &image, &options, buffer, 24, NULL, 0, &segments, &K),
          MEDINFER_ERR_BUFFER_TOO_SMALL, "segment_length 24 of 25", "25");
  CHECK(segments == 4 && K == 5 && untouched(buffer, 64), "segment_length 24: counts %zu/%zu or written", segments, K);
  REFUSED(medinfer_explain_image(session, &image, &options, buffer, 25, pixbuf, IMAGE_W * IMAGE_H * 5 - 1, &segments,
                                 &K),
          MEDINFER_ERR_BUFFER_TOO_SMALL, "pixel_length one short", "6000|pixel");
  CHECK(untouched(buffer, 64), "pixel_length one short: segment values written");
  size_t pixels_touched = 0;
  for (size_t i = 0; i < sizeof pixbuf / sizeof pixbuf[0]; i++) pixels_touched += pixbuf[i] != (float)CANARY;
  CHECK(pixels_touched == 0, "pixel_length one short: %zu pixel values written", pixels_touched);
  fill_canary(buffer, 64);
  /* NULL with a length: segment values refused (INVALID_ARGUMENT or no buffer at all);
   * pixel values are optional: refused, or not written */
  {
    int status = medinfer_explain_image(session, &image, &options, NULL, 25, NULL, 0, &segments, &K);
    CHECK(status == MEDINFER_ERR_INVALID_ARGUMENT || status == MEDINFER_ERR_BUFFER_TOO_SMALL,
          "segment_values NULL with length 25: %s", medinfer_status_name(status));
    CHECK(medinfer_last_error()[0] != '\0', "segment_values NULL with length 25: no message");
    if (!g_quick) { /* computed when accepted */
      status = medinfer_explain_image(session, &image, &options, buffer, 25, NULL, 6000, &segments, &K);
      CHECK(status == MEDINFER_OK || status == MEDINFER_ERR_INVALID_ARGUMENT, "pixel_values NULL with length 6000: %s",
            medinfer_status_name(status));
      if (status == MEDINFER_OK && grid_values)
        CHECK(max_diff(buffer, grid_values, 25) <= 1e-9, "pixel_values NULL with length 6000: other values");
    }
  }
#undef BAD
#undef IMG
done:
  free(grid_values);
  medinfer_session_free(session);
  medinfer_session_free(ls);
  medinfer_model_free(cnn);
  medinfer_model_free(lstm);
}

int main(int argc, char **argv) {
  if (argc > 1) g_root = argv[1];
  g_quick = getenv("MEDINFER_TEST_QUICK") != NULL;
  test_option_defaults();
  test_sequence_exact();
  test_sequence_permutation();
  test_sequence_arguments();
  /* 2 windows: 65536 coalitions per explanation; the bidirectional model reruns its
   * window for each, so it gets 1 window (256) */
  check_stream("icu_lstm.onnx", MEDINFER_STREAM_AUTO, 0, g_quick ? 1 : 2);
  check_stream("icu_bilstm.onnx", MEDINFER_STREAM_WINDOW, g_quick ? 8 : 16, 1);
  if (!g_quick) {
    check_stream("icu_two_branch.onnx", MEDINFER_STREAM_AUTO, 0, 2);
    check_stream("icu_bilstm.onnx", MEDINFER_STREAM_AUTO, 48, 1);
  }
  test_stream_arguments();
  test_stream_threads();
  test_image();
  printf("test_explain: %d checks passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
