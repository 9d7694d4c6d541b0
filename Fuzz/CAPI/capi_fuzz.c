/*
 * Fuzz target for the C API itself: the input bytes choose a bundled model, a call
 * (predict, SHAP values, a tensor run, a sequence batch, a stream's life, a Shapley
 * explanation of a sequence, of a stream or of an image) and every argument of it: counts
 * and shapes that may be wrong, lengths that may be zero or too large, names that may be
 * unknown, NaN/Inf/huge values, output buffers of any size, explanation options of every
 * kind (methods, budgets, time windows, grids, segmentations; kept cheap: at most a few
 * hundred model evaluations per input).
 * Every buffer is allocated with exactly the length the call is told, so a write past
 * it is a heap overflow that AddressSanitizer reports (the library is the ASan build).
 * Whatever the arguments, a call must return a status, never crash.
 * Built two ways:
 *   - clang -fsanitize=fuzzer,address against the ASan library (make capi-fuzz);
 *   - with -DREPLAY (make test): replays the files given on the command line.
 * Run from the repository root (model paths are relative).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medinfer.h"

static const char *const kModelPaths[] = {
    "examples/models/noshow_xgb.json",     "examples/models/breast_rf.json",
    "examples/models/noshow_lgbm.txt",     "examples/models/icu_lstm.onnx",
    "examples/models/icu_two_branch.onnx", "examples/models/icu_bilstm.onnx",
    "examples/models/icu_gru.onnx",
};
enum { kModelCount = sizeof kModelPaths / sizeof kModelPaths[0] };
static medinfer_model *g_models[kModelCount];
/* The image model for medinfer_explain_image, apart from g_models so that the bytes choose
 * the same model for the other calls as before it was added. */
static const char *const kImageModelPath = "examples/models/skin_cnn_300.onnx";
static medinfer_model *g_image_model;
/* Calls that succeeded, per status: the replay prints them, to show the inputs reach
 * past argument checking. */
static unsigned long g_status_counts[16];
static int note(int status) {
  g_status_counts[status >= 0 && status < 16 ? status : 15]++;
  return status;
}

typedef struct reader {
  const uint8_t *data;
  size_t size, at;
} reader;

static unsigned byte_of(reader *r) { return r->at < r->size ? r->data[r->at++] : 0; }

/* A float that is often special: NaN, infinities, zeros, huge, tiny, or plain values. */
static float float_of(reader *r) {
  static const float specials[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e30f, -1e30f, 1e-40f, 1.0f, 80.0f};
  unsigned b = byte_of(r);
  if (b < 40) return specials[b % 10];
  return (float)((int)b - 128) * 1.7f + (float)byte_of(r) / 16.0f;
}

/* A length near a useful size: 0, the size, one less, one more, or anything small. */
static size_t length_of(reader *r, size_t useful) {
  switch (byte_of(r) % 6) {
  case 0: return 0;
  case 1: return useful > 0 ? useful - 1 : 0;
  case 2: return useful + 1;
  case 3: return byte_of(r) % 64;
  default: return useful;
  }
}

static float *floats(reader *r, size_t n) {
  float *p = malloc(n ? n * sizeof *p : 1);
  for (size_t i = 0; i < n; i++) p[i] = float_of(r);
  return p;
}

/* Finite values only (a vital sign, a pixel), or, when `poison` is set, one NaN or
 * infinity at a position the bytes choose: the explanation calls refuse any, so most
 * inputs must be clean to get past the checks. */
static float *clean_floats(reader *r, size_t n, int poison) {
  float *p = malloc(n ? n * sizeof *p : 1);
  for (size_t i = 0; i < n; i++) p[i] = (float)((int)byte_of(r) - 100);
  if (poison && n > 0) {
    static const float bad[] = {NAN, INFINITY, -INFINITY};
    p[byte_of(r) % n] = bad[byte_of(r) % 3];
  }
  return p;
}

