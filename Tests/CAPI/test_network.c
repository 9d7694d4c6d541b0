/*
 * C API tests for ONNX networks: the parity fixtures of Tests/Fixtures/onnx (outputs that
 * onnxruntime computed), every malformed file of Tests/Fixtures/malformed-onnx plus the
 * seed CNN cut at many points, every argument the network calls validate, buffers never
 * written past their length, and sessions of one model running on several threads.
 *
 *   test_network REPO_ROOT
 */
#include <dirent.h>
#include <json-c/json.h>
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
/* MEDINFER_TEST_QUICK (set by run.sh under ASan and valgrind, where a CNN run takes
 * seconds): fewer truncations and bit flips of the CNN. */
static int g_quick;


static char *path_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static unsigned char *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *data = malloc(n > 0 ? (size_t)n : 1);
  *size = fread(data, 1, (size_t)n, f);
  fclose(f);
  return data;
}

/* ---- parity fixtures ------------------------------------------------------------- */

static void run_fixture(const char *dir, const char *json_name, int from_memory) {
  char *json_path = path_join(dir, json_name);
  json_object *doc = json_object_from_file(json_path);
  CHECK(doc != NULL, "%s: unreadable JSON", json_path);
  if (!doc) { free(json_path); return; }
  json_object *model_field, *inputs, *outputs, *tol_field;
  json_object_object_get_ex(doc, "model", &model_field);
  json_object_object_get_ex(doc, "inputs", &inputs);
  json_object_object_get_ex(doc, "outputs", &outputs);
  double tolerance = 1e-5;
  if (json_object_object_get_ex(doc, "tolerance", &tol_field)) tolerance = json_object_get_double(tol_field);
  char *model_path = path_join(dir, json_object_get_string(model_field));
  medinfer_model *model = NULL;
  int status;
  if (from_memory) {
    size_t size = 0;
    unsigned char *bytes = read_file(model_path, &size);
    status = medinfer_model_load_from_memory(bytes, size, &model);
    free(bytes);
  } else {
    status = medinfer_model_load(model_path, &model);
  }
  CHECK_STATUS(status, MEDINFER_OK, json_name);
  medinfer_session *session = NULL;
  if (model) CHECK_STATUS(medinfer_session_create(model, &session), MEDINFER_OK, "session_create");
  size_t n_in = json_object_array_length(inputs), n_out = json_object_array_length(outputs);
  medinfer_input_tensor *in = calloc(n_in, sizeof *in);
  medinfer_output_tensor *out = calloc(n_out, sizeof *out);
  float **expected = calloc(n_out, sizeof *expected);
  size_t *expected_n = calloc(n_out, sizeof *expected_n);
  void **owned = calloc(n_in, sizeof *owned);
  for (size_t i = 0; i < n_in; i++) {
    json_object *t = json_object_array_get_idx(inputs, i), *f, *shape, *name;
    json_object_object_get_ex(t, "file", &f);
    json_object_object_get_ex(t, "shape", &shape);
    json_object_object_get_ex(t, "name", &name);
    char *p = path_join(dir, json_object_get_string(f));
    size_t bytes = 0;
    owned[i] = read_file(p, &bytes);
    free(p);
    in[i].name = json_object_get_string(name);
    in[i].data = owned[i];
    in[i].length = bytes / 4;
    in[i].rank = json_object_array_length(shape);
    for (size_t a = 0; a < in[i].rank && a < MEDINFER_MAX_RANK; a++)
      in[i].shape[a] = json_object_get_int64(json_object_array_get_idx(shape, a));
  }
  for (size_t j = 0; j < n_out; j++) {
    json_object *t = json_object_array_get_idx(outputs, j), *f, *name;
    json_object_object_get_ex(t, "file", &f);
    json_object_object_get_ex(t, "name", &name);
    char *p = path_join(dir, json_object_get_string(f));
    size_t bytes = 0;
    expected[j] = (float *)read_file(p, &bytes);
    expected_n[j] = bytes / 4;
    free(p);
    out[j].name = json_object_get_string(name);
    /* one guard float past the end: must stay untouched */
    out[j].data = malloc((expected_n[j] + 1) * sizeof(float));
    out[j].data[expected_n[j]] = -777.0f;
    out[j].length = expected_n[j];
  }
  if (session) {
    status = medinfer_session_run(session, in, n_in, out, n_out);
    CHECK_STATUS(status, MEDINFER_OK, json_name);
    for (size_t j = 0; status == MEDINFER_OK && j < n_out; j++) {
      double worst = 0;
      for (size_t e = 0; e < expected_n[j]; e++) {
        double want = expected[j][e], got = out[j].data[e];
        double err = (isnan(want) && isnan(got)) ? 0 : fabs(got - want) / (1 + fabs(want));
        if (!(err <= worst)) worst = err;
      }
      CHECK(worst <= tolerance, "%s output %s: relative error %.3g > %.3g", json_name, out[j].name, worst, tolerance);
      CHECK(out[j].data[expected_n[j]] == -777.0f, "%s output %s: written past its length", json_name, out[j].name);
    }
  }
  for (size_t i = 0; i < n_in; i++) free(owned[i]);
  for (size_t j = 0; j < n_out; j++) { free(expected[j]); free(out[j].data); }
  free(owned); free(in); free(out); free(expected); free(expected_n);
  medinfer_session_free(session);
  medinfer_model_free(model);
  free(model_path);
  free(json_path);
  json_object_put(doc);
}

