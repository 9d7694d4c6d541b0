/*
 * handler.h - the no-show scoring handler: one Lambda event in, one JSON answer out.
 *
 * No I/O here: bootstrap.c moves bytes between the Runtime API and this handler. The
 * model is loaded once (handler_create) and every event is validated completely before
 * anything is scored, so a bad request yields an error naming the field and leaves the
 * handler ready for the next event. See README.md for the request and response formats.
 */
#ifndef MEDINFER_LAMBDA_HANDLER_H
#define MEDINFER_LAMBDA_HANDLER_H

#include <stddef.h>

/* Limits (documented in README.md). */
#define HANDLER_MAX_EVENT_BYTES (1u << 20)    /* the event as the Runtime API delivers it */
#define HANDLER_MAX_REQUEST_BYTES (256u << 10) /* the request JSON (event, or decoded API body) */
#define HANDLER_MAX_BATCH 100                  /* appointments per request */
#define HANDLER_MAX_DEPTH 16                   /* JSON nesting */
#define HANDLER_TOP_DRIVERS 5

typedef struct handler handler;

typedef struct handler_config {
  const char *model_path;  /* .mdi tree file or XGBoost JSON */
  double threshold;        /* decision threshold on the probability */
  const char *required;    /* NULL/"" = none, "all", or comma-separated feature names */
} handler_config;

/* What the bootstrap should do with the answer. */
typedef enum handler_outcome {
  HANDLER_OK = 0,            /* POST body to /response */
  HANDLER_INVALID_REQUEST,   /* direct invocation: POST body to /error (errorType InvalidRequest) */
  HANDLER_INTERNAL_ERROR,    /* direct invocation: POST body to /error (errorType InternalError) */
} handler_outcome;

typedef struct handler_result {
  handler_outcome outcome;
  const char *body;   /* JSON; valid until the next handler call */
  size_t length;
  const char *error_type; /* for the Lambda-Runtime-Function-Error-Type header when not OK */
} handler_result;

/* Loads the model and checks the configuration. Returns NULL with a message in err. */
handler *handler_create(const handler_config *config, char *err, size_t err_size);

/* Handles one event: `length` bytes followed by a '\0' at event[length] (the bootstrap's
 * receive buffer always has one; a '\0' inside the event is an error). API Gateway proxy
 * events (an object with "body" or "requestContext") are answered in the proxy response
 * format with outcome HANDLER_OK and the HTTP status inside (200, 400, 413, 500). */
void handler_handle(handler *h, const char *event, size_t length, handler_result *result);

/* Answers an event that was too large to be read: `size` bytes in all, of which the
 * first `prefix_length` are in `prefix` (used to tell an API Gateway event, which is
 * answered with HTTP 413, from a direct invocation). */
void handler_event_too_large(handler *h, const char *prefix, size_t prefix_length, unsigned long long size,
                             handler_result *result);

void handler_free(handler *h);

#endif
