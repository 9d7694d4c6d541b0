/*
 * http_client.h - a minimal HTTP/1.1 client for the AWS Lambda Runtime API.
 *
 * Just enough HTTP for one loopback peer: one persistent (keep-alive) TCP connection,
 * requests with Content-Length bodies, responses framed by Content-Length or chunked
 * transfer coding (or, failing both, by the server closing). Every part of a response is
 * bounded: the status line and each header line (HTTP_MAX_LINE), the header block
 * (HTTP_MAX_HEADER_BYTES, HTTP_MAX_HEADERS) and the body (the caller's max_body). A body
 * beyond max_body is not stored: its first max_body bytes are kept, the rest is read and
 * thrown away up to HTTP_MAX_DRAIN bytes (so the connection stays usable; past that the
 * connection is closed instead), the response is flagged body_too_large and its size is
 * reported. Anything malformed is an error, never a crash.
 *
 * Not supported (not needed for the Runtime API): TLS, redirects, proxies, 1xx
 * responses other than being skipped, pipelining, obs-fold header continuation lines.
 */
#ifndef MEDINFER_LAMBDA_HTTP_CLIENT_H
#define MEDINFER_LAMBDA_HTTP_CLIENT_H

#include <stddef.h>

#define HTTP_MAX_LINE 8192             /* status line or one header line, CRLF included */
#define HTTP_MAX_HEADER_BYTES 32768    /* the whole header block */
#define HTTP_MAX_HEADERS 64            /* header fields per response */
#define HTTP_MAX_DRAIN (16u << 20)     /* body bytes read and discarded past max_body */

typedef struct http_header {
  const char *name;  /* NUL-terminated, as received (compare case-insensitively) */
  const char *value; /* NUL-terminated, surrounding blanks removed */
} http_header;

typedef struct http_response {
  int status;                 /* e.g. 200 */
  http_header headers[HTTP_MAX_HEADERS];
  size_t header_count;
  char header_storage[HTTP_MAX_HEADER_BYTES];
  char *body;                 /* the caller's buffer (max_body + 1 bytes), NUL-terminated */
  size_t body_length;         /* bytes stored in body (when body_too_large: a prefix) */
  int body_too_large;         /* the body was longer than max_body and was discarded */
  unsigned long long declared_length; /* the body's full length when known (too large) */
} http_response;

typedef struct http_conn {
  int fd;                     /* -1 when not connected */
  char host[256];
  char port[16];
  char host_header[300];
  unsigned char buffer[65536]; /* bytes received and not yet consumed */
  size_t buffer_start, buffer_end;
  char error[256];             /* why the last call failed */
} http_conn;

/* Parses "host:port" (as in AWS_LAMBDA_RUNTIME_API; "[v6addr]:port" too) into conn.
 * Does not connect. Returns 0, or -1 with conn->error set. */
int http_conn_init(http_conn *conn, const char *host_port);

/* Sends one request and reads its response.
 *   method, path   e.g. "POST", "/2018-06-01/runtime/invocation/ID/response"
 *   extra_headers  NULL or complete header lines, each ending in "\r\n"
 *   body           body bytes (may be NULL when body_length is 0)
 *   timeout_ms     receive/send timeout; 0 = wait forever (long-polling /next)
 *   response       filled in; response->body must point to max_body + 1 bytes
 * Connects when not connected, and retries once on a fresh connection when a kept-alive
 * connection turns out to have been closed by the server before any response byte.
 * Returns 0 when a complete response was read (any status), -1 on a transport or
 * protocol error (conn->error says which; the connection is closed). */
int http_request(http_conn *conn, const char *method, const char *path, const char *extra_headers,
                 const void *body, size_t body_length, int timeout_ms, http_response *response,
                 size_t max_body);

/* The value of the first header called `name` (case-insensitive), or NULL. */
const char *http_header_value(const http_response *response, const char *name);

/* Closes the connection (if open). */
void http_conn_close(http_conn *conn);

#endif