static void test_parity_fixtures(void) {
  char *dir = path_join(g_root, "Tests/Fixtures/onnx");
  DIR *d = opendir(dir);
  CHECK(d != NULL, "cannot open %s", dir);
  int cases = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0) {
      run_fixture(dir, e->d_name, cases % 2);
      cases++;
    }
  }
  if (d) closedir(d);
  CHECK(cases >= 20, "only %d parity fixtures found", cases);
  printf("parity fixtures: %d cases run against onnxruntime's outputs\n", cases);
  free(dir);
}

/* ---- malformed files ------------------------------------------------------------- */

/* Loads `bytes` and, if that succeeds, runs it with every open dimension set to 2: one of
 * the two must fail, with a message. Returns 1 when refused. */
static int refused(const unsigned char *bytes, size_t size, const char *what) {
  medinfer_model *model = NULL;
  int status = medinfer_model_load_from_memory(bytes, size, &model);
  if (status != MEDINFER_OK) {
    CHECK(model == NULL, "%s: failed load left a model", what);
    CHECK(strlen(medinfer_last_error()) > 0, "%s: refused without a message", what);
    return 1;
  }
  medinfer_session *session = NULL;
  int refused_at_run = 0;
  if (medinfer_session_create(model, &session) == MEDINFER_OK) {
    size_t n_in = 0;
    medinfer_network_input_count(model, &n_in);
    medinfer_input_tensor in[8];
    float *buffers[8] = {0};
    memset(in, 0, sizeof in);
    for (size_t i = 0; i < n_in && i < 8; i++) {
      const char *name = NULL;
      size_t rank = 0;
      medinfer_network_input(model, i, &name, in[i].shape, MEDINFER_MAX_RANK, &rank);
      size_t count = 1;
      for (size_t a = 0; a < rank; a++) {
        if (in[i].shape[a] <= 0) in[i].shape[a] = 2;
        count *= (size_t)in[i].shape[a];
      }
      if (count > (1u << 24)) count = 1u << 24;
      buffers[i] = calloc(count, sizeof(float));
      in[i].name = name; in[i].data = buffers[i]; in[i].length = count; in[i].rank = rank;
    }
    medinfer_output_tensor out[1];
    memset(out, 0, sizeof out);
    status = medinfer_session_run(session, in, n_in < 8 ? n_in : 8, out, 0);
    refused_at_run = status != MEDINFER_OK;
    if (refused_at_run) CHECK(strlen(medinfer_last_error()) > 0, "%s: run refused without a message", what);
    for (size_t i = 0; i < 8; i++) free(buffers[i]);
  }
  medinfer_session_free(session);
  medinfer_model_free(model);
  return refused_at_run;
}