static void fuzz_trees(reader *r, medinfer_model *model) {
  size_t features = 0, outputs = 0;
  medinfer_model_feature_count(model, &features);
  medinfer_model_output_count(model, 0, &outputs);
  size_t rows = byte_of(r) % 5;
  size_t given = length_of(r, features);
  float *x = floats(r, rows * given);
  size_t out_length = length_of(r, rows * (outputs + features + 1));
  double *out = malloc(out_length ? out_length * sizeof *out : 1);
  if (byte_of(r) & 1) note(medinfer_predict(model, x, rows, given, NULL, out, out_length));
  else note(medinfer_shap_values(model, x, rows, given, NULL, out, out_length));
  free(out);
  free(x);
}

static void fuzz_tensor_run(reader *r, medinfer_model *model) {
  medinfer_session *session = NULL;
  if (medinfer_session_create(model, &session) != MEDINFER_OK) return;
  size_t count = 0;
  medinfer_network_input_count(model, &count);
  medinfer_input_tensor inputs[4];
  float *data[4] = {0};
  size_t n = length_of(r, count) % 4;
  for (size_t i = 0; i < n; i++) {
    medinfer_input_tensor *t = &inputs[i];
    memset(t, 0, sizeof *t);
    const char *name = NULL;
    int64_t dims[MEDINFER_MAX_RANK];
    size_t rank = 0;
    if (i < count) medinfer_network_input(model, i, &name, dims, MEDINFER_MAX_RANK, &rank);
    t->name = (byte_of(r) % 4 == 0) ? "no such input" : name;
    t->rank = (byte_of(r) % 5 == 0) ? byte_of(r) % 10 : rank;
    if (t->rank > MEDINFER_MAX_RANK) t->rank = MEDINFER_MAX_RANK + 1;
    size_t elements = 1;
    for (size_t a = 0; a < t->rank && a < MEDINFER_MAX_RANK; a++) {
      int64_t d = (a < rank && dims[a] > 0 && byte_of(r) % 3) ? dims[a] : (int64_t)(byte_of(r) % 6) - 1;
      t->shape[a] = d;
      if (d > 0) elements *= (size_t)d;
    }
    if (elements > 4096) elements = 4096;
    t->length = length_of(r, elements);
    data[i] = floats(r, t->length);
    t->data = data[i];
  }
  medinfer_output_tensor out;
  memset(&out, 0, sizeof out);
  out.length = length_of(r, 4);
  float *out_data = malloc(out.length ? out.length * sizeof(float) : 1);
  out.data = out.length ? out_data : NULL;
  note(medinfer_session_run(session, inputs, n, &out, byte_of(r) % 2));
  free(out_data);
  for (size_t i = 0; i < n; i++) free(data[i]);
  medinfer_session_free(session);
}

static void fuzz_sequence_run(reader *r, medinfer_model *model) {
  medinfer_session *session = NULL;
  if (medinfer_session_create(model, &session) != MEDINFER_OK) return;
  medinfer_sequence_batch batch;
  medinfer_sequence_batch_init(&batch);
  if (byte_of(r) % 8 == 0) batch.struct_size = byte_of(r);
  batch.batch = byte_of(r) % 4;
  batch.max_steps = byte_of(r) % 7;
  batch.features = (byte_of(r) % 4 == 0) ? byte_of(r) % 12 : 8;
  float *values = floats(r, batch.batch * batch.max_steps * batch.features);
  batch.values = (byte_of(r) % 16 == 0) ? NULL : values;
  int64_t lengths[4];
  for (size_t b = 0; b < 4; b++) lengths[b] = (int64_t)(byte_of(r) % 9) - 1;
  batch.lengths = (byte_of(r) & 1) ? lengths : NULL;
  /* Up to two static tensors (the count says how many the call reads): the model's
   * input, an unknown name, or the same input twice. */
  medinfer_input_tensor statics[2];
  float *static_values[2];
  for (int k = 0; k < 2; k++) {
    medinfer_input_tensor *t = &statics[k];
    memset(t, 0, sizeof *t);
    size_t width = (byte_of(r) % 4 == 0) ? byte_of(r) % 6 : 4;
    static_values[k] = floats(r, batch.batch * width);
    unsigned naming = byte_of(r) % 4;
    t->name = naming == 0 ? NULL : (naming == 1 ? "vitals_x" : "static");
    t->data = static_values[k];
    t->rank = 2;
    t->shape[0] = (int64_t)batch.batch;
    t->shape[1] = (int64_t)width;
    t->length = length_of(r, batch.batch * width);
    if (t->length > batch.batch * width) t->length = batch.batch * width; /* the data array's real size */
  }
  batch.static_inputs = statics;
  batch.static_input_count = byte_of(r) % 3;
  size_t out_length = length_of(r, batch.batch);
  float *out = malloc(out_length ? out_length * sizeof *out : 1);
  size_t written = 0;
  note(medinfer_sequence_run(session, &batch, out_length ? out : NULL, out_length, &written));
  free(out);
  free(static_values[0]);
  free(static_values[1]);
  free(values);
  medinfer_session_free(session);
}

