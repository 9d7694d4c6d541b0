/*
 * bootstrap.c - an AWS Lambda custom runtime (provided.al2023) that scores appointment
 * no-show risk with libmedinfer and explains it with TreeSHAP.
 *
 * Init: load the model once (MEDINFER_MODEL, default noshow.mdi beside this program,
 * else noshow_xgb.json), read the configuration from the environment, and report a
 * failure to /runtime/init/error. Then loop forever: GET the next invocation, handle it
 * (handler.c), POST the answer to .../response or .../error. Every response POST carries
 * a `Medinfer-Handler-Ns` header: the handler's own time (parse, validate, score,
 * explain, serialize; no HTTP), measured with clock_gettime(CLOCK_MONOTONIC).
 *
 * Environment:
 *   AWS_LAMBDA_RUNTIME_API       host:port of the Runtime API (set by Lambda)
 *   MEDINFER_MODEL               model file (.mdi or XGBoost JSON); relative paths are
 *                                taken from LAMBDA_TASK_ROOT, else this program's folder
 *   MEDINFER_THRESHOLD           decision threshold on the risk, default 0.5
 *   MEDINFER_REQUIRED_FEATURES   "" (default: none), "all", or comma-separated names
 *   MEDINFER_LAMBDA_DEBUG        1: log one line per invocation with the handler time
 */
#define _GNU_SOURCE

#include <errno.h>
#include <json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "handler.h"
#include "http_client.h"

#define API_PREFIX "/2018-06-01/runtime"
#define POST_TIMEOUT_MS 30000
#define SMALL_BODY 4096

static http_conn conn;
static http_response response;

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Lambda request ids are UUIDs; accept a conservative token so it is safe in a path. */
static int valid_request_id(const char *id) {
  size_t n = id ? strlen(id) : 0;
  if (n == 0 || n > 128) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return 0;
  }
  return 1;
}

static void report_init_error(const char *message) {
  fprintf(stderr, "medinfer-lambda: init failed: %s\n", message);
  json_object *e = json_object_new_object();
  json_object_object_add(e, "errorMessage", json_object_new_string(message));
  json_object_object_add(e, "errorType", json_object_new_string("InitError"));
  const char *text = json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN);
  static char small[SMALL_BODY + 1];
  response.body = small;
  if (http_request(&conn, "POST", API_PREFIX "/init/error",
                   "Content-Type: application/json\r\nLambda-Runtime-Function-Error-Type: Runtime.InitError\r\n", text,
                   strlen(text), POST_TIMEOUT_MS, &response, SMALL_BODY) != 0)
    fprintf(stderr, "medinfer-lambda: could not report the init error: %s\n", conn.error);
  json_object_put(e);
}

/* The folder of this executable (for the default model path). */
static void program_folder(char *out, size_t size) {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) {
    snprintf(out, size, ".");
    return;
  }
  path[n] = '\0';
  char *slash = strrchr(path, '/');
  if (slash) *slash = '\0';
  snprintf(out, size, "%s", path[0] ? path : "/");
}

static int resolve_model_path(char *out, size_t size) {
  char folder[PATH_MAX];
  program_folder(folder, sizeof folder);
  const char *configured = getenv("MEDINFER_MODEL");
  if (configured && *configured) {
    if (configured[0] == '/') return snprintf(out, size, "%s", configured) < (int)size ? 0 : -1;
    const char *root = getenv("LAMBDA_TASK_ROOT");
    return snprintf(out, size, "%s/%s", root && *root ? root : folder, configured) < (int)size ? 0 : -1;
  }
  if (snprintf(out, size, "%s/noshow.mdi", folder) >= (int)size) return -1;
  if (access(out, R_OK) == 0) return 0;
  return snprintf(out, size, "%s/noshow_xgb.json", folder) < (int)size ? 0 : -1;
}

static int read_threshold(double *out, char *err, size_t err_size) {
  const char *text = getenv("MEDINFER_THRESHOLD");
  *out = 0.5;
  if (!text || !*text) return 0;
  char *end = NULL;
  errno = 0;
  double t = strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !(t >= 0.0 && t <= 1.0)) {
    snprintf(err, err_size, "MEDINFER_THRESHOLD must be a number in [0, 1], got '%.64s'", text);
    return -1;
  }
  *out = t;
  return 0;
}