static void test_malformed_files(void) {
  char *dir = path_join(g_root, "Tests/Fixtures/malformed-onnx");
  DIR *d = opendir(dir);
  CHECK(d != NULL, "cannot open %s", dir);
  int files = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 5, ".onnx") != 0) continue;
    char *p = path_join(dir, e->d_name);
    size_t size = 0;
    unsigned char *bytes = read_file(p, &size);
    CHECK(refused(bytes ? bytes : (const unsigned char *)"", size, e->d_name), "%s was accepted", e->d_name);
    medinfer_model *model = NULL;
    CHECK(medinfer_model_load(p, &model) != MEDINFER_OK || model != NULL, "%s: load from file", e->d_name);
    medinfer_model_free(model);
    free(bytes);
    free(p);
    files++;
  }
  if (d) closedir(d);
  CHECK(files >= 40, "only %d malformed files found", files);
  /* The seed CNN cut at every 1009th byte, and with single bits flipped. */
  char *cnn = path_join(g_root, "examples/models/skin_cnn_300.onnx");
  size_t size = 0;
  unsigned char *bytes = read_file(cnn, &size);
  int cuts = 0;
  for (size_t cut = 1; bytes && cut < size; cut += g_quick ? 20011 : 1009, cuts++) {
    unsigned char *copy = malloc(cut);  /* exact length: ASan sees any over-read */
    memcpy(copy, bytes, cut);
    char what[64];
    snprintf(what, sizeof what, "skin_cnn_300.onnx cut at %zu", cut);
    CHECK(refused(copy, cut, what), "%s was accepted", what);
    free(copy);
  }
  uint64_t state = 42;
  int flips = 0;
  for (int i = 0; bytes && i < (g_quick ? 12 : 300); i++) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    size_t at = (size_t)(state >> 33) % 4096;  /* headers and graph structure, not weights */
    unsigned char *copy = malloc(size);
    memcpy(copy, bytes, size);
    copy[at] ^= (unsigned char)(1u << ((state >> 20) & 7));
    char what[64];
    snprintf(what, sizeof what, "bit flip at byte %zu", at);
    (void)refused(copy, size, what); /* may be harmless; must not crash */
    free(copy);
    flips++;
  }
  printf("malformed ONNX: %d files, %d truncations of the CNN, %d bit flips; none crashed\n", files, cuts, flips);
  free(bytes);
  free(cnn);
  free(dir);
}

/* ---- argument validation ------------------------------------------------------------ */

