/*
 * handler.c - parse and validate a no-show scoring request, score it with MedInfer,
 * explain it with TreeSHAP and build the JSON answer (see handler.h and README.md).
 */
#define _POSIX_C_SOURCE 200809L

#include "handler.h"

#include <float.h>
#include <json.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medinfer.h"

/* ------------------------------------------------------------------------------------ */
/* The no-show schema: how each feature may be written in a request                       */
/* ------------------------------------------------------------------------------------ */

typedef struct feature_spec {
  const char *name;
  double min, max;   /* inclusive range of accepted numbers */
  int integer;       /* must be a whole number (flags, label-encoded categories) */
  int boolean_ok;    /* true/false accepted (0/1 flags) */
  int clock_ok;      /* "HH:MM" / "HH:MM:SS" accepted, as seconds since midnight */
  const char *what;  /* for messages */
} feature_spec;

#define FLAG(n) {n, 0, 1, 1, 1, 0, "0 or 1 (or true/false)"}
#define CATEGORY(n) {n, 0, 1e6, 1, 0, 0, "a label-encoded category: a whole number >= 0"}
#define NONNEG(n, hi) {n, 0, hi, 0, 0, 0, "a number >= 0"}

/* Features the project recorded (DESIGN.md). A model feature not listed here accepts
 * any finite number. */
static const feature_spec KNOWN_FEATURES[] = {
    FLAG("Scholarship"),
    FLAG("Hypertension"),
    FLAG("Diabetes"),
    FLAG("Alcoholism"),
    FLAG("Disability"),
    {"Days_Between_Scheduling_and_Appointment", -36500, 36500, 0, 0, 0, "a number of days"},
    CATEGORY("Hospital_Area"),
    CATEGORY("Specialty"),
    CATEGORY("Facility_Type"),
    NONNEG("Distance_km", 1e5),
    CATEGORY("Type_of_Care"),
    FLAG("Previously_Treated"),
    {"Age", 0, 150, 0, 0, 0, "an age in years, 0 to 150"},
    CATEGORY("Social_Status"),
    FLAG("SMS_Received"),
    FLAG("Weather_Conditions"),
    {"Appointment_Time", 0, 86399, 0, 0, 1, "seconds since midnight (0 to 86399) or \"HH:MM\""},
    CATEGORY("Gender"),
    NONNEG("Consultations_Last_12_Months", 1e6),
    NONNEG("Waiting_Time_Minutes", 1e6),
    {"Hospital_Rating", 1, 5, 0, 0, 0, "a rating from 1 to 5"},
    NONNEG("Average_Fee", 1e9),
    {"Number_days", -36500, 36500, 0, 0, 0, "a number of days"},
};

static const feature_spec ANY_NUMBER = {NULL, -FLT_MAX, FLT_MAX, 0, 0, 0, "a finite number"};

/* ------------------------------------------------------------------------------------ */

struct handler {
  medinfer_model *model;
  size_t m;                     /* features */
  const char **names;           /* the model's feature names, in its order */
  const feature_spec **specs;   /* per feature */
  unsigned char *required;      /* per feature */
  double threshold;
  json_tokener *tokener;
  json_object *event;           /* the parsed event of the current call */
  json_object *request_doc;     /* the parsed API Gateway body of the current call */
  json_object *answer;          /* the answer of the current call (owns the string) */
  char *decoded;                /* base64-decoded API Gateway bodies */
  char **quoted;                /* per feature: the name as a JSON string literal */
  char *out, *proxy_out;        /* success answers are written here (sizes below) */
  size_t out_capacity, proxy_capacity;
  int last_index;               /* where the previous key was found (keys come in order) */
  float *rows;                  /* HANDLER_MAX_BATCH * m */
  double *risk;                 /* HANDLER_MAX_BATCH */
  double *shap;                 /* HANDLER_MAX_BATCH * (m + 1) */
  char message[768];
  char field[320];
};

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                  */
/* ------------------------------------------------------------------------------------ */

/* Records a request error; `field` may be NULL. Returns -1. */
static int invalid(handler *h, const char *field, const char *format, ...) {
  char text[512];
  va_list args;
  va_start(args, format);
  vsnprintf(text, sizeof text, format, args);
  va_end(args);
  if (field && *field) {
    snprintf(h->field, sizeof h->field, "%s", field);
    snprintf(h->message, sizeof h->message, "%s: %s", field, text);
  } else {
    h->field[0] = '\0';
    snprintf(h->message, sizeof h->message, "%s", text);
  }
  return -1;
}

