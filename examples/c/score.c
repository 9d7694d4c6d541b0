/*
 * score.c - score a CSV file with a MedInfer model from C.
 *
 *   score MODEL.json|MODEL.txt [ROWS.csv]
 *
 * Loads an XGBoost JSON, LightGBM text or MedInfer forest JSON model, prints what the
 * model is, then scores the rows of ROWS.csv and prints one line per row: the
 * prediction (every output column: the positive-class probability of a binary model,
 * one probability per class for scikit-learn classifiers, ...) and the raw margin.
 * Without ROWS.csv it scores one built-in row with every feature missing.
 *
 * The CSV has a header row. When the model stores feature names, columns are matched
 * to features by name (in any order); an unknown or missing column is an error that
 * names it. Without stored names the columns are taken in order. An empty field or
 * "nan" (any case) is a missing value. Lines may be of any length.
 *
 * Every MedInfer call is checked; on failure the program prints the status and
 * medinfer_last_error() and exits with status 1 (2 for a usage error).
 *
 * Build (from the repository root, after `swift build -c release --product medinfer`):
 *   cc -std=c99 -Wall -Wextra -Iinclude examples/c/score.c -L.build/release -lmedinfer \
 *      -Wl,-rpath,"$PWD/.build/release" -o score
 */
#define _POSIX_C_SOURCE 200809L /* getline */

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medinfer.h"

/* Rows beyond this many are scored but not printed one by one. */
#define MAX_PRINTED_ROWS 100

/* ------------------------------------------------------------------------------------ */
/* Error reporting                                                                        */
/* ------------------------------------------------------------------------------------ */

/* Prints a failed MedInfer call: what we were doing, the status and the library's
 * message. Returns 0 so that callers can write `return medinfer_failed(...)`. */
static int medinfer_failed(const char *what, int status) {
  fprintf(stderr, "score: %s failed: %s: %s\n", what, medinfer_status_name(status), medinfer_last_error());
  return 0;
}

/* Checks the status of a MedInfer call: 1 on success, else reports and returns 0. */
static int ok(const char *what, int status) {
  return status == MEDINFER_OK ? 1 : medinfer_failed(what, status);
}

/* ------------------------------------------------------------------------------------ */
/* Model information                                                                      */
/* ------------------------------------------------------------------------------------ */

typedef struct {
  int kind;
  const char *objective;
  size_t features, classes, trees, iterations, default_limit;
  size_t outputs, raw_outputs; /* values per row, transformed and raw */
  const char **names;          /* features entries, or NULL when the file stores none */
} model_info;

static const char *kind_name(int kind) {
  switch (kind) {
  case MEDINFER_MODEL_XGBOOST: return "XGBoost JSON";
  case MEDINFER_MODEL_LIGHTGBM: return "LightGBM text";
  case MEDINFER_MODEL_SKLEARN_FOREST: return "MedInfer forest JSON (scikit-learn)";
  default: return "unknown";
  }
}

/* Queries everything the program prints or needs. Returns 0 after reporting a failure. */
static int query_model(const medinfer_model *model, model_info *info) {
  memset(info, 0, sizeof *info);
  if (!ok("medinfer_model_kind", medinfer_model_kind(model, &info->kind)) ||
      !ok("medinfer_model_objective", medinfer_model_objective(model, &info->objective)) ||
      !ok("medinfer_model_feature_count", medinfer_model_feature_count(model, &info->features)) ||
      !ok("medinfer_model_class_count", medinfer_model_class_count(model, &info->classes)) ||
      !ok("medinfer_model_tree_count", medinfer_model_tree_count(model, &info->trees)) ||
      !ok("medinfer_model_iteration_count", medinfer_model_iteration_count(model, &info->iterations)) ||
      !ok("medinfer_model_default_iteration_limit",
          medinfer_model_default_iteration_limit(model, &info->default_limit)) ||
      !ok("medinfer_model_output_count",
          medinfer_model_output_count(model, MEDINFER_OUTPUT_TRANSFORMED, &info->outputs)) ||
      !ok("medinfer_model_output_count", medinfer_model_output_count(model, MEDINFER_OUTPUT_RAW, &info->raw_outputs)))
    return 0;

  /* Feature names: the library returns NULL for every index when the file has none. */
  info->names = calloc(info->features, sizeof *info->names);
  if (!info->names) {
    fprintf(stderr, "score: out of memory\n");
    return 0;
  }
  int named = 0;
  for (size_t j = 0; j < info->features; j++) {
    if (!ok("medinfer_model_feature_name", medinfer_model_feature_name(model, j, &info->names[j]))) return 0;
    named += info->names[j] != NULL;
  }
  if (!named) {
    free(info->names);
    info->names = NULL;
  }
  return 1;
}