static void test_arguments(void) {
  char *cnn_path = path_join(g_root, "examples/models/skin_cnn_300.onnx");
  char *tree_path = path_join(g_root, "examples/models/noshow_xgb.json");
  medinfer_model *cnn = NULL, *tree = NULL;
  CHECK_STATUS(medinfer_model_load(cnn_path, &cnn), MEDINFER_OK, "load CNN");
  CHECK_STATUS(medinfer_model_load(tree_path, &tree), MEDINFER_OK, "load trees");
  if (!cnn || !tree) return;
  int kind = 0;
  medinfer_model_kind(cnn, &kind);
  CHECK(kind == MEDINFER_MODEL_ONNX, "kind %d", kind);
  size_t count = 0;
  CHECK_STATUS(medinfer_model_class_count(cnn, &count), MEDINFER_OK, "class_count");
  CHECK(count == 5, "class count %zu", count);
  const char *label = NULL;
  CHECK_STATUS(medinfer_model_class_label(cnn, 2, &label), MEDINFER_OK, "class_label");
  CHECK(label && strcmp(label, "mel") == 0, "label 2 is %s", label ? label : "(null)");
  CHECK_STATUS(medinfer_model_class_label(cnn, 5, &label), MEDINFER_ERR_INVALID_ARGUMENT, "label index 5");
  CHECK_STATUS(medinfer_model_class_label(cnn, SIZE_MAX, &label), MEDINFER_ERR_INVALID_ARGUMENT, "label SIZE_MAX");
  CHECK_STATUS(medinfer_network_input_count(tree, &count), MEDINFER_ERR_INVALID_ARGUMENT, "input_count on trees");
  CHECK_STATUS(medinfer_network_input_count(NULL, &count), MEDINFER_ERR_INVALID_ARGUMENT, "input_count NULL");
  CHECK_STATUS(medinfer_network_input_count(cnn, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "input_count out NULL");
  CHECK_STATUS(medinfer_network_output_count(cnn, &count), MEDINFER_OK, "output_count");
  CHECK(count == 1, "outputs %zu", count);
  int64_t dims[MEDINFER_MAX_RANK];
  const char *name = NULL;
  size_t rank = 0;
  CHECK_STATUS(medinfer_network_input(cnn, 0, &name, dims, MEDINFER_MAX_RANK, &rank), MEDINFER_OK, "input 0");
  CHECK(rank == 4 && dims[0] == -1 && dims[1] == 300 && dims[3] == 3, "input dims %zu [%lld %lld ...]", rank,
        (long long)dims[0], (long long)dims[1]);
  CHECK_STATUS(medinfer_network_input(cnn, 1, &name, dims, MEDINFER_MAX_RANK, &rank), MEDINFER_ERR_INVALID_ARGUMENT, "input 1");
  CHECK_STATUS(medinfer_network_input(cnn, 0, &name, NULL, 4, &rank), MEDINFER_ERR_INVALID_ARGUMENT, "dims NULL, capacity 4");
  dims[1] = 12345;
  CHECK_STATUS(medinfer_network_input(cnn, 0, &name, dims, 1, &rank), MEDINFER_OK, "capacity 1");
  CHECK(dims[1] == 12345 && rank == 4, "capacity 1 wrote past it");

  medinfer_session *session = NULL;
  CHECK_STATUS(medinfer_session_create(tree, &session), MEDINFER_ERR_INVALID_ARGUMENT, "session on trees");
  CHECK(session == NULL, "failed session_create left a session");
  CHECK_STATUS(medinfer_session_create(NULL, &session), MEDINFER_ERR_INVALID_ARGUMENT, "session NULL model");
  CHECK_STATUS(medinfer_session_create(cnn, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "session NULL out");
  medinfer_session_free(NULL);
  double prediction[4];
  float features[23] = {0};
  CHECK_STATUS(medinfer_predict(cnn, features, 1, 23, NULL, prediction, 4), MEDINFER_ERR_INVALID_ARGUMENT, "predict on CNN");
  CHECK_STATUS(medinfer_model_tree_count(cnn, &count), MEDINFER_ERR_INVALID_ARGUMENT, "tree_count on CNN");
  CHECK_STATUS(medinfer_session_create(cnn, &session), MEDINFER_OK, "session");

  size_t n = 300 * 300 * 3;
  float *pixels = calloc(n, sizeof(float));
  for (size_t i = 0; i < n; i++) pixels[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
  medinfer_input_tensor in = {"image", pixels, n, 4, {1, 300, 300, 3}};
  float probs[6] = {-1, -1, -1, -1, -1, -9};
  medinfer_output_tensor out = {"probabilities", probs, 5, 0, {0}};
  CHECK_STATUS(medinfer_session_run(session, &in, 1, &out, 1), MEDINFER_OK, "run");
  CHECK(out.rank == 2 && out.shape[0] == 1 && out.shape[1] == 5, "output shape");
  CHECK(probs[5] == -9, "wrote past the output");
  float sum = probs[0] + probs[1] + probs[2] + probs[3] + probs[4];
  CHECK(fabsf(sum - 1) < 1e-5f, "probabilities sum to %f", sum);

  /* too small: shapes filled, nothing written */
  float small[4] = {-3, -3, -3, -3};
  medinfer_output_tensor out_small = {NULL, small, 4, 0, {0}};
  CHECK_STATUS(medinfer_session_run(session, &in, 1, &out_small, 1), MEDINFER_ERR_BUFFER_TOO_SMALL, "4-float buffer");
  CHECK(out_small.rank == 2 && out_small.shape[1] == 5, "shape not reported on BUFFER_TOO_SMALL");
  CHECK(small[0] == -3 && small[3] == -3, "wrote into a too-small buffer");
  medinfer_output_tensor out_query = {NULL, NULL, 0, 0, {0}};
  CHECK_STATUS(medinfer_session_run(session, &in, 1, &out_query, 1), MEDINFER_ERR_BUFFER_TOO_SMALL, "shape query");
  CHECK(out_query.shape[1] == 5, "shape query");
  CHECK_STATUS(medinfer_session_run(session, &in, 1, NULL, 0), MEDINFER_OK, "no outputs wanted");

  medinfer_input_tensor bad = in;
  bad.name = "pixels";
  CHECK_STATUS(medinfer_session_run(session, &bad, 1, &out, 1), MEDINFER_ERR_INVALID_ARGUMENT, "unknown input name");
  bad = in; bad.length = n - 1;
  CHECK_STATUS(medinfer_session_run(session, &bad, 1, &out, 1), MEDINFER_ERR_INVALID_ARGUMENT, "length != shape");
  bad = in; bad.shape[1] = 299; bad.length = 299 * 300 * 3;
  CHECK_STATUS(medinfer_session_run(session, &bad, 1, &out, 1), MEDINFER_ERR_SHAPE_MISMATCH, "fixed dim 299");
  bad = in; bad.shape[0] = 0; bad.length = 0;
  CHECK_STATUS(medinfer_session_run(session, &bad, 1, &out, 1), MEDINFER_ERR_INVALID_ARGUMENT, "zero batch");
  bad = in; bad.rank = 9;
  CHECK_STATUS(medinfer_session_run(session, &bad, 1, &out, 1), MEDINFER_ERR_INVALID_ARGUMENT, "rank 9");
  bad = in; bad.rank = 3;
  bad.length = 300 * 300;
  CHECK_STATUS(medinfer_session_run(session, &bad, 1, &out, 1), MEDINFER_ERR_SHAPE_MISMATCH, "rank 3");
  bad = in; bad.shape[0] = INT64_MAX; bad.length = SIZE_MAX;
  CHECK(medinfer_session_run(session, &bad, 1, &out, 1) != MEDINFER_OK, "dims overflowing");
  bad = in; bad.shape[0] = -1;
  CHECK_STATUS(medinfer_session_run(session, &bad, 1, &out, 1), MEDINFER_ERR_INVALID_ARGUMENT, "negative dim");
  bad = in; bad.data = NULL;
  CHECK_STATUS(medinfer_session_run(session, &bad, 1, &out, 1), MEDINFER_ERR_INVALID_ARGUMENT, "NULL data");
  medinfer_input_tensor twice[2] = {in, in};
  CHECK_STATUS(medinfer_session_run(session, twice, 2, &out, 1), MEDINFER_ERR_INVALID_ARGUMENT, "two inputs given");
  CHECK_STATUS(medinfer_session_run(session, NULL, 1, &out, 1), MEDINFER_ERR_INVALID_ARGUMENT, "inputs NULL");
  CHECK_STATUS(medinfer_session_run(session, &in, 0, &out, 1), MEDINFER_ERR_INVALID_ARGUMENT, "no inputs");
  CHECK_STATUS(medinfer_session_run(NULL, &in, 1, &out, 1), MEDINFER_ERR_INVALID_ARGUMENT, "session NULL");
  medinfer_output_tensor bad_out = {"logits", probs, 5, 0, {0}};
  CHECK_STATUS(medinfer_session_run(session, &in, 1, &bad_out, 1), MEDINFER_ERR_INVALID_ARGUMENT, "unknown output");
  medinfer_output_tensor outs[2] = {out, out};
  outs[1].name = NULL;
  CHECK_STATUS(medinfer_session_run(session, &in, 1, outs, SIZE_MAX), MEDINFER_ERR_INVALID_ARGUMENT, "output_count SIZE_MAX");
  outs[0].name = NULL;
  CHECK_STATUS(medinfer_session_run(session, &in, 1, outs, 2), MEDINFER_ERR_INVALID_ARGUMENT, "output 1 of a 1-output model");
  /* NaN and Inf inputs are arithmetic, not errors */
  pixels[17] = NAN;
  pixels[18] = INFINITY;
  CHECK_STATUS(medinfer_session_run(session, &in, 1, &out, 1), MEDINFER_OK, "NaN/Inf input");

  /* images */
  size_t w = 37, h = 23;
  uint8_t *rgb = malloc(w * h * 3);
  for (size_t i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(i * 7);
  medinfer_image image = {sizeof(medinfer_image), rgb, w, h, w * 3, MEDINFER_PIXELS_RGB, 0};
  size_t written = 0;
  float p[6] = {0, 0, 0, 0, 0, -9};
  CHECK_STATUS(medinfer_classify_image(session, &image, p, 5, &written), MEDINFER_OK, "classify");
  CHECK(written == 5 && p[5] == -9, "classify wrote %zu values / past the end", written);
  CHECK_STATUS(medinfer_classify_image(session, &image, p, 4, &written), MEDINFER_ERR_BUFFER_TOO_SMALL, "classify 4");
  CHECK(written == 5, "needed count not reported");
  medinfer_image bad_image = image;
  bad_image.width = 0;
  CHECK_STATUS(medinfer_classify_image(session, &bad_image, p, 5, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "width 0");
  bad_image = image; bad_image.height = 0;
  CHECK_STATUS(medinfer_classify_image(session, &bad_image, p, 5, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "height 0");
  bad_image = image; bad_image.stride = w * 3 - 1;
  CHECK_STATUS(medinfer_classify_image(session, &bad_image, p, 5, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "short stride");
  bad_image = image; bad_image.format = 7;
  CHECK_STATUS(medinfer_classify_image(session, &bad_image, p, 5, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "format 7");
  bad_image = image; bad_image.reserved = 1;
  CHECK_STATUS(medinfer_classify_image(session, &bad_image, p, 5, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "reserved");
  bad_image = image; bad_image.struct_size = 8;
  CHECK_STATUS(medinfer_classify_image(session, &bad_image, p, 5, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "struct_size");
  bad_image = image; bad_image.pixels = NULL;
  CHECK_STATUS(medinfer_classify_image(session, &bad_image, p, 5, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "pixels NULL");
  bad_image = image; bad_image.width = SIZE_MAX; bad_image.stride = SIZE_MAX;
  CHECK_STATUS(medinfer_classify_image(session, &bad_image, p, 5, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "width SIZE_MAX");
  CHECK_STATUS(medinfer_classify_image(session, NULL, p, 5, NULL), MEDINFER_ERR_INVALID_ARGUMENT, "image NULL");
  CHECK_STATUS(medinfer_classify_image(session, &image, NULL, 5, NULL), MEDINFER_ERR_BUFFER_TOO_SMALL, "probs NULL");
  /* a 1x1 grey image and a 1-pixel-wide RGBA image are valid */
  uint8_t one = 200;
  medinfer_image grey = {sizeof(medinfer_image), &one, 1, 1, 1, MEDINFER_PIXELS_GREY, 0};
  CHECK_STATUS(medinfer_classify_image(session, &grey, p, 5, NULL), MEDINFER_OK, "1x1 grey");
  free(rgb);
  free(pixels);
  medinfer_session_free(session);
  medinfer_model_free(cnn);
  medinfer_model_free(tree);
  free(cnn_path);
  free(tree_path);
}

/* ---- threads: one model, a session per thread ----------------------------------- */

typedef struct {
  medinfer_model *model;
  const float *input;
  float result[5];
  int status;
} worker_args;

static void *worker(void *p) {
  worker_args *a = p;
  medinfer_session *s = NULL;
  a->status = medinfer_session_create(a->model, &s);
  for (int round = 0; round < 3 && a->status == MEDINFER_OK; round++) {
    medinfer_input_tensor in = {NULL, a->input, 64 * 80 * 3, 4, {1, 64, 80, 3}};
    medinfer_output_tensor out = {NULL, a->result, 5, 0, {0}};
    a->status = medinfer_session_run(s, &in, 1, &out, 1);
  }
  medinfer_session_free(s);
  return NULL;
}

static void test_threads(void) {
  char *path = path_join(g_root, "examples/models/skin_cnn.onnx");
  medinfer_model *model = NULL;
  CHECK_STATUS(medinfer_model_load(path, &model), MEDINFER_OK, "load skin_cnn");
  free(path);
  if (!model) return;
  float *input = malloc(64 * 80 * 3 * sizeof(float));
  for (int i = 0; i < 64 * 80 * 3; i++) input[i] = (float)((i * 37) % 256);
  worker_args args[4];
  pthread_t threads[4];
  for (int t = 0; t < 4; t++) {
    args[t].model = model; args[t].input = input;
    pthread_create(&threads[t], NULL, worker, &args[t]);
  }
  for (int t = 0; t < 4; t++) pthread_join(threads[t], NULL);
  for (int t = 0; t < 4; t++) {
    CHECK_STATUS(args[t].status, MEDINFER_OK, "thread run");
    CHECK(memcmp(args[t].result, args[0].result, sizeof args[0].result) == 0, "thread %d differs", t);
  }
  free(input);
  medinfer_model_free(model);
}

int main(int argc, char **argv) {
  if (argc > 1) g_root = argv[1];
  g_quick = getenv("MEDINFER_TEST_QUICK") != NULL;
  test_parity_fixtures();
  test_malformed_files();
  test_arguments();
  test_threads();
  printf("test_network: %d checks passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