static const char *type_phrase(json_object *value) {
  switch (json_object_get_type(value)) {
  case json_type_null: return "null";
  case json_type_boolean: return "a boolean";
  case json_type_double:
  case json_type_int: return "a number";
  case json_type_object: return "an object";
  case json_type_array: return "an array";
  case json_type_string: return "a string";
  }
  return "an unknown value";
}

static void add(json_object *object, const char *constant_key, json_object *value) {
  json_object_object_add_ex(object, constant_key, value, JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT);
}

static void set_answer(handler *h, json_object *answer, handler_outcome outcome, const char *error_type,
                       handler_result *result) {
  json_object_put(h->answer);
  h->answer = answer;
  size_t length = 0;
  const char *text = json_object_to_json_string_length(answer, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                       &length);
  if (!text) { /* json-c could not allocate */
    static const char fallback[] = "{\"errorType\":\"InternalError\",\"errorMessage\":\"out of memory\"}";
    text = fallback;
    length = sizeof fallback - 1;
    outcome = HANDLER_INTERNAL_ERROR;
    error_type = "InternalError";
  }
  result->outcome = outcome;
  result->body = text;
  result->length = length;
  result->error_type = error_type;
}

static json_object *error_object(handler *h, const char *type) {
  json_object *e = json_object_new_object();
  add(e, "errorType", json_object_new_string(type));
  add(e, "errorMessage", json_object_new_string(h->message));
  add(e, "field", h->field[0] ? json_object_new_string(h->field) : NULL);
  return e;
}

/* An API Gateway proxy answer: {"statusCode", "headers", "body"}. Takes `body`. */
static json_object *proxy_answer(int status, json_object *body) {
  json_object *r = json_object_new_object();
  add(r, "statusCode", json_object_new_int(status));
  json_object *headers = json_object_new_object();
  add(headers, "Content-Type", json_object_new_string("application/json"));
  add(r, "headers", headers);
  add(r, "isBase64Encoded", json_object_new_boolean(0));
  size_t length = 0;
  const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                       &length);
  add(r, "body", json_object_new_string_len(text ? text : "{}", text ? (int)length : 2));
  json_object_put(body);
  return r;
}

static void answer_error(handler *h, int proxy, int http_status, handler_outcome outcome, const char *type,
                         handler_result *result) {
  json_object *e = error_object(h, type);
  if (proxy) set_answer(h, proxy_answer(http_status, e), HANDLER_OK, NULL, result);
  else set_answer(h, e, outcome, type, result);
}

/* ------------------------------------------------------------------------------------ */
/* The success answer is written directly (no object tree): it is the hot path.           */
/* ------------------------------------------------------------------------------------ */

typedef struct writer {
  char *p, *end;
} writer;

/* Callers size the buffers for the worst case (handler_create), so writes always fit;
 * the checks only stop a miscalculation from overflowing. */
static void put(writer *w, const char *s, size_t n) {
  if ((size_t)(w->end - w->p) < n) n = (size_t)(w->end - w->p);
  memcpy(w->p, s, n);
  w->p += n;
}
#define PUT(w, literal) put(w, literal, sizeof literal - 1)

static void put_double(writer *w, double x) {
  char buffer[40];
  int n = snprintf(buffer, sizeof buffer, "%.17g", x);
  put(w, buffer, (size_t)n);
}

static void put_float(writer *w, float x) { /* 9 significant digits round-trip a float */
  char buffer[40];
  int n = snprintf(buffer, sizeof buffer, "%.9g", (double)x);
  put(w, buffer, (size_t)n);
}

static void put_json_string(writer *w, const char *s, size_t n) { /* escapes a JSON text into a string */
  static const char hex[] = "0123456789abcdef";
  PUT(w, "\"");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(w, e, 2);
    } else if (c < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put(w, e, 6);
    } else {
      put(w, (const char *)&c, 1);
    }
  }
  PUT(w, "\"");
}

