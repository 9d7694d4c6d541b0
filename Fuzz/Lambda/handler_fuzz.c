/*
 * Fuzz target for the serverless function's request handling (examples/lambda/handler.c):
 * any bytes are offered as a Lambda event (direct invocation or API Gateway proxy event,
 * base64 bodies, batches) to a handler holding the no-show model, which must answer with
 * a JSON document and stay usable. Built two ways:
 *   - with clang -fsanitize=fuzzer,address (make fuzz): a libFuzzer binary;
 *   - with -DREPLAY (make test): a program that runs every file given on the command line
 *     through the same code, so that inputs that once crashed stay fixed.
 * Run from the repository root (the model path is relative).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "handler.h"

static handler *shared_handler(void) {
  static handler *h;
  if (!h) {
    char err[512];
    handler_config config = {"examples/models/noshow_xgb.json", 0.5, "Age,Gender"};
    h = handler_create(&config, err, sizeof err);
    if (!h) {
      fprintf(stderr, "handler_fuzz: %s\n", err);
      abort();
    }
  }
  return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > HANDLER_MAX_EVENT_BYTES) return 0;
  /* The bootstrap's receive buffer always ends with a '\0' after the event. */
  char *event = malloc(size + 1);
  if (!event) return 0;
  memcpy(event, data, size);
  event[size] = '\0';
  handler_result result;
  handler_handle(shared_handler(), event, size, &result);
  /* Every answer, success or error, is one complete JSON object of exactly `length` bytes
   * (the body is length-delimited, not NUL-terminated). */
  if (!result.body || result.length == 0 || result.body[0] != '{') abort();
  json_tokener *tokener = json_tokener_new();
  json_object *answer = json_tokener_parse_ex(tokener, result.body, (int)result.length);
  if (!answer || json_tokener_get_error(tokener) != json_tokener_success ||
      json_tokener_get_parse_end(tokener) != result.length)
    abort();
  json_object_put(answer);
  json_tokener_free(tokener);
  free(event);
  return 0;
}

#ifdef REPLAY
static int replay(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); return 1; }
  static uint8_t buffer[HANDLER_MAX_EVENT_BYTES + 1];
  size_t n = fread(buffer, 1, sizeof buffer, f);
  fclose(f);
  LLVMFuzzerTestOneInput(buffer, n);
  return 0;
}

int main(int argc, char **argv) {
  int failures = 0, count = 0;
  for (int i = 1; i < argc; i++, count++) failures += replay(argv[i]);
  handler_free(shared_handler());
  printf("handler_fuzz: replayed %d events: %s\n", count, failures ? "unreadable files" : "no crash");
  return failures != 0;
}
#endif