static void print_model_info(const char *path, const model_info *info) {
  printf("model       %s\n", path);
  printf("library     libmedinfer %s\n", medinfer_version());
  printf("kind        %s\n", kind_name(info->kind));
  printf("objective   %s\n", info->objective);
  printf("features    %zu%s\n", info->features, info->names ? " (named)" : " (no names stored)");
  printf("classes     %zu\n", info->classes);
  printf("trees       %zu\n", info->trees);
  printf("iterations  %zu (predictions use %zu)\n", info->iterations, info->default_limit);
}

/* ------------------------------------------------------------------------------------ */
/* CSV reading                                                                            */
/* ------------------------------------------------------------------------------------ */

/* The fields of one line, pointing into the line buffer (split in place). */
typedef struct {
  char **items;
  size_t count, capacity;
} fields;

static int fields_push(fields *f, char *item) {
  if (f->count == f->capacity) {
    size_t cap = f->capacity ? 2 * f->capacity : 32;
    char **bigger = realloc(f->items, cap * sizeof *bigger);
    if (!bigger) return 0;
    f->items = bigger;
    f->capacity = cap;
  }
  f->items[f->count++] = item;
  return 1;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
  return s;
}

/* Splits a CSV line in place at commas. A field may be quoted ("a, b"), with "" for a
 * quote inside it. Unquoted fields are trimmed of spaces and tabs. Returns 0 when out
 * of memory. */
static int split_csv(char *line, fields *out) {
  out->count = 0;
  char *p = line;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    char *start = p;
    if (*p == '"') {
      /* Quoted: unescape "" into " while copying towards the start. */
      char *w = start;
      p++;
      while (*p) {
        if (*p == '"' && p[1] == '"') {
          *w++ = '"';
          p += 2;
        } else if (*p == '"') {
          p++;
          break;
        } else {
          *w++ = *p++;
        }
      }
      while (*p && *p != ',') p++; /* anything between the closing quote and the comma */
      char *next = *p ? p + 1 : NULL;
      *w = '\0';
      if (!fields_push(out, start)) return 0;
      if (!next) return 1;
      p = next;
    } else {
      char *comma = strchr(p, ',');
      if (comma) *comma = '\0';
      if (!fields_push(out, trim(start))) return 0;
      if (!comma) return 1;
      p = comma + 1;
    }
  }
}

/* Parses one field: empty or "nan" is missing (NaN); anything else must be a number. */
static int parse_value(const char *text, float *value) {
  if (text[0] == '\0' || (strlen(text) == 3 && tolower((unsigned char)text[0]) == 'n' &&
                          tolower((unsigned char)text[1]) == 'a' && tolower((unsigned char)text[2]) == 'n')) {
    *value = NAN;
    return 1;
  }
  char *end;
  errno = 0;
  double d = strtod(text, &end);
  if (end == text || *end != '\0') return 0;
  *value = (float)d; /* out-of-range values become +/-inf, which the model accepts */
  return 1;
}