static size_t row_answer_bound(const handler *h) {
  size_t names = 0, longest = 0;
  for (size_t j = 0; j < h->m; j++) {
    size_t n = strlen(h->quoted[j]);
    names += n + 1;
    if (n > longest) longest = n;
  }
  return 256 + HANDLER_TOP_DRIVERS * (longest + 96) + names;
}

static void write_row(handler *h, writer *w, size_t r, int with_threshold) {
  const float *row = h->rows + r * h->m;
  const double *shap = h->shap + r * (h->m + 1);
  PUT(w, "{\"risk\":");
  put_double(w, h->risk[r]);
  if (h->risk[r] >= h->threshold) PUT(w, ",\"decision\":\"likely_no_show\"");
  else PUT(w, ",\"decision\":\"likely_attend\"");
  if (with_threshold) {
    PUT(w, ",\"threshold\":");
    put_double(w, h->threshold);
  }
  PUT(w, ",\"base_value\":");
  put_double(w, shap[h->m]);
  PUT(w, ",\"top_drivers\":[");
  /* The largest |contribution| first; ties go to the lower feature index. */
  int chosen[HANDLER_TOP_DRIVERS];
  size_t top = h->m < HANDLER_TOP_DRIVERS ? h->m : HANDLER_TOP_DRIVERS;
  for (size_t rank = 0; rank < top; rank++) {
    int best = -1;
    for (size_t j = 0; j < h->m; j++) {
      int taken = 0;
      for (size_t k = 0; k < rank; k++) taken |= chosen[k] == (int)j;
      if (!taken && (best < 0 || fabs(shap[j]) > fabs(shap[best]))) best = (int)j;
    }
    chosen[rank] = best;
    if (rank) PUT(w, ",");
    PUT(w, "{\"feature\":");
    put(w, h->quoted[best], strlen(h->quoted[best]));
    PUT(w, ",\"contribution\":");
    put_double(w, shap[best]);
    PUT(w, ",\"value\":");
    if (isnan(row[best])) PUT(w, "null");
    else put_float(w, row[best]);
    PUT(w, "}");
  }
  PUT(w, "],\"missing\":[");
  int first = 1;
  for (size_t j = 0; j < h->m; j++)
    if (isnan(row[j])) {
      if (!first) PUT(w, ",");
      put(w, h->quoted[j], strlen(h->quoted[j]));
      first = 0;
    }
  PUT(w, "]}");
}

/* ------------------------------------------------------------------------------------ */
/* Set-up                                                                                  */
/* ------------------------------------------------------------------------------------ */

static int set_required(handler *h, const char *list, char *err, size_t err_size) {
  if (!list || !*list) return 0;
  if (strcmp(list, "all") == 0) {
    memset(h->required, 1, h->m);
    return 0;
  }
  const char *p = list;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t length = end ? (size_t)(end - p) : strlen(p);
    while (length > 0 && (*p == ' ')) p++, length--;
    while (length > 0 && p[length - 1] == ' ') length--;
    int found = 0;
    for (size_t j = 0; j < h->m; j++)
      if (strlen(h->names[j]) == length && strncmp(h->names[j], p, length) == 0) {
        h->required[j] = 1;
        found = 1;
      }
    if (!found && length > 0) {
      snprintf(err, err_size, "required feature '%.*s' is not a feature of the model", (int)(length > 64 ? 64 : length), p);
      return -1;
    }
    p += length;
    while (*p == ' ') p++;
    if (*p == ',') p++;
  }
  return 0;
}