static void fuzz_stream(reader *r, medinfer_model *model) {
  medinfer_stream_options options;
  medinfer_stream_options_init(&options);
  options.mode = (int32_t)(byte_of(r) % 3);
  options.window = byte_of(r) % 8;
  medinfer_stream *stream = NULL;
  if (medinfer_stream_create(model, (byte_of(r) & 1) ? &options : NULL, &stream) != MEDINFER_OK) return;
  size_t pushes = byte_of(r) % 12;
  for (size_t i = 0; i < pushes; i++) {
    unsigned action = byte_of(r) % 8;
    if (action == 0) {
      size_t count = length_of(r, 4);
      float *values = floats(r, count);
      note(medinfer_stream_set_static(stream, (byte_of(r) & 1) ? "static" : NULL, values, count));
      free(values);
    } else if (action == 1) {
      medinfer_stream_reset(stream);
    } else {
      size_t count = length_of(r, 8);
      float *sample = floats(r, count);
      size_t out_length = length_of(r, 1);
      float *out = malloc(out_length ? out_length * sizeof *out : 1);
      /* Sometimes another model's handle: must be refused. */
      medinfer_model *handle = (action == 2) ? g_models[byte_of(r) % kModelCount] : model;
      size_t written = 0;
      note(medinfer_stream_push(handle, stream, sample, count, out_length ? out : NULL, out_length, &written));
      free(out);
      free(sample);
    }
  }
  uint64_t steps = 0;
  medinfer_stream_steps(stream, &steps);
  medinfer_stream_free(stream);
}

/* ---- explanations ------------------------------------------------------------------ */

/* Shapley options from the bytes, valid more often than not. The cost stays small
 * whatever the bytes: a permutation budget below 80; exact (or AUTO) values only for 8 or
 * 12 players (one time window: 256 or 4096 coalitions) or beyond the exact limit (3 or 4
 * windows: refused, or sampled with the small budget under AUTO), never 16 or 20 players.
 * Returns NULL (the defaults: AUTO, one window) now and then. */
static const medinfer_shapley_options *shapley_options_of(reader *r, medinfer_shapley_options *options) {
  medinfer_shapley_options_init(options);
  unsigned flags = byte_of(r);
  if (flags % 8 == 0) return NULL;
  if (flags % 16 == 1) options->struct_size = byte_of(r) % (sizeof *options + 8);
  if (flags % 16 == 2) options->reserved = (int32_t)byte_of(r) - 128;
  unsigned method = byte_of(r);
  options->method = method % 16 == 15 ? (method & 16 ? 3 : -1) : (int32_t)(method % 3); /* or unknown */
  options->budget = byte_of(r) % 80;
  options->seed = byte_of(r);
  static const size_t windows_exact[] = {1, 1, 1, 3, 4, 0}, windows_sampled[] = {1, 1, 2, 3, 4, 0};
  unsigned w = byte_of(r) % 6;
  options->time_windows = options->method == MEDINFER_SHAPLEY_PERMUTATION ? windows_sampled[w] : windows_exact[w];
  options->window_steps = byte_of(r) % 4;
  if (flags % 32 == 3) { /* sizes whose products overflow */
    options->time_windows = SIZE_MAX;
    options->window_steps = SIZE_MAX / 2;
  }
  return options;
}

