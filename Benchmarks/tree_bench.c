/* Times libmedinfer through its C API on rows the driver wrote (run_all.py).
 *
 *   tree_bench MODEL ROWS.f32 FEATURES [shap]
 *
 * Prints one JSON object: single-row predict latency (median over repeated calls,
 * rows cycling), 100k-row batch throughput (best of several runs), and with "shap"
 * the same for SHAP values. The driver pins the process to one core. */
#include <medinfer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef int (*kernel)(const medinfer_model *, const float *, size_t, size_t, double *, size_t);

static int predict(const medinfer_model *m, const float *x, size_t rows, size_t f, double *out, size_t n) {
  return medinfer_predict(m, x, rows, f, NULL, out, n);
}
static int shap(const medinfer_model *m, const float *x, size_t rows, size_t f, double *out, size_t n) {
  return medinfer_shap_values(m, x, rows, f, NULL, out, n);
}

/* Median seconds per call of one-row calls, measured in groups of `group` calls. */
static double single_row(kernel k, const medinfer_model *m, const float *x, size_t rows, size_t f,
                         double *out, size_t per_row, int groups, int group) {
  double *samples = malloc(sizeof(double) * (size_t)groups);
  size_t r = 0;
  for (int i = 0; i < group; i++) k(m, x + (r++ % rows) * f, 1, f, out, per_row); /* warm up */
  for (int g = 0; g < groups; g++) {
    double start = now();
    for (int i = 0; i < group; i++) {
      k(m, x + r * f, 1, f, out, per_row);
      r = (r + 1) % rows;
    }
    samples[g] = (now() - start) / group;
  }
  qsort(samples, (size_t)groups, sizeof(double), compare);
  double median = samples[groups / 2];
  free(samples);
  return median;
}

/* Best seconds for one call on `rows` rows. */
static double batch(kernel k, const medinfer_model *m, const float *x, size_t rows, size_t f, double *out,
                    size_t n, int runs) {
  double best = 1e30;
  for (int i = 0; i < runs; i++) {
    double start = now();
    if (k(m, x, rows, f, out, n) != MEDINFER_OK) {
      fprintf(stderr, "tree_bench: %s\n", medinfer_last_error());
      exit(1);
    }
    double t = now() - start;
    if (t < best) best = t;
  }
  return best;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL ROWS.f32 FEATURES [shap]\n", argv[0]);
    return 2;
  }
  size_t f = (size_t)strtoul(argv[3], NULL, 10);
  int with_shap = argc > 4 && strcmp(argv[4], "shap") == 0;
  FILE *file = fopen(argv[2], "rb");
  if (!file) { perror(argv[2]); return 1; }
  fseek(file, 0, SEEK_END);
  size_t rows = (size_t)ftell(file) / (sizeof(float) * f);
  fseek(file, 0, SEEK_SET);
  float *x = malloc(rows * f * sizeof(float));
  if (fread(x, sizeof(float) * f, rows, file) != rows) { fprintf(stderr, "short read\n"); return 1; }
  fclose(file);

  medinfer_model *m = NULL;
  if (medinfer_model_load(argv[1], &m) != MEDINFER_OK) {
    fprintf(stderr, "tree_bench: %s\n", medinfer_last_error());
    return 1;
  }
  size_t outputs = 0, raw_outputs = 0;
  medinfer_model_output_count(m, MEDINFER_OUTPUT_TRANSFORMED, &outputs);
  medinfer_model_output_count(m, MEDINFER_OUTPUT_RAW, &raw_outputs);
  size_t shap_per_row = (f + 1) * raw_outputs;
  double *out = malloc(sizeof(double) * rows * (shap_per_row > outputs ? shap_per_row : outputs));

  double one = single_row(predict, m, x, rows, f, out, outputs, 101, 2000);
  double many = batch(predict, m, x, rows, f, out, rows * outputs, 7);
  printf("{\"rows\": %zu, \"predict_single_us\": %.4f, \"predict_batch_rows_per_s\": %.1f", rows, one * 1e6,
         (double)rows / many);
  if (with_shap) {
    size_t shap_rows = rows < 2000 ? rows : 2000;
    double shap_one = single_row(shap, m, x, rows, f, out, shap_per_row, 21, 50);
    double shap_many = batch(shap, m, x, shap_rows, f, out, shap_rows * shap_per_row, 3);
    printf(", \"shap_single_us\": %.3f, \"shap_batch_us_per_row\": %.3f", shap_one * 1e6,
           shap_many / (double)shap_rows * 1e6);
  }
  printf("}\n");
  medinfer_model_free(m);
  free(out);
  free(x);
  return 0;
}