handler *handler_create(const handler_config *config, char *err, size_t err_size) {
  handler *h = calloc(1, sizeof *h);
  if (!h) {
    snprintf(err, err_size, "out of memory");
    return NULL;
  }
  if (!(config->threshold >= 0.0 && config->threshold <= 1.0)) {
    snprintf(err, err_size, "threshold must be a probability in [0, 1], got %g", config->threshold);
    goto failed;
  }
  h->threshold = config->threshold;
  int status = medinfer_model_load(config->model_path, &h->model);
  if (status != MEDINFER_OK) {
    snprintf(err, err_size, "cannot load model %s: %s: %s", config->model_path, medinfer_status_name(status),
             medinfer_last_error());
    goto failed;
  }
  size_t classes = 0, outputs = 0, raw_outputs = 0;
  if (medinfer_model_feature_count(h->model, &h->m) != MEDINFER_OK ||
      medinfer_model_class_count(h->model, &classes) != MEDINFER_OK ||
      medinfer_model_output_count(h->model, MEDINFER_OUTPUT_TRANSFORMED, &outputs) != MEDINFER_OK ||
      medinfer_model_output_count(h->model, MEDINFER_OUTPUT_RAW, &raw_outputs) != MEDINFER_OK) {
    snprintf(err, err_size, "cannot query the model: %s", medinfer_last_error());
    goto failed;
  }
  if (classes != 2 || outputs != 1 || raw_outputs != 1 || h->m == 0 || h->m > 4096) {
    snprintf(err, err_size, "the model must be a binary classifier with one probability output (has %zu classes, %zu outputs, %zu features)",
             classes, outputs, h->m);
    goto failed;
  }
  h->names = calloc(h->m, sizeof *h->names);
  h->specs = calloc(h->m, sizeof *h->specs);
  h->required = calloc(h->m, 1);
  h->rows = malloc(HANDLER_MAX_BATCH * h->m * sizeof *h->rows);
  h->risk = malloc(HANDLER_MAX_BATCH * sizeof *h->risk);
  h->shap = malloc(HANDLER_MAX_BATCH * (h->m + 1) * sizeof *h->shap);
  h->decoded = malloc(HANDLER_MAX_REQUEST_BYTES + 4);
  h->tokener = json_tokener_new_ex(HANDLER_MAX_DEPTH);
  if (!h->names || !h->specs || !h->required || !h->rows || !h->risk || !h->shap || !h->decoded || !h->tokener) {
    snprintf(err, err_size, "out of memory");
    goto failed;
  }
  json_tokener_set_flags(h->tokener, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  for (size_t j = 0; j < h->m; j++) {
    if (medinfer_model_feature_name(h->model, j, &h->names[j]) != MEDINFER_OK || !h->names[j] || !*h->names[j]) {
      snprintf(err, err_size, "the model stores no name for feature %zu; requests name their features", j);
      goto failed;
    }
    for (size_t i = 0; i < j; i++)
      if (strcmp(h->names[i], h->names[j]) == 0) {
        snprintf(err, err_size, "the model names two features '%s'", h->names[j]);
        goto failed;
      }
    if (strcmp(h->names[j], "appointments") == 0 || strcmp(h->names[j], "body") == 0 ||
        strcmp(h->names[j], "requestContext") == 0) {
      snprintf(err, err_size, "a feature named '%s' would be ambiguous in a request", h->names[j]);
      goto failed;
    }
    h->specs[j] = &ANY_NUMBER;
    for (size_t k = 0; k < sizeof KNOWN_FEATURES / sizeof KNOWN_FEATURES[0]; k++)
      if (strcmp(KNOWN_FEATURES[k].name, h->names[j]) == 0) h->specs[j] = &KNOWN_FEATURES[k];
  }
  if (set_required(h, config->required, err, err_size) != 0) goto failed;
  h->quoted = calloc(h->m, sizeof *h->quoted);
  if (!h->quoted) {
    snprintf(err, err_size, "out of memory");
    goto failed;
  }
  for (size_t j = 0; j < h->m; j++) {
    json_object *name = json_object_new_string(h->names[j]);
    const char *text = name ? json_object_to_json_string_ext(name, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
    h->quoted[j] = text ? strdup(text) : NULL;
    json_object_put(name);
    if (!h->quoted[j]) {
      snprintf(err, err_size, "out of memory");
      goto failed;
    }
  }
  h->out_capacity = 128 + HANDLER_MAX_BATCH * (row_answer_bound(h) + 1);
  h->proxy_capacity = 256 + 2 * h->out_capacity;
  h->out = malloc(h->out_capacity);
  h->proxy_out = malloc(h->proxy_capacity);
  if (!h->out || !h->proxy_out) {
    snprintf(err, err_size, "out of memory");
    goto failed;
  }
  /* Build the explainer tables now, in the init phase, not in the first request. */
  for (size_t j = 0; j < h->m; j++) h->rows[j] = NAN;
  if ((status = medinfer_predict(h->model, h->rows, 1, h->m, NULL, h->risk, 1)) != MEDINFER_OK ||
      (status = medinfer_shap_values(h->model, h->rows, 1, h->m, NULL, h->shap, h->m + 1)) != MEDINFER_OK) {
    snprintf(err, err_size, "the model cannot be scored and explained: %s: %s", medinfer_status_name(status),
             medinfer_last_error());
    goto failed;
  }
  return h;
failed:
  handler_free(h);
  return NULL;
}

void handler_free(handler *h) {
  if (!h) return;
  json_object_put(h->answer);
  json_object_put(h->event);
  json_object_put(h->request_doc);
  if (h->tokener) json_tokener_free(h->tokener);
  medinfer_model_free(h->model);
  free(h->names);
  free(h->specs);
  free(h->required);
  free(h->rows);
  free(h->risk);
  free(h->shap);
  free(h->decoded);
  if (h->quoted)
    for (size_t j = 0; j < h->m; j++) free(h->quoted[j]);
  free(h->quoted);
  free(h->out);
  free(h->proxy_out);
  free(h);
}

/* ------------------------------------------------------------------------------------ */
/* Parsing                                                                                 */
/* ------------------------------------------------------------------------------------ */

/* json-c's strict mode still accepts 'single-quoted' strings, numbers ending in a dot
 * ("1.") and raw control characters in strings: one pass rejects all three. Returns the offending
 * byte's offset, or -1 when there is none. */
static long lenient_syntax(const char *text, size_t length) {
  int in_string = 0;
  for (size_t i = 0; i < length; i++) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') i++;
      else if (c == '"') in_string = 0;
      else if ((unsigned char)c < 0x20) return (long)i; /* raw control characters */
    } else if (c == '"') {
      in_string = 1;
    } else if (c == '\'') {
      return (long)i;
    } else if (c == '.' && (i == 0 || text[i - 1] < '0' || text[i - 1] > '9' || i + 1 >= length || text[i + 1] < '0' ||
                            text[i + 1] > '9')) {
      return (long)i;
    }
  }
  return -1;
}

