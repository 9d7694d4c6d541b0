/*
 * C API tests for sequence models (LSTM, GRU) and streams: every argument of
 * medinfer_sequence_run and the medinfer_stream_* calls, samples rejected with the stream
 * left exactly as it was, streaming outputs equal to medinfer_sequence_run on every
 * prefix (icu_lstm, icu_gru, icu_gru_fused, icu_two_branch), window mode on the
 * bidirectional model equal to the batch output on the last W steps, and 4 threads x 16
 * streams on one model giving the single-thread results bit for bit.
 *
 *   test_stream REPO_ROOT
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "medinfer.h"

static const char *g_root = ".";
/* MEDINFER_TEST_QUICK (set by run.sh under ASan and TSan, debug builds): one parity
 * sequence per model instead of three. */
static int g_quick;


/* The ICU models: 8 vital signs per step, one risk per sequence. */
#define FEATURES 8
#define STEPS 48      /* the parity sequence length */
#define STATIC_WIDTH 4 /* sex, age, height, weight */
#define TOLERANCE 1e-5

static medinfer_model *load_model(const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/examples/models/%s", g_root, name);
  medinfer_model *model = NULL;
  int status = medinfer_model_load(path, &model);
  CHECK(status == MEDINFER_OK, "load %s: %s", path, medinfer_status_name(status));
  return model;
}

/* Deterministic pseudo-random vital signs in clinical units (the models normalize
 * inside), drifting like real traces: a random walk pulled back to a typical value. */
static uint64_t g_rng = 1;
static float next_uniform(void) { /* [-1, 1) */
  g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(g_rng >> 40) / (double)(1ull << 23) - 1.0);
}
/* heart rate, systolic, diastolic, mean arterial, respiratory rate, SpO2, temperature, GCS */
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
/* sex (0/1), age (years), height (cm), weight (kg) */
static void make_static_row(uint64_t seed, float row[STATIC_WIDTH]) {
  g_rng = seed * 0xD1B54A32D192ED03ull + 7;
  row[0] = next_uniform() < 0 ? 0.0f : 1.0f;
  row[1] = 55 + 30 * next_uniform();
  row[2] = 170 + 15 * next_uniform();
  row[3] = 80 + 30 * next_uniform();
}

/* The name of the model's rank-2 (static) input, or NULL when it has none. */
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

/* medinfer_sequence_run on one sequence: `steps` steps starting at `values`, with the
 * static row when the model has one. Returns the risk, NaN on failure (checked). */
static float run_one(medinfer_session *session, const medinfer_model *model, const float *values, size_t steps,
                     const float *static_row) {
  medinfer_sequence_batch batch;
  medinfer_sequence_batch_init(&batch);
  batch.values = values;
  batch.batch = 1;
  batch.max_steps = steps;
  batch.features = FEATURES;
  medinfer_input_tensor statics = {static_input_name(model), static_row, STATIC_WIDTH, 2, {1, STATIC_WIDTH}};
  if (statics.name) {
    batch.static_inputs = &statics;
    batch.static_input_count = 1;
  }
  float risk = NAN;
  size_t count = 0;
  int status = medinfer_sequence_run(session, &batch, &risk, 1, &count);
  CHECK(status == MEDINFER_OK && count == 1, "sequence_run on %zu steps: %s, count %zu", steps,
        medinfer_status_name(status), count);
  return status == MEDINFER_OK ? risk : NAN;
}

static int close_enough(float got, float want) { return fabsf(got - want) <= TOLERANCE; }

/* ---- medinfer_sequence_run: arguments ------------------------------------------------ */