/* A values buffer of a length near (players + 1) * outputs, allocated to exactly that
 * length (ASan catches a write past it); NULL when the length is 0 (now and then), or
 * rarely NULL with a length. */
static double *values_buffer(reader *r, size_t useful, size_t *length) {
  *length = length_of(r, useful);
  unsigned b = byte_of(r);
  if ((*length == 0 && b % 4 == 0) || b % 64 == 1) return NULL;
  return malloc(*length ? *length * sizeof(double) : 1);
}

static size_t static_width_of(const medinfer_model *model) {
  size_t count = 0, width = 0;
  medinfer_network_input_count(model, &count);
  for (size_t i = 0; i < count; i++) {
    const char *name = NULL;
    int64_t dims[MEDINFER_MAX_RANK];
    size_t rank = 0;
    if (medinfer_network_input(model, i, &name, dims, MEDINFER_MAX_RANK, &rank) == MEDINFER_OK && rank == 2 && dims[1] > 0)
      width += (size_t)dims[1];
  }
  return width;
}

static void fuzz_explain_sequence(reader *r, medinfer_model *model) {
  medinfer_session *session = NULL;
  if (medinfer_session_create(model, &session) != MEDINFER_OK) return;
  unsigned flags = byte_of(r), poison = byte_of(r);
  /* the explained sequence: batch 1 (rarely 0 or 2), 1..8 steps, NaN rarely */
  medinfer_sequence_batch sequence, background;
  medinfer_sequence_batch_init(&sequence);
  sequence.batch = (flags % 32 == 31) ? byte_of(r) % 3 : 1;
  sequence.max_steps = 1 + byte_of(r) % 8;
  sequence.features = (flags % 32 == 1) ? byte_of(r) % 12 : 8;
  float *values = clean_floats(r, sequence.batch * sequence.max_steps * sequence.features, poison % 16 == 15);
  sequence.values = values;
  int64_t length = (int64_t)(byte_of(r) % 10) - 1;
  int64_t lengths[2] = {length, length}; /* one per sequence: batch may be 2 */
  if (flags & 0x20) sequence.lengths = lengths;
  /* the background: 1..3 rows of one step or of the explained length (now and then
   * another), rarely none, with lengths, or a bad struct_size */
  medinfer_sequence_batch_init(&background);
  background.batch = (flags % 32 == 2) ? 0 : 1 + byte_of(r) % 3;
  unsigned steps_kind = byte_of(r) % 8;
  size_t explained = (sequence.lengths && length >= 1 && (size_t)length <= sequence.max_steps) ? (size_t)length
                                                                                                  : sequence.max_steps;
  background.max_steps = steps_kind == 7 ? 1 + byte_of(r) % 9 : (steps_kind < 3 ? 1 : explained);
  background.features = (flags % 32 == 3) ? byte_of(r) % 12 : 8;
  float *bg_values = clean_floats(r, background.batch * background.max_steps * background.features, poison % 16 == 14);
  background.values = bg_values;
  int64_t bg_lengths[3] = {1, 1, 1};
  if (flags % 32 == 4) background.lengths = bg_lengths; /* refused */
  if (flags % 32 == 5) background.struct_size = byte_of(r);
  /* the static rows: the model's own width (rarely another), one row per sequence
   * (rarely one too few or too many), named right (mostly) */
  size_t width = static_width_of(model);
  if (flags % 32 == 6) width = byte_of(r) % 6;
  float *static_values = clean_floats(r, (sequence.batch + background.batch) * width, poison % 16 == 13);
  medinfer_input_tensor statics[2];
  memset(statics, 0, sizeof statics);
  for (int k = 0; k < 2; k++) {
    size_t rows = k == 0 ? sequence.batch : background.batch;
    if (byte_of(r) % 32 == 31) rows = rows > 0 ? rows - 1 : 1;
    unsigned naming = byte_of(r) % 16;
    statics[k].name = naming == 15 ? NULL : (naming == 14 ? "vitals_x" : "static");
    statics[k].data = static_values + (k == 0 ? 0 : sequence.batch * width);
    statics[k].rank = 2;
    statics[k].shape[0] = (int64_t)rows;
    statics[k].shape[1] = (int64_t)width;
    size_t available = (k == 0 ? sequence.batch : background.batch) * width;
    statics[k].length = rows * width < available ? rows * width : available;
  }
  if (width > 0 || flags % 32 == 7) {
    sequence.static_inputs = &statics[0];
    sequence.static_input_count = flags % 32 == 8 ? 0 : 1;
    background.static_inputs = &statics[1];
    background.static_input_count = flags % 32 == 9 ? 0 : 1;
  }
  medinfer_shapley_options options;
  const medinfer_shapley_options *o = shapley_options_of(r, &options);
  size_t windows = o ? o->time_windows : 1;
  size_t useful = (width + (windows < 8 ? windows : 1) * 8 + 1);
  size_t out_length = 0;
  double *out = values_buffer(r, useful, &out_length);
  size_t players = 0, outputs = 0;
  unsigned nulls = byte_of(r) % 64; /* (a 0 byte, as past the input's end, gives none) */
  note(medinfer_explain_sequence(nulls == 63 ? NULL : session, nulls == 62 ? NULL : &sequence,
                                 nulls == 61 ? NULL : &background, o, out, out_length,
                                 nulls == 60 ? NULL : &players, nulls == 59 ? NULL : &outputs));
  free(out);
  free(static_values);
  free(bg_values);
  free(values);
  medinfer_session_free(session);
}