/* Parses `length` bytes of JSON; text[length] must be '\0' (it tells json-c that the
 * input ends there, so that a document such as `3` or `null` is complete). Returns NULL
 * with h->message set on failure; *ok distinguishes a JSON null from a failure. */
static json_object *parse_json(handler *h, const char *text, size_t length, const char *what, int *ok) {
  *ok = 0;
  if (length >= INT32_MAX) {
    invalid(h, NULL, "%s is too large", what);
    return NULL;
  }
  json_tokener_reset(h->tokener);
  json_object *value = json_tokener_parse_ex(h->tokener, text, (int)length + 1);
  enum json_tokener_error e = json_tokener_get_error(h->tokener);
  size_t end = json_tokener_get_parse_end(h->tokener);
  if (e == json_tokener_success && end > 0 && text[end - 1] == '\0') end--; /* the terminator itself */
  if (e == json_tokener_continue || (e == json_tokener_success && end == 0)) {
    invalid(h, NULL, "%s is not valid JSON: it ends too early (%zu bytes)", what, length);
    json_object_put(value);
    return NULL;
  }
  if (e != json_tokener_success) {
    invalid(h, NULL, "%s is not valid JSON: %s at byte %zu", what, json_tokener_error_desc(e), end);
    json_object_put(value);
    return NULL;
  }
  for (size_t i = end; i < length; i++) /* strict mode stops at the value; only blanks may follow */
    if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
      invalid(h, NULL, "%s is not valid JSON: unexpected text after the value at byte %zu", what, i);
      json_object_put(value);
      return NULL;
    }
  long bad = lenient_syntax(text, length);
  if (bad >= 0) {
    invalid(h, NULL, "%s is not valid JSON: unexpected character at byte %ld", what, bad);
    json_object_put(value);
    return NULL;
  }
  *ok = 1;
  return value;
}

/* "HH:MM" or "HH:MM:SS" (two digits each, 00-23 / 00-59) -> seconds since midnight. */
static int parse_clock(const char *s, size_t length, double *out) {
  if (length != 5 && length != 8) return -1;
  for (size_t i = 0; i < length; i++) {
    int colon_position = i == 2 || i == 5;
    if (colon_position ? s[i] != ':' : (s[i] < '0' || s[i] > '9')) return -1;
  }
  int hh = (s[0] - '0') * 10 + (s[1] - '0'), mm = (s[3] - '0') * 10 + (s[4] - '0');
  int ss = length == 8 ? (s[6] - '0') * 10 + (s[7] - '0') : 0;
  if (hh > 23 || mm > 59 || ss > 59) return -1;
  *out = hh * 3600.0 + mm * 60.0 + ss;
  return 0;
}