/* A growing row-major matrix of floats. */
typedef struct {
  float *values;
  size_t rows, columns, capacity_rows;
} matrix;

static float *matrix_add_row(matrix *m) {
  if (m->rows == m->capacity_rows) {
    size_t cap = m->capacity_rows ? 2 * m->capacity_rows : 64;
    float *bigger = realloc(m->values, cap * m->columns * sizeof *bigger);
    if (!bigger) return NULL;
    m->values = bigger;
    m->capacity_rows = cap;
  }
  return m->values + m->rows++ * m->columns;
}

/* Strips the line end (\n or \r\n). */
static void chomp(char *line) { line[strcspn(line, "\r\n")] = '\0'; }

/* Reads the CSV into `x` (x->columns = the model's feature count), mapping columns to
 * features. Returns 0 after printing an error. */
static int read_csv(const char *path, const model_info *info, matrix *x) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "score: cannot open %s: %s\n", path, strerror(errno));
    return 0;
  }
  int result = 0;
  char *line = NULL;
  size_t line_capacity = 0;
  fields header = {0}, row = {0};
  size_t *feature_of_column = NULL; /* column -> feature index */
  char **column_names = NULL;       /* copies: the header line buffer is reused */
  size_t columns = 0;

  /* Header. */
  if (getline(&line, &line_capacity, f) < 0) {
    fprintf(stderr, "score: %s is empty (a header row is required)\n", path);
    goto done;
  }
  chomp(line);
  if (line[0] == '\xEF' && line[1] == '\xBB' && line[2] == '\xBF') memmove(line, line + 3, strlen(line + 3) + 1);
  if (!split_csv(line, &header)) goto out_of_memory;
  columns = header.count;
  feature_of_column = calloc(columns, sizeof *feature_of_column);
  column_names = calloc(columns, sizeof *column_names);
  if (!feature_of_column || !column_names) goto out_of_memory;
  for (size_t c = 0; c < columns; c++)
    if (!(column_names[c] = strdup(header.items[c]))) goto out_of_memory;

  if (info->names) {
    /* Match by name: every column must be a feature, every feature a column. */
    for (size_t c = 0; c < columns; c++) {
      size_t j = 0;
      while (j < info->features && strcmp(info->names[j], column_names[c]) != 0) j++;
      if (j == info->features) {
        fprintf(stderr, "score: column '%s' of %s is not a feature of the model; the model's features are:\n",
                column_names[c], path);
        for (size_t k = 0; k < info->features; k++) fprintf(stderr, "  %s\n", info->names[k]);
        goto done;
      }
      for (size_t d = 0; d < c; d++)
        if (feature_of_column[d] == j) {
          fprintf(stderr, "score: column '%s' appears twice in the header of %s\n", column_names[c], path);
          goto done;
        }
      feature_of_column[c] = j;
    }
    for (size_t j = 0; j < info->features; j++) {
      size_t c = 0;
      while (c < columns && feature_of_column[c] != j) c++;
      if (c == columns) {
        fprintf(stderr, "score: %s has no column for the model's feature '%s'\n", path, info->names[j]);
        goto done;
      }
    }
  } else {
    /* No names in the model: columns in order. */
    if (columns != info->features) {
      fprintf(stderr, "score: %s has %zu columns; the model has %zu features (and stores no names to match)\n", path,
              columns, info->features);
      goto done;
    }
    for (size_t c = 0; c < columns; c++) feature_of_column[c] = c;
    fprintf(stderr, "score: note: the model stores no feature names; using the columns of %s in order\n", path);
  }

  /* Rows. */
  x->columns = info->features;
  size_t line_number = 1;
  while (getline(&line, &line_capacity, f) >= 0) {
    line_number++;
    chomp(line);
    if (trim(line)[0] == '\0') continue; /* blank line */
    if (!split_csv(line, &row)) goto out_of_memory;
    if (row.count != columns) {
      fprintf(stderr, "score: %s line %zu has %zu fields; the header has %zu\n", path, line_number, row.count,
              columns);
      goto done;
    }
    float *values = matrix_add_row(x);
    if (!values) goto out_of_memory;
    for (size_t c = 0; c < columns; c++) {
      if (!parse_value(row.items[c], &values[feature_of_column[c]])) {
        fprintf(stderr, "score: %s line %zu, column '%s': '%s' is not a number (use an empty field or nan for a "
                        "missing value)\n",
                path, line_number, column_names[c], row.items[c]);
        goto done;
      }
    }
  }
  if (ferror(f)) {
    fprintf(stderr, "score: error reading %s: %s\n", path, strerror(errno));
    goto done;
  }
  if (x->rows == 0) {
    fprintf(stderr, "score: %s has a header but no rows\n", path);
    goto done;
  }
  result = 1;
  goto done;