static void fuzz_stream_explain(reader *r, medinfer_model *model) {
  medinfer_stream_options stream_options;
  medinfer_stream_options_init(&stream_options);
  unsigned flags = byte_of(r);
  stream_options.mode = flags % 32 == 31 ? 2 : (int32_t)(byte_of(r) % 2);
  stream_options.window = 1 + byte_of(r) % 10;
  stream_options.explain_steps = flags % 16 == 1 ? 0 : 1 + byte_of(r) % 9;
  if (flags % 32 == 2) stream_options.struct_size = offsetof(medinfer_stream_options, explain_steps);
  medinfer_stream *stream = NULL;
  if (note(medinfer_stream_create(model, &stream_options, &stream)) != MEDINFER_OK) return;
  size_t width = static_width_of(model);
  if (width > 0) {
    float *row = clean_floats(r, width, byte_of(r) % 16 == 15);
    note(medinfer_stream_set_static(stream, NULL, row, width));
    free(row);
  }
  /* a few steps, then an explanation, twice (the second after more steps) */
  for (int round = 0; round < 2; round++) {
    size_t pushes = byte_of(r) % 10;
    for (size_t i = 0; i < pushes; i++) {
      float *sample = clean_floats(r, 8, byte_of(r) % 32 == 31);
      float out[4];
      note(medinfer_stream_push(model, stream, sample, 8, out, 4, NULL));
      free(sample);
    }
    unsigned b = byte_of(r);
    if (b % 32 == 31) medinfer_stream_reset(stream);
    size_t count = b % 16 == 1 ? length_of(r, 8) : 8;
    float *reference = clean_floats(r, count, b % 16 == 2);
    medinfer_shapley_options options;
    const medinfer_shapley_options *o = shapley_options_of(r, &options);
    size_t windows = o ? o->time_windows : 1;
    size_t out_length = 0;
    double *out = values_buffer(r, (windows < 8 ? windows : 1) * 8 + 1, &out_length);
    /* now and then another model's handle, or NULLs: refused */
    unsigned handle = byte_of(r) % 32;
    const medinfer_model *m = handle == 31 ? g_models[byte_of(r) % kModelCount] : (handle == 30 ? NULL : model);
    size_t players = 0, outputs = 0;
    note(medinfer_stream_explain(m, handle == 29 ? NULL : stream, handle == 28 ? NULL : reference, count, o, out,
                                 out_length, &players, &outputs));
    free(out);
    free(reference);
  }
  medinfer_stream_free(stream);
}