static int feature_index(handler *h, const char *key) {
  size_t guess = (size_t)(h->last_index + 1) < h->m ? (size_t)(h->last_index + 1) : 0;
  if (strcmp(h->names[guess], key) == 0) return h->last_index = (int)guess;
  for (size_t j = 0; j < h->m; j++)
    if (strcmp(h->names[j], key) == 0) return h->last_index = (int)j;
  return -1;
}

/* Fills one row from one appointment object. `where` is "" or "appointments[3]". */
static int read_appointment(handler *h, json_object *appointment, const char *where, float *row) {
  char field[320];
  if (!json_object_is_type(appointment, json_type_object))
    return invalid(h, *where ? where : NULL, "expected an appointment object keyed by feature name, got %s",
                   type_phrase(appointment));
  for (size_t j = 0; j < h->m; j++) row[j] = NAN;
  size_t given = 0;
  h->last_index = -1;
  json_object_object_foreach(appointment, key, value) {
    int j = feature_index(h, key);
    if (!*key) return invalid(h, *where ? where : NULL, "an empty field name is not a feature");
    snprintf(field, sizeof field, "%s%s%.200s", where, *where ? "." : "", key);
    if (j < 0) return invalid(h, field, "unknown field (the model's features are listed in the README)");
    const feature_spec *spec = h->specs[j];
    double x;
    switch (json_object_get_type(value)) {
    case json_type_null:
      continue; /* missing: NaN */
    case json_type_boolean:
      if (!spec->boolean_ok) return invalid(h, field, "expected %s, got a boolean", spec->what);
      x = json_object_get_boolean(value) ? 1.0 : 0.0;
      break;
    case json_type_int:
    case json_type_double:
      x = json_object_get_double(value);
      break;
    case json_type_string:
      if (spec->clock_ok) {
        const char *s = json_object_get_string(value);
        size_t length = (size_t)json_object_get_string_len(value);
        if (parse_clock(s, length, &x) != 0)
          return invalid(h, field, "expected %s; the string \"%.16s\" is not a time of day", spec->what, s);
        break;
      }
      return invalid(h, field, "expected %s, got a string", spec->what);
    default:
      return invalid(h, field, "expected %s, got %s", spec->what, type_phrase(value));
    }
    if (!isfinite(x)) return invalid(h, field, "expected %s, got a non-finite number", spec->what);
    if (x < spec->min || x > spec->max) return invalid(h, field, "expected %s, got %.17g (out of range)", spec->what, x);
    if (spec->integer && x != floor(x)) return invalid(h, field, "expected %s, got %.17g", spec->what, x);
    if (fabs(x) > FLT_MAX) return invalid(h, field, "%.17g does not fit a 32-bit float", x);
    row[j] = (float)x;
    given++;
  }
  for (size_t j = 0; j < h->m; j++)
    if (h->required[j] && isnan(row[j])) {
      snprintf(field, sizeof field, "%s%s%s", where, *where ? "." : "", h->names[j]);
      return invalid(h, field, "required field is missing or null");
    }
  if (given == 0) return invalid(h, *where ? where : NULL, "the appointment has no feature values");
  return 0;
}