out_of_memory:
  fprintf(stderr, "score: out of memory reading %s\n", path);
done:
  for (size_t c = 0; column_names && c < columns; c++) free(column_names[c]);
  free(column_names);
  free(feature_of_column);
  free(header.items);
  free(row.items);
  free(line);
  fclose(f);
  return result;
}

/* ------------------------------------------------------------------------------------ */
/* Output                                                                                 */
/* ------------------------------------------------------------------------------------ */

/* The heading of transformed output column k. */
static void output_heading(const model_info *info, size_t k, char *buf, size_t size) {
  if (info->outputs == 1) {
    const char *name = "prediction";
    if (strcmp(info->objective, "multi:softmax") == 0) name = "class";
    else if (info->classes == 2) name = "probability";
    snprintf(buf, size, "%s", name);
  } else {
    snprintf(buf, size, "p[%zu]", k);
  }
}

static void margin_heading(const model_info *info, size_t k, char *buf, size_t size) {
  if (info->raw_outputs == 1) snprintf(buf, size, "margin");
  else snprintf(buf, size, "margin[%zu]", k);
}

#define COLUMN_WIDTH 13

static void print_table(const model_info *info, const matrix *x, const double *out, const double *raw) {
  char heading[64];
  printf("\n%5s", "row");
  for (size_t k = 0; k < info->outputs; k++) {
    output_heading(info, k, heading, sizeof heading);
    printf(" %*s", COLUMN_WIDTH, heading);
  }
  for (size_t k = 0; k < info->raw_outputs; k++) {
    margin_heading(info, k, heading, sizeof heading);
    printf(" %*s", COLUMN_WIDTH, heading);
  }
  printf("\n");
  size_t shown = x->rows < MAX_PRINTED_ROWS ? x->rows : MAX_PRINTED_ROWS;
  for (size_t r = 0; r < shown; r++) {
    printf("%5zu", r + 1);
    for (size_t k = 0; k < info->outputs; k++) printf(" %*.6f", COLUMN_WIDTH, out[r * info->outputs + k]);
    for (size_t k = 0; k < info->raw_outputs; k++) printf(" %*.6f", COLUMN_WIDTH, raw[r * info->raw_outputs + k]);
    printf("\n");
  }
  if (shown < x->rows) printf("  ... %zu more rows scored, not shown\n", x->rows - shown);
}

/* ------------------------------------------------------------------------------------ */

/* Prints the five features that moved the first row's raw output most (TreeSHAP),
 * with signed contributions: why this row got its score. Models without node covers
 * cannot be explained; that is reported and is not an error of the program. */