static void test_sequence_arguments(void) {
  medinfer_model *lstm = load_model("icu_lstm.onnx");
  medinfer_model *two = load_model("icu_two_branch.onnx");
  medinfer_model *cnn = load_model("skin_cnn_300.onnx");
  medinfer_session *session = NULL, *cnn_session = NULL, *two_session = NULL;
  if (!lstm || !two || !cnn) goto done;

  medinfer_sequence_batch_init(NULL); /* ignored */
  medinfer_sequence_batch init;
  memset(&init, 0xAB, sizeof init);
  medinfer_sequence_batch_init(&init);
  CHECK(init.struct_size == sizeof init && init.values == NULL && init.batch == 0 && init.max_steps == 0 &&
            init.features == 0 && init.lengths == NULL && init.static_inputs == NULL && init.static_input_count == 0,
        "medinfer_sequence_batch_init does not zero the batch");

  CHECK_STATUS(medinfer_session_create(lstm, &session), MEDINFER_OK, "session");
  CHECK_STATUS(medinfer_session_create(cnn, &cnn_session), MEDINFER_OK, "CNN session");
  if (!session || !cnn_session) goto done;

  float *values = make_sequence(1, STEPS);
  medinfer_sequence_batch good;
  medinfer_sequence_batch_init(&good);
  good.values = values;
  good.batch = 1;
  good.max_steps = STEPS;
  good.features = FEATURES;
  float out[2] = {-7, -9}; /* out[1] is a guard */
  size_t count = 0;
  CHECK_STATUS(medinfer_sequence_run(session, &good, out, 1, &count), MEDINFER_OK, "valid batch");
  CHECK(count == 1 && out[0] >= 0 && out[0] <= 1 && out[1] == -9, "count %zu, risk %g, guard %g", count, out[0], out[1]);
  float reference = out[0];
  CHECK_STATUS(medinfer_sequence_run(session, &good, out, 1, NULL), MEDINFER_OK, "out_count NULL");
  CHECK(out[0] == reference, "a second run differs: %g vs %g", out[0], reference);

  medinfer_sequence_batch bad;
  out[0] = -7;
/* `bad` is refused with `want`, a message, and nothing written */
#define EXPECT_BAD(on_session, want, what)                                                   \
  do {                                                                                      \
    CHECK_STATUS(medinfer_sequence_run(on_session, &bad, out, 1, &count), want, what);       \
    CHECK(out[0] == -7 && out[1] == -9, "%s: output written on error", what);                \
    CHECK(strlen(medinfer_last_error()) > 0, "%s: no message", what);                       \
  } while (0)
  CHECK_STATUS(medinfer_sequence_run(NULL, &good, out, 1, &count), MEDINFER_ERR_INVALID_ARGUMENT, "session NULL");
  CHECK_STATUS(medinfer_sequence_run(session, NULL, out, 1, &count), MEDINFER_ERR_INVALID_ARGUMENT, "batch NULL");
  bad = good; bad.struct_size = 0;
  EXPECT_BAD(session, MEDINFER_ERR_INVALID_ARGUMENT, "struct_size 0");
  bad = good; bad.struct_size = sizeof(size_t);
  EXPECT_BAD(session, MEDINFER_ERR_INVALID_ARGUMENT, "struct_size 8");
  bad = good; bad.values = NULL;
  EXPECT_BAD(session, MEDINFER_ERR_INVALID_ARGUMENT, "values NULL");
  bad = good; bad.batch = 0;
  EXPECT_BAD(session, MEDINFER_ERR_INVALID_ARGUMENT, "batch 0");
  bad = good; bad.max_steps = 0;
  EXPECT_BAD(session, MEDINFER_ERR_INVALID_ARGUMENT, "max_steps 0");
  bad = good; bad.features = 7;
  EXPECT_BAD(session, MEDINFER_ERR_SHAPE_MISMATCH, "7 features");
  bad = good; bad.features = 9;
  bad.max_steps = STEPS * 8 / 9;
  EXPECT_BAD(session, MEDINFER_ERR_SHAPE_MISMATCH, "9 features");
  int64_t length = 0;
  bad = good; bad.lengths = &length;
  EXPECT_BAD(session, MEDINFER_ERR_INVALID_ARGUMENT, "length 0");
  length = STEPS + 1;
  EXPECT_BAD(session, MEDINFER_ERR_INVALID_ARGUMENT, "length max_steps + 1");
  length = -1;
  EXPECT_BAD(session, MEDINFER_ERR_INVALID_ARGUMENT, "length -1");
  length = INT64_MAX;
  EXPECT_BAD(session, MEDINFER_ERR_INVALID_ARGUMENT, "length INT64_MAX");
  /* sizes whose product overflows: refused before anything is read */
  bad = good; bad.batch = SIZE_MAX / 2; bad.max_steps = 4;
  CHECK(medinfer_sequence_run(session, &bad, out, 1, &count) != MEDINFER_OK, "batch * steps overflowing");
  bad = good; bad.max_steps = SIZE_MAX / 4;
  CHECK(medinfer_sequence_run(session, &bad, out, 1, &count) != MEDINFER_OK, "steps * features overflowing");
  CHECK(out[0] == -7, "output written for an overflowing batch");
  /* icu_lstm has no static input: any is unknown */
  float row[STATIC_WIDTH] = {1, 0.5f, -0.2f, 0.3f};
  medinfer_input_tensor stray = {"static", row, STATIC_WIDTH, 2, {1, STATIC_WIDTH}};
  bad = good; bad.static_inputs = &stray; bad.static_input_count = 1;
  EXPECT_BAD(session, MEDINFER_ERR_INVALID_ARGUMENT, "static input given to icu_lstm");
  bad = good; bad.static_inputs = NULL; bad.static_input_count = 1;
  EXPECT_BAD(session, MEDINFER_ERR_INVALID_ARGUMENT, "static_inputs NULL with count 1");

  /* the output buffer: too small gives the needed count and writes nothing */
  count = 0;
  CHECK_STATUS(medinfer_sequence_run(session, &good, out, 0, &count), MEDINFER_ERR_BUFFER_TOO_SMALL, "length 0");
  CHECK(count == 1 && out[0] == -7, "length 0: count %zu, out %g", count, out[0]);
  count = 0;
  CHECK_STATUS(medinfer_sequence_run(session, &good, NULL, 0, &count), MEDINFER_ERR_BUFFER_TOO_SMALL, "out NULL");
  CHECK(count == 1, "out NULL: needed count %zu", count);
  medinfer_sequence_batch three = good;
  three.batch = 3;
  float *values3 = malloc(3 * STEPS * FEATURES * sizeof(float));
  memcpy(values3, values, STEPS * FEATURES * sizeof(float));
  memcpy(values3 + STEPS * FEATURES, values, STEPS * FEATURES * sizeof(float));
  memcpy(values3 + 2 * STEPS * FEATURES, values, STEPS * FEATURES * sizeof(float));
  three.values = values3;
  float out3[4] = {-7, -7, -7, -9};
  count = 0;
  CHECK_STATUS(medinfer_sequence_run(session, &three, out3, 2, &count), MEDINFER_ERR_BUFFER_TOO_SMALL, "3 rows, room for 2");
  CHECK(count == 3 && out3[0] == -7 && out3[1] == -7, "3 rows into 2: count %zu, written %g", count, out3[0]);

  /* uneven lengths: steps past a sequence's length are ignored, even NaN; each row equals
   * that sequence run alone */
  int64_t lengths[3] = {STEPS, 17, 1};
  for (size_t s = 1; s < 3; s++)
    for (size_t t = (size_t)lengths[s]; t < STEPS; t++)
      for (size_t f = 0; f < FEATURES; f++) values3[(s * STEPS + t) * FEATURES + f] = (t % 2) ? NAN : INFINITY;
  three.lengths = lengths;
  CHECK_STATUS(medinfer_sequence_run(session, &three, out3, 3, &count), MEDINFER_OK, "uneven lengths, NaN padding");
  CHECK(count == 3 && out3[3] == -9, "uneven: count %zu, guard %g", count, out3[3]);
  for (size_t s = 0; s < 3; s++) {
    float alone = run_one(session, lstm, values, (size_t)lengths[s], NULL);
    CHECK(close_enough(out3[s], alone), "row %zu (length %lld): %.9g, alone %.9g", s, (long long)lengths[s], out3[s], alone);
  }
  /* NaN inside the valid steps is arithmetic, not an error */
  values3[5] = NAN;
  CHECK_STATUS(medinfer_sequence_run(session, &three, out3, 3, &count), MEDINFER_OK, "NaN inside a valid step");

  /* not a sequence model */
  CHECK_STATUS(medinfer_sequence_run(cnn_session, &good, out, 1, &count), MEDINFER_ERR_UNSUPPORTED, "CNN session");

  /* static inputs of the two-branch model */
  CHECK_STATUS(medinfer_session_create(two, &two_session), MEDINFER_OK, "two-branch session");
  const char *static_name = static_input_name(two);
  CHECK(static_name != NULL, "icu_two_branch has no rank-2 input");
  if (two_session && static_name) {
    medinfer_input_tensor statics[2] = {{static_name, row, STATIC_WIDTH, 2, {1, STATIC_WIDTH}},
                                        {static_name, row, STATIC_WIDTH, 2, {1, STATIC_WIDTH}}};
    medinfer_sequence_batch with = good;
    with.static_inputs = statics;
    with.static_input_count = 1;
    CHECK_STATUS(medinfer_sequence_run(two_session, &with, out, 1, &count), MEDINFER_OK, "two-branch with static");
    out[0] = -7;
    bad = good;
    EXPECT_BAD(two_session, MEDINFER_ERR_INVALID_ARGUMENT, "static input missing");
    bad = with; bad.static_input_count = 2;
    EXPECT_BAD(two_session, MEDINFER_ERR_INVALID_ARGUMENT, "static input repeated");
    medinfer_input_tensor unknown = statics[0];
    unknown.name = "statics";
    bad = with; bad.static_inputs = &unknown;
    EXPECT_BAD(two_session, MEDINFER_ERR_INVALID_ARGUMENT, "unknown static input");
    medinfer_input_tensor narrow = {static_name, row, 3, 2, {1, 3}};
    bad = with; bad.static_inputs = &narrow;
    EXPECT_BAD(two_session, MEDINFER_ERR_SHAPE_MISMATCH, "static row of 3");
    float wide_row[5] = {1, 2, 3, 4, 5};
    medinfer_input_tensor wide = {static_name, wide_row, 5, 2, {1, 5}};
    bad = with; bad.static_inputs = &wide;
    EXPECT_BAD(two_session, MEDINFER_ERR_SHAPE_MISMATCH, "static row of 5");
    float two_rows[2 * STATIC_WIDTH] = {0};
    medinfer_input_tensor rows2 = {static_name, two_rows, 2 * STATIC_WIDTH, 2, {2, STATIC_WIDTH}};
    bad = with; bad.static_inputs = &rows2;
    CHECK(medinfer_sequence_run(two_session, &bad, out, 1, &count) != MEDINFER_OK, "static rows 2 for batch 1");
    medinfer_input_tensor short_data = statics[0];
    short_data.length = 3;
    bad = with; bad.static_inputs = &short_data;
    CHECK(medinfer_sequence_run(two_session, &bad, out, 1, &count) != MEDINFER_OK, "static length != shape");
    medinfer_input_tensor no_data = statics[0];
    no_data.data = NULL;
    bad = with; bad.static_inputs = &no_data;
    EXPECT_BAD(two_session, MEDINFER_ERR_INVALID_ARGUMENT, "static data NULL");
  }
#undef EXPECT_BAD
  free(values3);
  free(values);
done:
  medinfer_session_free(two_session);
  medinfer_session_free(session);
  medinfer_session_free(cnn_session);
  medinfer_model_free(lstm);
  medinfer_model_free(two);
  medinfer_model_free(cnn);
}