int main(void) {
  long long started = now_ns();
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stderr, NULL, _IOLBF, 0);
  const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
  if (!api || http_conn_init(&conn, api) != 0) {
    fprintf(stderr, "medinfer-lambda: AWS_LAMBDA_RUNTIME_API is missing or malformed%s%s\n", api ? ": " : "",
            api ? conn.error : "");
    return 1;
  }
  char *event = malloc(HANDLER_MAX_EVENT_BYTES + 1);
  char *small = malloc(SMALL_BODY + 1);
  if (!event || !small) {
    fprintf(stderr, "medinfer-lambda: out of memory\n");
    return 1;
  }

  /* ---- init ---- */
  char err[1024], model_path[PATH_MAX];
  handler_config config = {0};
  if (resolve_model_path(model_path, sizeof model_path) != 0) {
    report_init_error("the model path is too long");
    return 1;
  }
  config.model_path = model_path;
  config.required = getenv("MEDINFER_REQUIRED_FEATURES");
  if (read_threshold(&config.threshold, err, sizeof err) != 0) {
    report_init_error(err);
    return 1;
  }
  handler *h = handler_create(&config, err, sizeof err);
  if (!h) {
    report_init_error(err);
    return 1;
  }
  int debug = getenv("MEDINFER_LAMBDA_DEBUG") && strcmp(getenv("MEDINFER_LAMBDA_DEBUG"), "1") == 0;
  fprintf(stderr, "medinfer-lambda: model %s loaded, ready in %.2f ms (threshold %g)\n", model_path,
          (double)(now_ns() - started) / 1e6, config.threshold);

  /* ---- invocations ---- */
  int failures = 0;
  for (;;) {
    response.body = event;
    if (http_request(&conn, "GET", API_PREFIX "/invocation/next", NULL, NULL, 0, 0, &response,
                     HANDLER_MAX_EVENT_BYTES) != 0) {
      fprintf(stderr, "medinfer-lambda: GET next invocation failed: %s\n", conn.error);
      if (++failures >= 3) break; /* the Runtime API is gone: let Lambda restart us */
      usleep(10000);
      continue;
    }
    failures = 0;
    if (response.status != 200) {
      fprintf(stderr, "medinfer-lambda: GET next invocation answered HTTP %d; exiting\n", response.status);
      break;
    }
    char request_id[130];
    const char *id = http_header_value(&response, "Lambda-Runtime-Aws-Request-Id");
    if (!valid_request_id(id)) {
      fprintf(stderr, "medinfer-lambda: invocation without a valid request id ('%.64s'); skipped\n", id ? id : "");
      continue;
    }
    snprintf(request_id, sizeof request_id, "%s", id);
    const char *trace = http_header_value(&response, "Lambda-Runtime-Trace-Id");
    if (trace) setenv("_X_AMZN_TRACE_ID", trace, 1);
    else unsetenv("_X_AMZN_TRACE_ID");

    long long t0 = now_ns();
    handler_result result;
    if (response.body_too_large)
      handler_event_too_large(h, event, response.body_length, response.declared_length, &result);
    else
      handler_handle(h, event, response.body_length, &result);
    long long handler_ns = now_ns() - t0;

    if (result.outcome != HANDLER_OK)
      fprintf(stderr, "medinfer-lambda: request %s: %s: %.600s\n", request_id, result.error_type, result.body);
    if (debug) fprintf(stderr, "medinfer-lambda: request %s handled in %lld ns\n", request_id, handler_ns);

    char path[256], headers[256];
    snprintf(path, sizeof path, API_PREFIX "/invocation/%s/%s", request_id, result.outcome == HANDLER_OK ? "response" : "error");
    if (result.outcome == HANDLER_OK)
      snprintf(headers, sizeof headers, "Content-Type: application/json\r\nMedinfer-Handler-Ns: %lld\r\n", handler_ns);
    else
      snprintf(headers, sizeof headers,
               "Content-Type: application/json\r\nLambda-Runtime-Function-Error-Type: %s\r\nMedinfer-Handler-Ns: %lld\r\n",
               result.error_type, handler_ns);
    response.body = small;
    if (http_request(&conn, "POST", path, headers, result.body, result.length, POST_TIMEOUT_MS, &response, SMALL_BODY) != 0)
      fprintf(stderr, "medinfer-lambda: request %s: posting the answer failed: %s\n", request_id, conn.error);
    else if (response.status < 200 || response.status > 299)
      fprintf(stderr, "medinfer-lambda: request %s: the Runtime API refused the answer: HTTP %d %.200s\n", request_id,
              response.status, response.body);
  }
  handler_free(h);
  free(event);
  free(small);
  http_conn_close(&conn);
  return 1;
}