static int print_top_drivers(const medinfer_model *model, const model_info *info, const matrix *x) {
  size_t m = info->features, k = info->raw_outputs, per_row = (m + 1) * k;
  double *shap = malloc(per_row * sizeof *shap);
  if (!shap) {
    fprintf(stderr, "score: out of memory for SHAP values\n");
    return 0;
  }
  int status = medinfer_shap_values(model, x->values, 1, x->columns, NULL, shap, per_row);
  if (status == MEDINFER_ERR_UNSUPPORTED) {
    printf("\nno explanation: %s\n", medinfer_last_error());
    free(shap);
    return 1;
  }
  if (!ok("medinfer_shap_values", status)) {
    free(shap);
    return 0;
  }
  size_t column = k - 1; /* the positive class (or the only output) */
  printf("\ntop drivers of row 1 (SHAP, raw output%s): expected %+.4f\n", k > 1 ? " of the last class" : "",
         shap[m * k + column]);
  int shown[5] = {-1, -1, -1, -1, -1};
  for (int rank = 0; rank < 5 && (size_t)rank < m; rank++) {
    int best = -1;
    for (size_t j = 0; j < m; j++) {
      int taken = 0;
      for (int r = 0; r < rank; r++) taken |= shown[r] == (int)j;
      if (!taken && (best < 0 || fabs(shap[j * k + column]) > fabs(shap[(size_t)best * k + column]))) best = (int)j;
    }
    shown[rank] = best;
    char fallback[32];
    snprintf(fallback, sizeof fallback, "feature %d", best);
    const char *name = info->names ? info->names[best] : fallback;
    printf("  %-42s %+.4f\n", name, shap[(size_t)best * k + column]);
  }
  free(shap);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3 || argv[1][0] == '-') {
    fprintf(stderr, "usage: %s MODEL.json|MODEL.txt [ROWS.csv]\n", argv[0]);
    return 2;
  }
  const char *model_path = argv[1];
  const char *csv_path = argc == 3 ? argv[2] : NULL;

  if (medinfer_abi_version() != MEDINFER_ABI_VERSION) {
    fprintf(stderr, "score: libmedinfer has ABI %d, this program was built for %d\n", medinfer_abi_version(),
            MEDINFER_ABI_VERSION);
    return 1;
  }

  int rc = 1;
  medinfer_model *model = NULL;
  model_info info = {0};
  matrix x = {0};
  double *out = NULL, *raw = NULL;

  if (!ok("medinfer_model_load", medinfer_model_load(model_path, &model))) goto done;
  if (!query_model(model, &info)) goto done;
  print_model_info(model_path, &info);

  if (csv_path) {
    if (!read_csv(csv_path, &info, &x)) goto done;
    printf("rows        %zu from %s\n", x.rows, csv_path);
  } else {
    /* One built-in row, every feature missing: each tree follows its default path. */
    x.columns = info.features;
    float *row = matrix_add_row(&x);
    if (!row) {
      fprintf(stderr, "score: out of memory\n");
      goto done;
    }
    for (size_t j = 0; j < info.features; j++) row[j] = NAN;
    printf("rows        1 built-in row with every feature missing (pass a CSV to score your own)\n");
  }

  /* Transformed output (the defaults: options NULL), then the raw margins. */
  out = malloc(x.rows * info.outputs * sizeof *out);
  raw = malloc(x.rows * info.raw_outputs * sizeof *raw);
  if (!out || !raw) {
    fprintf(stderr, "score: out of memory for %zu rows of output\n", x.rows);
    goto done;
  }
  if (!ok("medinfer_predict",
          medinfer_predict(model, x.values, x.rows, x.columns, NULL, out, x.rows * info.outputs)))
    goto done;
  medinfer_predict_options options;
  medinfer_predict_options_init(&options);
  options.output = MEDINFER_OUTPUT_RAW;
  if (!ok("medinfer_predict (raw margins)",
          medinfer_predict(model, x.values, x.rows, x.columns, &options, raw, x.rows * info.raw_outputs)))
    goto done;

  print_table(&info, &x, out, raw);
  if (!print_top_drivers(model, &info, &x)) goto done;
  rc = 0;

done:
  free(out);
  free(raw);
  free(x.values);
  free(info.names); /* the strings themselves belong to the model */
  medinfer_model_free(model);
  return rc;
}
