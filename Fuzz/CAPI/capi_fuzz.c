/*
 * Fuzz target for the C API itself: the input bytes choose a bundled model, a call
 * (predict, SHAP values, a tensor run, a sequence batch, a stream's life) and every
 * argument of it: counts and shapes that may be wrong, lengths that may be zero or too
 * large, names that may be unknown, NaN/Inf/huge values, output buffers of any size.
 * Every buffer is allocated with exactly the length the call is told, so a write past
 * it is a heap overflow that AddressSanitizer reports (the library is the ASan build).
 * Whatever the arguments, a call must return a status, never crash.
 * Built two ways:
 *   - clang -fsanitize=fuzzer,address against the ASan library (make capi-fuzz);
 *   - with -DREPLAY (make test): replays the files given on the command line.
 * Run from the repository root (model paths are relative).
 */
#include <math.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_models[0]) {
    for (size_t i = 0; i < kModelCount; i++) {
      if (medinfer_model_load(kModelPaths[i], &g_models[i]) != MEDINFER_OK) {
        fprintf(stderr, "capi_fuzz: %s: %s (run from the repository root)\n", kModelPaths[i], medinfer_last_error());
        abort();
      }
    }
  }
  reader r = {data, size, 0};
  medinfer_model *model = g_models[byte_of(&r) % kModelCount];
  switch (byte_of(&r) % 4) {
  case 0: fuzz_trees(&r, model); break;
  case 1: fuzz_tensor_run(&r, model); break;
  case 2: fuzz_sequence_run(&r, model); break;
  default: fuzz_stream(&r, model); break;
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
  printf("capi_fuzz: replayed %d inputs: no crash; statuses:", count);
  for (int status = 0; status < 16; status++)
    if (g_status_counts[status]) printf(" %s %lu", medinfer_status_name(status), g_status_counts[status]);
  printf("\n");
  return 0;
}
#endif
