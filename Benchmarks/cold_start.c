/* A fresh process's cost to load libmedinfer.so and a model and score one row.
 *
 *   cold_start LIBRARY MODEL FEATURES
 *
 * Times dlopen + medinfer_model_load + one medinfer_predict from main(), and prints
 * microseconds; run_all.py also times the whole process from outside (exec included). */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef int (*load_fn)(const char *, void **);
typedef int (*predict_fn)(const void *, const float *, size_t, size_t, const void *, double *, size_t);

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s LIBRARY MODEL FEATURES\n", argv[0]);
    return 2;
  }
  double start = now();
  void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!library) { fprintf(stderr, "%s\n", dlerror()); return 1; }
  load_fn load = (load_fn)(size_t)dlsym(library, "medinfer_model_load");
  predict_fn predict = (predict_fn)(size_t)dlsym(library, "medinfer_predict");
  void *model = NULL;
  if (!load || !predict || load(argv[2], &model) != 0) { fprintf(stderr, "load failed\n"); return 1; }
  size_t f = (size_t)strtoul(argv[3], NULL, 10);
  float row[4096];
  for (size_t j = 0; j < f && j < 4096; j++) row[j] = (j % 3 == 0) ? NAN : (float)j;
  double risk = 0;
  if (predict(model, row, 1, f, NULL, &risk, 1) != 0) { fprintf(stderr, "predict failed\n"); return 1; }
  printf("%.1f\n", (now() - start) * 1e6);
  return 0;
}
