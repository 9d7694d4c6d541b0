/*
 * mdi_convert.c - write a model as a MedInfer tree file (.mdi) at build time.
 *
 *   mdi_convert IN.json OUT.mdi
 *
 * Loads IN (any format libmedinfer reads), saves it with medinfer_model_save, loads the
 * result back and checks that both score and explain a few rows identically.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medinfer.h"

static int check(const char *what, int status) {
  if (status == MEDINFER_OK) return 1;
  fprintf(stderr, "mdi_convert: %s: %s: %s\n", what, medinfer_status_name(status), medinfer_last_error());
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s IN_MODEL OUT.mdi\n", argv[0]);
    return 2;
  }
  medinfer_model *a = NULL, *b = NULL;
  int rc = 1;
  size_t m = 0;
  float *rows = NULL;
  double *pa = NULL, *pb = NULL;
  enum { ROWS = 64 };
  if (!check(argv[1], medinfer_model_load(argv[1], &a)) || !check("save", medinfer_model_save(a, argv[2])) ||
      !check(argv[2], medinfer_model_load(argv[2], &b)) || !check("feature count", medinfer_model_feature_count(a, &m)))
    goto done;
  rows = malloc(ROWS * m * sizeof *rows);
  pa = malloc(ROWS * (m + 1) * sizeof *pa);
  pb = malloc(ROWS * (m + 1) * sizeof *pb);
  if (!rows || !pa || !pb) goto done;
  unsigned state = 12345;
  for (size_t i = 0; i < ROWS * m; i++) {
    state = state * 1103515245u + 12345u;
    unsigned r = (state >> 8) % 1000;
    rows[i] = r < 100 ? NAN : (float)(r % 50);
  }
  if (!check("predict", medinfer_predict(a, rows, ROWS, m, NULL, pa, ROWS)) ||
      !check("predict .mdi", medinfer_predict(b, rows, ROWS, m, NULL, pb, ROWS)))
    goto done;
  if (memcmp(pa, pb, ROWS * sizeof *pa) != 0) {
    fprintf(stderr, "mdi_convert: %s scores differently from %s\n", argv[2], argv[1]);
    goto done;
  }
  if (!check("shap", medinfer_shap_values(a, rows, ROWS, m, NULL, pa, ROWS * (m + 1))) ||
      !check("shap .mdi", medinfer_shap_values(b, rows, ROWS, m, NULL, pb, ROWS * (m + 1))))
    goto done;
  if (memcmp(pa, pb, ROWS * (m + 1) * sizeof *pa) != 0) {
    fprintf(stderr, "mdi_convert: %s explains differently from %s\n", argv[2], argv[1]);
    goto done;
  }
  for (size_t j = 0; j < m; j++) {
    const char *x = NULL, *y = NULL;
    if (!check("feature name", medinfer_model_feature_name(a, j, &x)) ||
        !check("feature name .mdi", medinfer_model_feature_name(b, j, &y)))
      goto done;
    if ((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0)) {
      fprintf(stderr, "mdi_convert: feature %zu is named differently in %s\n", j, argv[2]);
      goto done;
    }
  }
  printf("mdi_convert: %s -> %s (%zu features; scores, SHAP values and names identical)\n", argv[1], argv[2], m);
  rc = 0;
done:
  if (rc != 0) remove(argv[2]);
  free(rows);
  free(pa);
  free(pb);
  medinfer_model_free(a);
  medinfer_model_free(b);
  return rc;
}