/* The request (a JSON value) -> h->rows. Returns the number of rows and sets *batch, or -1. */
static long read_request(handler *h, json_object *request, int *batch) {
  json_object *list = NULL;
  const char *list_name = "";
  *batch = 0;
  if (json_object_is_type(request, json_type_array)) {
    list = request;
  } else if (json_object_is_type(request, json_type_object)) {
    json_object *appointments = NULL;
    if (json_object_object_get_ex(request, "appointments", &appointments)) {
      json_object_object_foreach(request, key, value) {
        (void)value;
        if (strcmp(key, "appointments") != 0)
          return invalid(h, key, "unknown field (a batch request has only \"appointments\")");
      }
      if (!json_object_is_type(appointments, json_type_array))
        return invalid(h, "appointments", "expected an array of appointment objects, got %s", type_phrase(appointments));
      list = appointments;
      list_name = "appointments";
    } else {
      return read_appointment(h, request, "", h->rows) == 0 ? 1 : -1;
    }
  } else {
    return invalid(h, NULL, "expected an appointment object, an array of them or {\"appointments\": [...]}, got %s",
                   type_phrase(request));
  }
  *batch = 1;
  size_t n = json_object_array_length(list);
  if (n == 0) return invalid(h, *list_name ? list_name : NULL, "the batch is empty");
  if (n > HANDLER_MAX_BATCH)
    return invalid(h, *list_name ? list_name : NULL, "a batch holds at most %d appointments, got %zu", HANDLER_MAX_BATCH, n);
  for (size_t i = 0; i < n; i++) {
    char where[64];
    snprintf(where, sizeof where, "%s[%zu]", list_name, i);
    if (read_appointment(h, json_object_array_get_idx(list, i), where, h->rows + i * h->m) != 0) return -1;
  }
  return (long)n;
}

/* Strict base64 (RFC 4648 alphabet, padded). Returns the decoded length or -1. */
static long base64_decode(const char *in, size_t length, char *out, size_t capacity) {
  static signed char table[256];
  static int ready = 0;
  if (!ready) {
    memset(table, -1, sizeof table);
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; i++) table[(unsigned char)alphabet[i]] = (signed char)i;
    ready = 1;
  }
  if (length % 4 != 0) return -1;
  size_t o = 0;
  for (size_t i = 0; i < length; i += 4) {
    int pad = 0, v[4];
    for (int k = 0; k < 4; k++) {
      unsigned char c = (unsigned char)in[i + k];
      if (c == '=' && i + 4 == length && k >= 2) {
        v[k] = 0;
        pad++;
        continue;
      }
      if (pad || table[c] < 0) return -1;
      v[k] = table[c];
    }
    if (pad == 2 && in[i + 2] != '=') return -1;
    unsigned triple = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    int bytes = 3 - pad;
    if (o + (size_t)bytes > capacity) return -1;
    out[o++] = (char)(triple >> 16);
    if (bytes > 1) out[o++] = (char)(triple >> 8);
    if (bytes > 2) out[o++] = (char)triple;
  }
  return (long)o;
}

/* ------------------------------------------------------------------------------------ */
/* Answer                                                                                  */
/* ------------------------------------------------------------------------------------ */

static void release_documents(handler *h) {
  json_object_put(h->event);
  json_object_put(h->request_doc);
  h->event = h->request_doc = NULL;
}