static void fuzz_explain_image(reader *r, medinfer_model *model) {
  unsigned flags = byte_of(r);
  /* the image model, or now and then the chosen (not an image) model */
  medinfer_session *session = NULL;
  if (medinfer_session_create(flags % 16 == 15 ? model : g_image_model, &session) != MEDINFER_OK) return;
  /* a small image: 1..8 x 1..8 pixels (the model resizes it to 300 x 300) */
  medinfer_image image;
  memset(&image, 0, sizeof image);
  image.struct_size = sizeof image;
  image.width = (flags % 64 == 1) ? 0 : 1 + byte_of(r) % 8;
  image.height = (flags % 64 == 2) ? 0 : 1 + byte_of(r) % 8;
  unsigned format = byte_of(r) % 16;
  image.format = format < 8 ? MEDINFER_PIXELS_RGB : (format < 11 ? MEDINFER_PIXELS_RGBA : (format < 15 ? MEDINFER_PIXELS_GREY : 0));
  size_t bpp = image.format == MEDINFER_PIXELS_RGBA ? 4 : (image.format == MEDINFER_PIXELS_GREY ? 1 : 3);
  image.stride = image.width * bpp + byte_of(r) % 3;
  if (flags % 64 == 3 && image.stride > 0) image.stride--; /* too small */
  if (flags % 64 == 4) image.reserved = 1;
  if (flags % 64 == 5) image.struct_size = byte_of(r) % sizeof image;
  size_t bytes = image.stride * image.height;
  uint8_t *pixels = malloc(bytes ? bytes : 1);
  for (size_t i = 0; i < bytes; i++) pixels[i] = (uint8_t)byte_of(r);
  image.pixels = pixels;

  /* Segments: a grid (at most 2 x 2 when it fits, or larger than the image) or the
   * caller's labels (at most 4 segments, now and then a label out of range or unused).
   * At most 16 coalitions or a 20-evaluation budget: each is a 300 x 300 CNN run. */
  medinfer_image_explain_options options;
  medinfer_image_explain_options_init(&options);
  static const size_t grid_sizes[] = {1, 2, 2, 1, 2, 1, 2, 0, 9, SIZE_MAX, (size_t)1 << 63};
  unsigned rows = byte_of(r) % 16, cols = byte_of(r) % 16;
  options.grid_rows = grid_sizes[rows < 15 ? rows % 7 : 7 + byte_of(r) % 4];
  options.grid_cols = grid_sizes[cols < 15 ? cols % 7 : 7 + byte_of(r) % 4];
  int32_t *labels = NULL;
  unsigned kind = byte_of(r);
  if (kind % 4 == 3) {
    size_t n = image.width * image.height;
    labels = malloc(n ? n * sizeof *labels : 1);
    size_t used = 1 + byte_of(r) % 4;
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(i < used ? i : byte_of(r) % used);
    unsigned count = byte_of(r) % 16;
    options.segment_count = count == 15 ? 0 : (count == 14 ? used + 1 : (count == 13 && used > 1 ? used - 1 : used));
    unsigned bad = byte_of(r) % 16;
    static const int32_t bad_labels[] = {-1, INT32_MIN, INT32_MAX, 4};
    if (bad >= 12 && n > 0) labels[byte_of(r) % n] = bad_labels[bad - 12];
    options.segments = labels;
  }
  unsigned masker = byte_of(r), method = byte_of(r);
  options.masker = masker % 16 == 15 ? 2 : (int32_t)(masker % 2); /* MEAN, BLUR, rarely unknown */
  options.method = method % 16 == 15 ? 3 : (int32_t)(method % 3);
  options.blur_radius = masker % 16 == 14 ? SIZE_MAX : byte_of(r) % 5;
  options.budget = byte_of(r) % 21;
  options.seed = byte_of(r);
  if (kind % 32 == 1) options.struct_size = byte_of(r) % sizeof options;
  /* a grid too large for the image is refused; keep the valid ones small (9 x 9 exact
   * would be 2^81 coalitions, AUTO a 1000-evaluation budget) */
  if (options.grid_rows == 9 && options.grid_rows <= image.height) options.grid_rows = 2;
  if (options.grid_cols == 9 && options.grid_cols <= image.width) options.grid_cols = 2;
  /* NULL options (an 8 x 8 grid, sampled with 1000 evaluations) only where refused */
  const medinfer_image_explain_options *o = (kind % 32 == 2 && (image.width < 8 || image.height < 8)) ? NULL : &options;

  size_t segments = labels ? options.segment_count : options.grid_rows * options.grid_cols;
  if (segments > 64) segments = 4;
  size_t segment_length = 0;
  double *segment_values = values_buffer(r, (segments + 1) * 5, &segment_length);
  size_t pixel_length = 0;
  float *pixel_values = NULL;
  if (byte_of(r) % 2) {
    pixel_length = length_of(r, image.width * image.height * 5);
    pixel_values = malloc(pixel_length ? pixel_length * sizeof(float) : 1);
  }
  size_t out_segments = 0, outputs = 0;
  note(medinfer_explain_image(flags % 64 == 6 ? NULL : session, flags % 64 == 7 ? NULL : &image, o, segment_values,
                              segment_length, pixel_values, pixel_length, &out_segments, &outputs));
  free(pixel_values);
  free(segment_values);
  free(labels);
  free(pixels);
  medinfer_session_free(session);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_models[0]) {
    for (size_t i = 0; i < kModelCount; i++) {
      if (medinfer_model_load(kModelPaths[i], &g_models[i]) != MEDINFER_OK) {
        fprintf(stderr, "capi_fuzz: %s: %s (run from the repository root)\n", kModelPaths[i], medinfer_last_error());
        abort();
      }
    }
    if (medinfer_model_load(kImageModelPath, &g_image_model) != MEDINFER_OK) {
      fprintf(stderr, "capi_fuzz: %s: %s (run from the repository root)\n", kImageModelPath, medinfer_last_error());
      abort();
    }
  }
  reader r = {data, size, 0};
  medinfer_model *model = g_models[byte_of(&r) % kModelCount];
  switch (byte_of(&r) % 7) {
  case 0: fuzz_trees(&r, model); break;
  case 1: fuzz_tensor_run(&r, model); break;
  case 2: fuzz_sequence_run(&r, model); break;
  case 3: fuzz_stream(&r, model); break;
  case 4: fuzz_explain_sequence(&r, model); break;
  case 5: fuzz_stream_explain(&r, model); break;
  default: fuzz_explain_image(&r, model); break;
  }
  return 0;
}

#ifdef REPLAY
int main(int argc, char **argv) {
  int count = 0;
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) { perror(argv[i]); return 1; }
    static uint8_t buffer[1 << 16];
    size_t n = fread(buffer, 1, sizeof buffer, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buffer, n);
    count++;
  }
  for (size_t i = 0; i < kModelCount; i++) medinfer_model_free(g_models[i]);
  medinfer_model_free(g_image_model);
  printf("capi_fuzz: replayed %d inputs: no crash; statuses:", count);
  for (int status = 0; status < 16; status++)
    if (g_status_counts[status]) printf(" %s %lu", medinfer_status_name(status), g_status_counts[status]);
  printf("\n");
  return 0;
}
#endif