/* ---- streams: arguments, rejected samples, reset ------------------------------------- */

static void test_stream_options_and_create(void) {
  medinfer_model *lstm = load_model("icu_lstm.onnx");
  medinfer_model *cnn = load_model("skin_cnn_300.onnx");
  medinfer_model *tree = load_model("noshow_xgb.json");
  if (!lstm || !cnn || !tree) goto done;

  medinfer_stream_options_init(NULL); /* ignored */
  medinfer_stream_options options;
  memset(&options, 0xAB, sizeof options);
  medinfer_stream_options_init(&options);
  CHECK(options.struct_size == sizeof options && options.mode == MEDINFER_STREAM_AUTO && options.reserved == 0 &&
            options.window == 48,
        "stream option defaults: size %zu mode %d reserved %d window %zu", options.struct_size, options.mode,
        options.reserved, options.window);

  medinfer_stream *stream = (medinfer_stream *)&options; /* must be overwritten with NULL */
  CHECK_STATUS(medinfer_stream_create(NULL, NULL, &stream), MEDINFER_ERR_INVALID_ARGUMENT, "create: model NULL");
  CHECK(stream == NULL, "failed create left a stream");
  CHECK_STATUS(medinfer_stream_create(lstm, NULL, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "create: out NULL");
  stream = (medinfer_stream *)&options;
  CHECK_STATUS(medinfer_stream_create(cnn, NULL, &stream), MEDINFER_ERR_UNSUPPORTED, "create: CNN");
  CHECK(stream == NULL, "failed create on a CNN left a stream");
  stream = (medinfer_stream *)&options;
  CHECK(medinfer_stream_create(tree, NULL, &stream) != MEDINFER_OK, "create: tree model accepted");
  CHECK(stream == NULL, "failed create on trees left a stream");

  struct {
    const char *what;
    medinfer_stream_options options;
  } bad[] = {
      {"struct_size 0", {0, MEDINFER_STREAM_AUTO, 0, 48, 0}},
      {"struct_size 8", {8, MEDINFER_STREAM_AUTO, 0, 48, 0}},
      {"mode 2", {sizeof options, 2, 0, 48, 0}},
      {"mode -1", {sizeof options, -1, 0, 48, 0}},
      {"reserved 1", {sizeof options, MEDINFER_STREAM_AUTO, 1, 48, 0}},
      {"window 0", {sizeof options, MEDINFER_STREAM_WINDOW, 0, 0, 0}},
      {"window 4097", {sizeof options, MEDINFER_STREAM_WINDOW, 0, 4097, 0}},
      {"window SIZE_MAX", {sizeof options, MEDINFER_STREAM_WINDOW, 0, SIZE_MAX, 0}},
      {"explain_steps 4097", {sizeof options, MEDINFER_STREAM_AUTO, 0, 48, 4097}},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    stream = (medinfer_stream *)&options;
    CHECK_STATUS(medinfer_stream_create(lstm, &bad[i].options, &stream), MEDINFER_ERR_INVALID_ARGUMENT, bad[i].what);
    CHECK(stream == NULL, "%s: failed create left a stream", bad[i].what);
  }
  size_t windows[] = {1, 4096};
  for (size_t i = 0; i < 2; i++) {
    medinfer_stream_options window = {sizeof window, MEDINFER_STREAM_WINDOW, 0, windows[i], 0};
    stream = NULL;
    CHECK_STATUS(medinfer_stream_create(lstm, &window, &stream), MEDINFER_OK, "window mode at a bound");
    medinfer_stream_free(stream);
  }
  stream = NULL;
  CHECK_STATUS(medinfer_stream_create(lstm, NULL, &stream), MEDINFER_OK, "create, default options");
  CHECK(stream != NULL, "no stream");
  medinfer_stream_free(stream);
  medinfer_stream_free(NULL); /* a no-op */
done:
  medinfer_model_free(lstm);
  medinfer_model_free(cnn);
  medinfer_model_free(tree);
}

/* Pushes `steps` samples into a fresh stream; writes each output to outs (may be NULL).
 * Returns the stream (the caller frees it), NULL on failure (checked). */
static medinfer_stream *stream_of(const medinfer_model *model, const medinfer_stream_options *options,
                                  const float *static_row, const float *values, size_t steps, float *outs) {
  medinfer_stream *stream = NULL;
  CHECK_STATUS(medinfer_stream_create(model, options, &stream), MEDINFER_OK, "stream_create");
  if (!stream) return NULL;
  if (static_row) CHECK_STATUS(medinfer_stream_set_static(stream, NULL, static_row, STATIC_WIDTH), MEDINFER_OK, "set_static");
  for (size_t t = 0; t < steps; t++) {
    float risk = NAN;
    int status = medinfer_stream_push(model, stream, values + t * FEATURES, FEATURES, &risk, 1, NULL);
    CHECK(status == MEDINFER_OK, "push step %zu: %s", t, medinfer_status_name(status));
    if (outs) outs[t] = risk;
  }
  return stream;
}

static uint64_t steps_of(const medinfer_stream *stream) {
  uint64_t steps = UINT64_MAX;
  CHECK_STATUS(medinfer_stream_steps(stream, &steps), MEDINFER_OK, "stream_steps");
  return steps;
}

static void test_stream_push_arguments(void) {
  medinfer_model *lstm = load_model("icu_lstm.onnx");
  medinfer_model *lstm_again = load_model("icu_lstm.onnx");
  medinfer_model *gru = load_model("icu_gru_fused.onnx");
  if (!lstm || !lstm_again || !gru) goto done;
  float *values = make_sequence(2, 8);
  medinfer_stream *stream = stream_of(lstm, NULL, NULL, values, 2, NULL);
  if (!stream) { free(values); goto done; }
  CHECK(steps_of(stream) == 2, "steps after 2 pushes");

  const float *x = values + 2 * FEATURES;
  float out[2] = {-7, -9};
  size_t count = 0;
  char message[512]; /* the refusal's message, kept before the next call replaces it */
#define EXPECT_REJECTED(call, want, what)                                                   \
  do {                                                                                     \
    CHECK_STATUS(call, want, what);                                                        \
    snprintf(message, sizeof message, "%s", medinfer_last_error());                        \
    CHECK(message[0] != '\0', "%s: no message", what);                                     \
    CHECK(out[0] == -7 && out[1] == -9, "%s: output written", what);                        \
    CHECK(steps_of(stream) == 2, "%s: the step was consumed", what);                        \
  } while (0)
  EXPECT_REJECTED(medinfer_stream_push(NULL, stream, x, FEATURES, out, 1, &count), MEDINFER_ERR_INVALID_ARGUMENT, "model NULL");
  CHECK_STATUS(medinfer_stream_push(lstm, NULL, x, FEATURES, out, 1, &count), MEDINFER_ERR_INVALID_ARGUMENT, "stream NULL");
  EXPECT_REJECTED(medinfer_stream_push(lstm, stream, NULL, FEATURES, out, 1, &count), MEDINFER_ERR_INVALID_ARGUMENT, "sample NULL");
  EXPECT_REJECTED(medinfer_stream_push(gru, stream, x, FEATURES, out, 1, &count), MEDINFER_ERR_INVALID_ARGUMENT, "GRU model, LSTM stream");
  EXPECT_REJECTED(medinfer_stream_push(lstm_again, stream, x, FEATURES, out, 1, &count), MEDINFER_ERR_INVALID_ARGUMENT,
                  "another load of the same file");
  EXPECT_REJECTED(medinfer_stream_push(lstm, stream, x, 7, out, 1, &count), MEDINFER_ERR_SHAPE_MISMATCH, "7 features");
  EXPECT_REJECTED(medinfer_stream_push(lstm, stream, x, 9, out, 1, &count), MEDINFER_ERR_SHAPE_MISMATCH, "9 features");
  EXPECT_REJECTED(medinfer_stream_push(lstm, stream, x, 0, out, 1, &count), MEDINFER_ERR_SHAPE_MISMATCH, "0 features");
  float sample[FEATURES];
  memcpy(sample, x, sizeof sample);
  sample[3] = NAN;
  EXPECT_REJECTED(medinfer_stream_push(lstm, stream, sample, FEATURES, out, 1, &count), MEDINFER_ERR_INVALID_ARGUMENT, "NaN");
  CHECK(strstr(message, "3") != NULL, "the NaN is not named by its index: %s", message);
  sample[3] = x[3];
  sample[0] = INFINITY;
  EXPECT_REJECTED(medinfer_stream_push(lstm, stream, sample, FEATURES, out, 1, &count), MEDINFER_ERR_INVALID_ARGUMENT, "+Inf");
  sample[0] = x[0];
  sample[FEATURES - 1] = -INFINITY;
  EXPECT_REJECTED(medinfer_stream_push(lstm, stream, sample, FEATURES, out, 1, &count), MEDINFER_ERR_INVALID_ARGUMENT, "-Inf");
  /* too small an output: the needed count, and the step not consumed */
  count = 0;
  EXPECT_REJECTED(medinfer_stream_push(lstm, stream, x, FEATURES, out, 0, &count), MEDINFER_ERR_BUFFER_TOO_SMALL, "length 0");
  CHECK(count == 1, "length 0: needed count %zu", count);
  count = 0;
  CHECK_STATUS(medinfer_stream_push(lstm, stream, x, FEATURES, NULL, 0, &count), MEDINFER_ERR_BUFFER_TOO_SMALL, "out NULL");
  CHECK(count == 1 && steps_of(stream) == 2, "out NULL: count %zu, steps %llu", count, (unsigned long long)steps_of(stream));
#undef EXPECT_REJECTED

  /* After all those refusals the stream is exactly a stream that got only the valid
   * steps: compare with a fresh one, bit for bit, for the rest of the sequence. */
  medinfer_stream *fresh = stream_of(lstm, NULL, NULL, values, 2, NULL);
  for (size_t t = 2; fresh && t < 8; t++) {
    float a = NAN, b = NAN;
    CHECK_STATUS(medinfer_stream_push(lstm, stream, values + t * FEATURES, FEATURES, &a, 1, NULL), MEDINFER_OK, "push");
    CHECK_STATUS(medinfer_stream_push(lstm, fresh, values + t * FEATURES, FEATURES, &b, 1, &count), MEDINFER_OK, "push");
    CHECK(a == b && count == 1, "step %zu after rejected samples: %.9g, fresh stream %.9g", t, a, b);
  }
  CHECK(steps_of(stream) == 8, "steps counter after 8 accepted pushes");

  /* steps and reset */
  uint64_t steps = 0;
  CHECK_STATUS(medinfer_stream_steps(NULL, &steps), MEDINFER_ERR_INVALID_ARGUMENT, "steps: stream NULL");
  CHECK_STATUS(medinfer_stream_steps(stream, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "steps: out NULL");
  CHECK_STATUS(medinfer_stream_reset(NULL), MEDINFER_ERR_INVALID_ARGUMENT, "reset NULL");
  CHECK_STATUS(medinfer_stream_reset(stream), MEDINFER_OK, "reset");
  CHECK(steps_of(stream) == 0, "steps after reset");
  float after_reset[8], from_scratch[8];
  for (size_t t = 0; t < 8; t++)
    CHECK_STATUS(medinfer_stream_push(lstm, stream, values + t * FEATURES, FEATURES, &after_reset[t], 1, NULL), MEDINFER_OK, "push");
  medinfer_stream *scratch = stream_of(lstm, NULL, NULL, values, 8, from_scratch);
  CHECK(memcmp(after_reset, from_scratch, sizeof after_reset) == 0, "a reset stream differs from a new one");

  /* icu_lstm has no static input */
  float row[STATIC_WIDTH] = {1, 0, 0, 0};
  CHECK_STATUS(medinfer_stream_set_static(stream, NULL, row, STATIC_WIDTH), MEDINFER_ERR_INVALID_ARGUMENT, "set_static: none");
  CHECK_STATUS(medinfer_stream_set_static(stream, "static", row, STATIC_WIDTH), MEDINFER_ERR_INVALID_ARGUMENT,
               "set_static: unknown name");

  medinfer_stream_free(scratch);
  medinfer_stream_free(fresh);
  medinfer_stream_free(stream);
  free(values);
done:
  medinfer_model_free(lstm);
  medinfer_model_free(lstm_again);
  medinfer_model_free(gru);
}

static void test_stream_static_inputs(void) {
  medinfer_model *two = load_model("icu_two_branch.onnx");
  if (!two) return;
  const char *name = static_input_name(two);
  CHECK(name != NULL, "icu_two_branch has no rank-2 input");
  float *values = make_sequence(3, 6);
  float row[STATIC_WIDTH], other_row[STATIC_WIDTH];
  make_static_row(3, row);
  make_static_row(4, other_row);
  medinfer_session *session = NULL;
  CHECK_STATUS(medinfer_session_create(two, &session), MEDINFER_OK, "session");
  medinfer_stream *stream = NULL;
  CHECK_STATUS(medinfer_stream_create(two, NULL, &stream), MEDINFER_OK, "create");
  if (!stream || !session || !name) goto done;

  float out = -7;
  CHECK_STATUS(medinfer_stream_push(two, stream, values, FEATURES, &out, 1, NULL), MEDINFER_ERR_INVALID_ARGUMENT,
               "push before the static input is set");
  CHECK(out == -7 && steps_of(stream) == 0, "push without static input consumed a step");

  CHECK_STATUS(medinfer_stream_set_static(NULL, name, row, STATIC_WIDTH), MEDINFER_ERR_INVALID_ARGUMENT, "stream NULL");
  CHECK_STATUS(medinfer_stream_set_static(stream, name, NULL, STATIC_WIDTH), MEDINFER_ERR_INVALID_ARGUMENT, "values NULL");
  CHECK_STATUS(medinfer_stream_set_static(stream, "statics", row, STATIC_WIDTH), MEDINFER_ERR_INVALID_ARGUMENT, "unknown name");
  CHECK_STATUS(medinfer_stream_set_static(stream, name, row, 3), MEDINFER_ERR_SHAPE_MISMATCH, "3 values");
  CHECK_STATUS(medinfer_stream_set_static(stream, name, row, 5), MEDINFER_ERR_SHAPE_MISMATCH, "5 values");
  CHECK_STATUS(medinfer_stream_set_static(stream, name, row, 0), MEDINFER_ERR_SHAPE_MISMATCH, "0 values");
  CHECK_STATUS(medinfer_stream_set_static(stream, name, row, STATIC_WIDTH), MEDINFER_OK, "by name");
  CHECK_STATUS(medinfer_stream_set_static(stream, NULL, row, STATIC_WIDTH), MEDINFER_OK, "NULL name: the only one");
  /* a NaN or Inf static value is refused and changes nothing */
  float poisoned[STATIC_WIDTH];
  memcpy(poisoned, other_row, sizeof poisoned);
  poisoned[1] = NAN;
  CHECK_STATUS(medinfer_stream_set_static(stream, NULL, poisoned, STATIC_WIDTH), MEDINFER_ERR_INVALID_ARGUMENT, "NaN static");
  poisoned[1] = INFINITY;
  CHECK_STATUS(medinfer_stream_set_static(stream, NULL, poisoned, STATIC_WIDTH), MEDINFER_ERR_INVALID_ARGUMENT, "Inf static");
  for (size_t t = 0; t < 3; t++)
    CHECK_STATUS(medinfer_stream_push(two, stream, values + t * FEATURES, FEATURES, &out, 1, NULL), MEDINFER_OK, "push");
  float batch = run_one(session, two, values, 3, row);
  CHECK(close_enough(out, batch), "after refused statics: stream %.9g, batch with the first row %.9g", out, batch);

  /* reset keeps the static input */
  CHECK_STATUS(medinfer_stream_reset(stream), MEDINFER_OK, "reset");
  for (size_t t = 0; t < 3; t++)
    CHECK_STATUS(medinfer_stream_push(two, stream, values + t * FEATURES, FEATURES, &out, 1, NULL), MEDINFER_OK,
                 "push after reset, static kept");
  CHECK(close_enough(out, batch), "after reset: %.9g, expected %.9g", out, batch);

  /* Setting the static input later applies from the next push on. In the two-branch
   * model the static row joins after the recurrence, so the output then equals the batch
   * output with the new row over the whole sequence. */
  CHECK_STATUS(medinfer_stream_set_static(stream, name, other_row, STATIC_WIDTH), MEDINFER_OK, "set_static mid-stream");
  CHECK_STATUS(medinfer_stream_push(two, stream, values + 3 * FEATURES, FEATURES, &out, 1, NULL), MEDINFER_OK, "push");
  batch = run_one(session, two, values, 4, other_row);
  CHECK(close_enough(out, batch), "after a new static row: %.9g, batch %.9g", out, batch);
done:
  medinfer_stream_free(stream);
  medinfer_session_free(session);
  free(values);
  medinfer_model_free(two);
}

/* ---- streaming equals batch ---------------------------------------------------------- */

/* The output after step t equals medinfer_sequence_run on steps 0..t, for every t: by
 * one run per prefix, and by one run of STEPS copies with lengths 1..STEPS. */
static void test_prefix_parity(const char *file) {
  medinfer_model *model = load_model(file);
  if (!model) return;
  int with_static = static_input_name(model) != NULL;
  medinfer_session *session = NULL;
  CHECK_STATUS(medinfer_session_create(model, &session), MEDINFER_OK, "session");
  float row[STATIC_WIDTH];
  make_static_row(11, row);
  double worst = 0;
  for (uint64_t seed = 100; session && seed < (g_quick ? 101u : 103u); seed++) {
    float *values = make_sequence(seed, STEPS);
    float streamed[STEPS];
    medinfer_stream *stream = stream_of(model, NULL, with_static ? row : NULL, values, STEPS, streamed);
    for (size_t t = 0; t < STEPS; t++) {
      float batch = run_one(session, model, values, t + 1, with_static ? row : NULL);
      double error = fabs((double)streamed[t] - (double)batch);
      if (!(error <= worst)) worst = error;
      CHECK(close_enough(streamed[t], batch), "%s seed %llu step %zu: stream %.9g, sequence_run %.9g", file,
            (unsigned long long)seed, t, streamed[t], batch);
    }
    CHECK(steps_of(stream) == STEPS, "%s: steps counter", file);
    CHECK(streamed[0] != streamed[STEPS / 2] && streamed[STEPS / 2] != streamed[STEPS - 1],
          "%s: the output does not change along the sequence: a vacuous comparison", file);

    /* the same in one batch with uneven lengths */
    float *copies = malloc((size_t)STEPS * STEPS * FEATURES * sizeof(float));
    float *rows = malloc((size_t)STEPS * STATIC_WIDTH * sizeof(float));
    int64_t lengths[STEPS];
    for (size_t s = 0; s < STEPS; s++) {
      memcpy(copies + s * STEPS * FEATURES, values, STEPS * FEATURES * sizeof(float));
      memcpy(rows + s * STATIC_WIDTH, row, sizeof row);
      lengths[s] = (int64_t)s + 1;
    }
    medinfer_sequence_batch batch;
    medinfer_sequence_batch_init(&batch);
    batch.values = copies;
    batch.batch = STEPS;
    batch.max_steps = STEPS;
    batch.features = FEATURES;
    batch.lengths = lengths;
    medinfer_input_tensor statics = {static_input_name(model), rows, STEPS * STATIC_WIDTH, 2, {STEPS, STATIC_WIDTH}};
    if (with_static) {
      batch.static_inputs = &statics;
      batch.static_input_count = 1;
    }
    float outs[STEPS];
    size_t count = 0;
    CHECK_STATUS(medinfer_sequence_run(session, &batch, outs, STEPS, &count), MEDINFER_OK, "batch of all prefixes");
    CHECK(count == STEPS, "batch of prefixes: count %zu", count);
    for (size_t t = 0; t < STEPS && count == STEPS; t++)
      CHECK(close_enough(streamed[t], outs[t]), "%s seed %llu: stream step %zu %.9g, row of length %zu %.9g", file,
            (unsigned long long)seed, t, streamed[t], t + 1, outs[t]);
    free(rows);
    free(copies);
    medinfer_stream_free(stream);
    free(values);
  }
  printf("%s: streaming = sequence_run on every prefix of %d steps (%d sequences), max |diff| %.3g\n", file, STEPS,
         g_quick ? 1 : 3, worst);
  medinfer_session_free(session);
  medinfer_model_free(model);
}

/* Window mode: the output after step t equals the batch output on steps
 * max(0, t - W + 1) .. t. AUTO picks it (window 48) for the bidirectional model. */
static void check_window(const char *file, const medinfer_stream_options *options, size_t window, size_t steps) {
  medinfer_model *model = load_model(file);
  if (!model) return;
  medinfer_session *session = NULL;
  CHECK_STATUS(medinfer_session_create(model, &session), MEDINFER_OK, "session");
  float *values = make_sequence(window * 31 + steps, steps);
  float *streamed = malloc(steps * sizeof(float));
  medinfer_stream *stream = session ? stream_of(model, options, NULL, values, steps, streamed) : NULL;
  double worst = 0;
  for (size_t t = 0; stream && t < steps; t++) {
    size_t first = t + 1 > window ? t + 1 - window : 0;
    float batch = run_one(session, model, values + first * FEATURES, t + 1 - first, NULL);
    double error = fabs((double)streamed[t] - (double)batch);
    if (!(error <= worst)) worst = error;
    CHECK(close_enough(streamed[t], batch), "%s window %zu step %zu: stream %.9g, steps %zu..%zu %.9g", file, window, t,
          streamed[t], first, t, batch);
  }
  if (stream) CHECK(steps_of(stream) == steps, "%s window: steps counter counts every push", file);
  printf("%s: window of %zu over %zu steps = sequence_run on the last %zu steps, max |diff| %.3g\n", file, window,
         steps, window, worst);
  medinfer_stream_free(stream);
  free(streamed);
  free(values);
  medinfer_session_free(session);
  medinfer_model_free(model);
}

static void test_window_mode(void) {
  medinfer_stream_options options;
  medinfer_stream_options_init(&options);
  check_window("icu_bilstm.onnx", &options, 48, 60); /* AUTO: a bidirectional model gets a window */
  options.mode = MEDINFER_STREAM_WINDOW;
  options.window = 8;
  check_window("icu_bilstm.onnx", &options, 8, 24);
  check_window("icu_lstm.onnx", &options, 8, 20); /* window mode on a forward model too */
  /* the bidirectional model's output on a prefix depends on the whole prefix: a real
   * check that the window is recomputed, not advanced */
  medinfer_model *bilstm = load_model("icu_bilstm.onnx");
  medinfer_session *session = NULL;
  if (bilstm && medinfer_session_create(bilstm, &session) == MEDINFER_OK) {
    float *values = make_sequence(5, 2);
    float one = run_one(session, bilstm, values, 1, NULL), both = run_one(session, bilstm, values, 2, NULL);
    CHECK(one != both, "icu_bilstm gives the same output for 1 and 2 steps");
    free(values);
  }
  medinfer_session_free(session);
  medinfer_model_free(bilstm);
}

/* ---- threads: 4 x 16 streams on one model --------------------------------------------- */

#define THREADS 4
#define STREAMS_PER_THREAD 16
#define THREAD_STEPS 48

typedef struct {
  const medinfer_model *model;
  int with_static;
  size_t first;     /* this thread's first stream */
  float *outputs;   /* [stream][step] for all THREADS * STREAMS_PER_THREAD streams */
  const float *sequences; /* [stream][step][feature] */
  const float *rows;      /* [stream][STATIC_WIDTH] */
  int failures;
} stream_worker;

/* Round-robin over its 16 streams, one step at a time: streams interleave in the cache
 * like beds on a monitor. */
static void *run_streams(void *p) {
  stream_worker *w = p;
  medinfer_stream *streams[STREAMS_PER_THREAD] = {0};
  for (size_t i = 0; i < STREAMS_PER_THREAD; i++) {
    size_t s = w->first + i;
    if (medinfer_stream_create(w->model, NULL, &streams[i]) != MEDINFER_OK) { w->failures++; continue; }
    if (w->with_static && medinfer_stream_set_static(streams[i], NULL, w->rows + s * STATIC_WIDTH, STATIC_WIDTH) != MEDINFER_OK)
      w->failures++;
  }
  for (size_t t = 0; t < THREAD_STEPS; t++)
    for (size_t i = 0; i < STREAMS_PER_THREAD; i++) {
      size_t s = w->first + i;
      if (!streams[i]) continue;
      const float *x = w->sequences + (s * THREAD_STEPS + t) * FEATURES;
      if (medinfer_stream_push(w->model, streams[i], x, FEATURES, &w->outputs[s * THREAD_STEPS + t], 1, NULL) != MEDINFER_OK)
        w->failures++;
    }
  for (size_t i = 0; i < STREAMS_PER_THREAD; i++) medinfer_stream_free(streams[i]);
  return NULL;
}

static void test_threads(const char *file) {
  medinfer_model *model = load_model(file);
  if (!model) return;
  const size_t n = THREADS * STREAMS_PER_THREAD;
  float *sequences = malloc(n * THREAD_STEPS * FEATURES * sizeof(float));
  float *rows = malloc(n * STATIC_WIDTH * sizeof(float));
  for (size_t s = 0; s < n; s++) {
    float *values = make_sequence(1000 + s, THREAD_STEPS);
    memcpy(sequences + s * THREAD_STEPS * FEATURES, values, THREAD_STEPS * FEATURES * sizeof(float));
    free(values);
    make_static_row(2000 + s, rows + s * STATIC_WIDTH);
  }
  float *single = calloc(n * THREAD_STEPS, sizeof(float));
  float *threaded = calloc(n * THREAD_STEPS, sizeof(float));
  int with_static = static_input_name(model) != NULL;

  /* one thread, every stream */
  stream_worker workers[THREADS];
  for (size_t t = 0; t < THREADS; t++) {
    stream_worker w = {model, with_static, t * STREAMS_PER_THREAD, single, sequences, rows, 0};
    run_streams(&w);
    CHECK(w.failures == 0, "%s: %d failed calls on one thread", file, w.failures);
  }
  /* four threads at once */
  pthread_t threads[THREADS];
  for (size_t t = 0; t < THREADS; t++) {
    stream_worker w = {model, with_static, t * STREAMS_PER_THREAD, threaded, sequences, rows, 0};
    workers[t] = w;
    CHECK(pthread_create(&threads[t], NULL, run_streams, &workers[t]) == 0, "pthread_create");
  }
  for (size_t t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  for (size_t t = 0; t < THREADS; t++) CHECK(workers[t].failures == 0, "%s: thread %zu: %d failed calls", file, t, workers[t].failures);
  size_t differing = 0;
  for (size_t i = 0; i < n * THREAD_STEPS; i++) differing += memcmp(&single[i], &threaded[i], sizeof(float)) != 0;
  CHECK(differing == 0, "%s: %zu of %zu outputs differ between 1 and %d threads", file, differing, n * THREAD_STEPS, THREADS);

  /* and the last step of a few streams against the batch call */
  medinfer_session *session = NULL;
  CHECK_STATUS(medinfer_session_create(model, &session), MEDINFER_OK, "session");
  for (size_t s = 0; session && s < n; s += 13) {
    float batch = run_one(session, model, sequences + s * THREAD_STEPS * FEATURES, THREAD_STEPS,
                          with_static ? rows + s * STATIC_WIDTH : NULL);
    CHECK(close_enough(threaded[(s + 1) * THREAD_STEPS - 1], batch), "%s stream %zu: %.9g, sequence_run %.9g", file, s,
          threaded[(s + 1) * THREAD_STEPS - 1], batch);
  }
  printf("%s: %d threads x %d streams x %d steps on one model = one thread, bit for bit\n", file, THREADS,
         STREAMS_PER_THREAD, THREAD_STEPS);
  medinfer_session_free(session);
  free(single);
  free(threaded);
  free(rows);
  free(sequences);
  medinfer_model_free(model);
}

int main(int argc, char **argv) {
  if (argc > 1) g_root = argv[1];
  g_quick = getenv("MEDINFER_TEST_QUICK") != NULL;
  test_sequence_arguments();
  test_stream_options_and_create();
  test_stream_push_arguments();
  test_stream_static_inputs();
  test_prefix_parity("icu_lstm.onnx");
  test_prefix_parity("icu_gru.onnx");       /* the Keras GRU, exported as a Loop */
  test_prefix_parity("icu_gru_fused.onnx"); /* the PyTorch GRU: one fused op */
  test_prefix_parity("icu_two_branch.onnx");
  test_window_mode();
  test_threads("icu_lstm.onnx");
  test_threads("icu_two_branch.onnx");
  printf("test_stream: %d checks passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