void handler_handle(handler *h, const char *event_text, size_t length, handler_result *result) {
  int proxy = 0;
  const char *request_text = event_text;
  size_t request_length = length;
  json_object *request = NULL;
  h->field[0] = '\0';
  release_documents(h);

  if (length > HANDLER_MAX_EVENT_BYTES) {
    handler_event_too_large(h, event_text, length, length, result);
    return;
  }
  int parsed = 0;
  h->event = parse_json(h, event_text, length, "the event", &parsed);
  if (!parsed) goto invalid_request;
  json_object *body = NULL, *context = NULL;
  if (json_object_is_type(h->event, json_type_object) &&
      (json_object_object_get_ex(h->event, "body", &body) | json_object_object_get_ex(h->event, "requestContext", &context))) {
    /* An API Gateway (REST or HTTP API) proxy event: the request is its body. */
    proxy = 1;
    if (!json_object_is_type(body, json_type_string)) {
      invalid(h, "body", "the HTTP request has no JSON body (got %s)", body ? type_phrase(body) : "none");
      goto invalid_request;
    }
    request_text = json_object_get_string(body);
    request_length = (size_t)json_object_get_string_len(body);
    json_object *encoded = NULL;
    if (json_object_object_get_ex(h->event, "isBase64Encoded", &encoded) && json_object_get_boolean(encoded)) {
      if (request_length / 4 * 3 > HANDLER_MAX_REQUEST_BYTES + 3) goto too_large;
      long n = base64_decode(request_text, request_length, h->decoded, HANDLER_MAX_REQUEST_BYTES + 3);
      if (n < 0) {
        invalid(h, "body", "isBase64Encoded is true but the body is not valid base64");
        goto invalid_request;
      }
      h->decoded[n] = '\0';
      request_text = h->decoded;
      request_length = (size_t)n;
    }
  }
  if (request_length > HANDLER_MAX_REQUEST_BYTES) goto too_large;
  if (proxy) {
    h->request_doc = parse_json(h, request_text, request_length, "the request body", &parsed);
    if (!parsed) goto invalid_request;
    request = h->request_doc;
  } else {
    request = h->event;
  }

  int batch = 0;
  long rows = read_request(h, request, &batch);
  if (rows < 0) goto invalid_request;
  size_t n = (size_t)rows;
  int status = medinfer_predict(h->model, h->rows, n, h->m, NULL, h->risk, n);
  if (status == MEDINFER_OK)
    status = medinfer_shap_values(h->model, h->rows, n, h->m, NULL, h->shap, n * (h->m + 1));
  if (status != MEDINFER_OK) {
    invalid(h, NULL, "scoring failed: %s: %s", medinfer_status_name(status), medinfer_last_error());
    release_documents(h);
    answer_error(h, proxy, 500, HANDLER_INTERNAL_ERROR, "InternalError", result);
    return;
  }
  release_documents(h); /* the request is in h->rows now */
  json_object_put(h->answer);
  h->answer = NULL;
  writer w = {h->out, h->out + h->out_capacity};
  if (batch) {
    PUT(&w, "{\"threshold\":");
    put_double(&w, h->threshold);
    char count[48];
    put(&w, count, (size_t)snprintf(count, sizeof count, ",\"count\":%zu,\"results\":[", n));
    for (size_t r = 0; r < n; r++) {
      if (r) PUT(&w, ",");
      write_row(h, &w, r, 0);
    }
    PUT(&w, "]}");
  } else {
    write_row(h, &w, 0, 1);
  }
  size_t out_length = (size_t)(w.p - h->out);
  result->outcome = HANDLER_OK;
  result->error_type = NULL;
  if (proxy) {
    writer pw = {h->proxy_out, h->proxy_out + h->proxy_capacity};
    PUT(&pw, "{\"statusCode\":200,\"headers\":{\"Content-Type\":\"application/json\"},\"isBase64Encoded\":false,\"body\":");
    put_json_string(&pw, h->out, out_length);
    PUT(&pw, "}");
    result->body = h->proxy_out;
    result->length = (size_t)(pw.p - h->proxy_out);
  } else {
    result->body = h->out;
    result->length = out_length;
  }
  return;

too_large:
  invalid(h, proxy ? "body" : NULL, "the request is %zu bytes; the limit is %u bytes", request_length,
          HANDLER_MAX_REQUEST_BYTES);
  release_documents(h);
  answer_error(h, proxy, 413, HANDLER_INVALID_REQUEST, "RequestTooLarge", result);
  return;
invalid_request:
  release_documents(h);
  answer_error(h, proxy, 400, HANDLER_INVALID_REQUEST, "InvalidRequest", result);
}

void handler_event_too_large(handler *h, const char *prefix, size_t prefix_length, unsigned long long size,
                             handler_result *result) {
  /* Only the start of the event was kept: an API Gateway event names its requestContext
   * or routeKey early (they sort before "body" in what API Gateway sends). */
  int proxy = 0;
  size_t scan = prefix_length < 65536 ? prefix_length : 65536;
  static const char *markers[] = {"\"requestContext\"", "\"routeKey\"", "\"httpMethod\"", "\"rawPath\""};
  for (size_t k = 0; k < sizeof markers / sizeof markers[0] && !proxy; k++) {
    size_t mlen = strlen(markers[k]);
    for (size_t i = 0; i + mlen <= scan && !proxy; i++)
      if (memcmp(prefix + i, markers[k], mlen) == 0) proxy = 1;
  }
  h->field[0] = '\0';
  release_documents(h);
  invalid(h, NULL, "the event is %llu bytes; the limit is %u bytes (%u for the request itself)", size,
          HANDLER_MAX_EVENT_BYTES, HANDLER_MAX_REQUEST_BYTES);
  answer_error(h, proxy, 413, HANDLER_INVALID_REQUEST, "RequestTooLarge", result);
}
