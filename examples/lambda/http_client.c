/*
 * http_client.c - a minimal HTTP/1.1 client over POSIX sockets (see http_client.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "http_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

static int fail(http_conn *conn, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(conn->error, sizeof conn->error, format, args);
  va_end(args);
  http_conn_close(conn);
  return -1;
}

void http_conn_close(http_conn *conn) {
  if (conn->fd >= 0) close(conn->fd);
  conn->fd = -1;
  conn->buffer_start = conn->buffer_end = 0;
}

int http_conn_init(http_conn *conn, const char *host_port) {
  memset(conn, 0, sizeof *conn);
  conn->fd = -1;
  if (!host_port || !*host_port) return fail(conn, "no host:port given");
  const char *colon;
  size_t host_length;
  if (host_port[0] == '[') { /* [v6]:port */
    const char *close_bracket = strchr(host_port, ']');
    if (!close_bracket || close_bracket[1] != ':') return fail(conn, "bad address '%.64s'", host_port);
    host_length = (size_t)(close_bracket - host_port - 1);
    memcpy(conn->host, host_port + 1, host_length < sizeof conn->host ? host_length : 0);
    colon = close_bracket + 1;
  } else {
    colon = strrchr(host_port, ':');
    if (!colon) return fail(conn, "address '%.64s' has no port", host_port);
    host_length = (size_t)(colon - host_port);
    memcpy(conn->host, host_port, host_length < sizeof conn->host ? host_length : 0);
  }
  if (host_length == 0 || host_length >= sizeof conn->host) return fail(conn, "bad host in '%.64s'", host_port);
  conn->host[host_length] = '\0';
  const char *port = colon + 1;
  size_t port_length = strlen(port);
  if (port_length == 0 || port_length > 5 || strspn(port, "0123456789") != port_length || atoi(port) > 65535)
    return fail(conn, "bad port in '%.64s'", host_port);
  memcpy(conn->port, port, port_length + 1);
  snprintf(conn->host_header, sizeof conn->host_header, "%s", host_port);
  return 0;
}

static int set_timeout(int fd, int timeout_ms) {
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return -1;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) return -1;
  return 0;
}

static int connect_to_server(http_conn *conn) {
  struct addrinfo hints, *found = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  int rc = getaddrinfo(conn->host, conn->port, &hints, &found);
  if (rc != 0) return fail(conn, "cannot resolve %s: %s", conn->host, gai_strerror(rc));
  int last_errno = 0;
  for (struct addrinfo *a = found; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      int one = 1; /* small request/response exchanges: do not wait for Nagle */
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      conn->fd = fd;
      conn->buffer_start = conn->buffer_end = 0;
      freeaddrinfo(found);
      return 0;
    }
    last_errno = errno;
    close(fd);
  }
  freeaddrinfo(found);
  return fail(conn, "cannot connect to %s:%s: %s", conn->host, conn->port, strerror(last_errno));
}

/* Sends every byte of the given pieces with as few system calls as the kernel allows
 * (one sendmsg for a whole request, so it leaves in one segment where it fits). */
static int send_pieces(http_conn *conn, struct iovec *iov, int count) {
  while (count > 0) {
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = (size_t)count;
    ssize_t n = sendmsg(conn->fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    size_t left = (size_t)n;
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      count--;
    }
    if (count > 0) {
      iov->iov_base = (char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

/* Refills the buffer. 1 = got bytes, 0 = peer closed, -1 = error (errno). */
static int fill(http_conn *conn) {
  if (conn->buffer_start == conn->buffer_end) conn->buffer_start = conn->buffer_end = 0;
  if (conn->buffer_end == sizeof conn->buffer) { /* compact */
    memmove(conn->buffer, conn->buffer + conn->buffer_start, conn->buffer_end - conn->buffer_start);
    conn->buffer_end -= conn->buffer_start;
    conn->buffer_start = 0;
  }
  for (;;) {
    ssize_t n = recv(conn->fd, conn->buffer + conn->buffer_end, sizeof conn->buffer - conn->buffer_end, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return 0;
    conn->buffer_end += (size_t)n;
    return 1;
  }
}

/* Reads one CRLF- (or LF-) terminated line into out (NUL-terminated, terminator removed).
 * Returns the line length, -1 on error/EOF (conn->error set), -2 when the line is longer
 * than `capacity - 1`. *eof_at_start tells whether the peer closed before any byte. */
static long read_line(http_conn *conn, char *out, size_t capacity, int *eof_at_start) {
  size_t length = 0;
  if (eof_at_start) *eof_at_start = 0;
  for (;;) {
    while (conn->buffer_start < conn->buffer_end) {
      unsigned char c = conn->buffer[conn->buffer_start++];
      if (c == '\n') {
        if (length > 0 && out[length - 1] == '\r') length--;
        out[length] = '\0';
        return (long)length;
      }
      if (length + 1 >= capacity) return -2;
      out[length++] = (char)c;
    }
    int rc = fill(conn);
    if (rc == 1) continue;
    if (rc == 0 && length == 0 && eof_at_start) *eof_at_start = 1;
    if (rc == 0) snprintf(conn->error, sizeof conn->error, "connection closed by the server");
    else snprintf(conn->error, sizeof conn->error, "receive failed: %s", strerror(errno));
    return -1;
  }
}

/* Reads exactly `length` body bytes, storing those that fit below `limit` at
 * body + *stored. Returns 0 or -1. */
static int read_bytes(http_conn *conn, char *body, size_t *stored, size_t limit, unsigned long long length) {
  while (length > 0) {
    if (conn->buffer_start == conn->buffer_end) {
      int rc = fill(conn);
      if (rc <= 0) {
        snprintf(conn->error, sizeof conn->error, "%s in the middle of a body",
                 rc == 0 ? "connection closed" : "receive failed");
        return -1;
      }
    }
    size_t available = conn->buffer_end - conn->buffer_start;
    size_t take = length < available ? (size_t)length : available;
    if (*stored < limit) {
      size_t keep = limit - *stored < take ? limit - *stored : take;
      memcpy(body + *stored, conn->buffer + conn->buffer_start, keep);
      *stored += keep;
    }
    conn->buffer_start += take;
    length -= take;
  }
  return 0;
}

/* Strict unsigned decimal (Content-Length): digits only, no overflow past 2^62. */
static int parse_decimal(const char *s, unsigned long long *out) {
  if (!*s) return -1;
  unsigned long long v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    if (v > (1ULL << 62) / 10) return -1;
    v = v * 10 + (unsigned)(*s - '0');
  }
  *out = v;
  return 0;
}

/* Chunk size line: hex digits (at most 15), optional ";extension". */
static int parse_chunk_size(const char *s, unsigned long long *out) {
  unsigned long long v = 0;
  int digits = 0;
  for (; *s && *s != ';' && *s != ' ' && *s != '\t'; s++) {
    int d;
    if (*s >= '0' && *s <= '9') d = *s - '0';
    else if (*s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
    else if (*s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
    else return -1;
    if (++digits > 15) return -1;
    v = v * 16 + (unsigned)d;
  }
  if (digits == 0) return -1;
  *out = v;
  return 0;
}

static int is_token_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

const char *http_header_value(const http_response *response, const char *name) {
  for (size_t i = 0; i < response->header_count; i++)
    if (strcasecmp(response->headers[i].name, name) == 0) return response->headers[i].value;
  return NULL;
}

/* Reads a status line and the header block into response. Returns 0, -1 (error), or
 * -3 when the server closed the connection before sending anything. */
static int read_head(http_conn *conn, http_response *response) {
  char line[HTTP_MAX_LINE];
  for (;;) { /* skip 1xx interim responses */
    int eof_at_start = 0;
    long n = read_line(conn, line, sizeof line, &eof_at_start);
    if (n == -1) return eof_at_start ? -3 : -1;
    if (n == -2) {
      snprintf(conn->error, sizeof conn->error, "status line longer than %d bytes", HTTP_MAX_LINE);
      return -1;
    }
    /* "HTTP/1.x SSS reason" */
    if (n < 12 || strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
        line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9' ||
        (n > 12 && line[12] != ' ')) {
      snprintf(conn->error, sizeof conn->error, "malformed status line '%.64s'", line);
      return -1;
    }
    response->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    int http10 = line[7] == '0';
    size_t used = 0;
    response->header_count = 0;
    for (;;) {
      n = read_line(conn, line, sizeof line, NULL);
      if (n == -1) return -1;
      if (n == -2) {
        snprintf(conn->error, sizeof conn->error, "header line longer than %d bytes", HTTP_MAX_LINE);
        return -1;
      }
      if (n == 0) break;
      if (line[0] == ' ' || line[0] == '\t') {
        snprintf(conn->error, sizeof conn->error, "folded header lines are not accepted");
        return -1;
      }
      char *colon = strchr(line, ':');
      if (!colon || colon == line) {
        snprintf(conn->error, sizeof conn->error, "malformed header line '%.64s'", line);
        return -1;
      }
      for (char *p = line; p < colon; p++)
        if (!is_token_char((unsigned char)*p)) {
          snprintf(conn->error, sizeof conn->error, "bad character in header name '%.64s'", line);
          return -1;
        }
      char *value = colon + 1;
      while (*value == ' ' || *value == '\t') value++;
      char *end = line + n;
      while (end > value && (end[-1] == ' ' || end[-1] == '\t')) end--;
      *end = '\0';
      *colon = '\0';
      size_t name_length = (size_t)(colon - line), value_length = (size_t)(end - value);
      if (response->header_count == HTTP_MAX_HEADERS || used + name_length + value_length + 2 > sizeof response->header_storage) {
        snprintf(conn->error, sizeof conn->error, "more than %d headers or %d header bytes", HTTP_MAX_HEADERS,
                 HTTP_MAX_HEADER_BYTES);
        return -1;
      }
      char *stored_name = response->header_storage + used;
      memcpy(stored_name, line, name_length + 1);
      used += name_length + 1;
      char *stored_value = response->header_storage + used;
      memcpy(stored_value, value, value_length + 1);
      used += value_length + 1;
      response->headers[response->header_count].name = stored_name;
      response->headers[response->header_count].value = stored_value;
      response->header_count++;
    }
    if (response->status >= 200) return http10 ? 1 : 0;
  }
}

static int read_body(http_conn *conn, http_response *response, const char *method, size_t max_body, int *must_close) {
  size_t stored = 0, limit = max_body + 1; /* store one byte past max to detect "too large" */
  unsigned long long total = 0;
  const char *transfer_encoding = http_header_value(response, "Transfer-Encoding");
  const char *content_length = NULL;
  for (size_t i = 0; i < response->header_count; i++) /* all Content-Length fields must agree */
    if (strcasecmp(response->headers[i].name, "Content-Length") == 0) {
      if (content_length && strcmp(content_length, response->headers[i].value) != 0) {
        snprintf(conn->error, sizeof conn->error, "conflicting Content-Length headers");
        return -1;
      }
      content_length = response->headers[i].value;
    }
  int no_body = strcmp(method, "HEAD") == 0 || response->status == 204 || response->status == 304;
  if (no_body) {
    total = 0;
  } else if (transfer_encoding) {
    if (content_length) {
      snprintf(conn->error, sizeof conn->error, "both Transfer-Encoding and Content-Length");
      return -1;
    }
    if (strcasecmp(transfer_encoding, "chunked") != 0) {
      snprintf(conn->error, sizeof conn->error, "unsupported Transfer-Encoding '%.32s'", transfer_encoding);
      return -1;
    }
    char line[HTTP_MAX_LINE];
    for (;;) {
      long n = read_line(conn, line, sizeof line, NULL);
      unsigned long long size;
      if (n < 0 || parse_chunk_size(line, &size) != 0) {
        if (n >= 0) snprintf(conn->error, sizeof conn->error, "bad chunk size line '%.32s'", line);
        return -1;
      }
      if (size == 0) break;
      total += size;
      if (total > (unsigned long long)max_body + HTTP_MAX_DRAIN) {
        snprintf(conn->error, sizeof conn->error, "chunked body beyond %zu bytes", (size_t)max_body + HTTP_MAX_DRAIN);
        return -1;
      }
      if (read_bytes(conn, response->body, &stored, limit, size) != 0) return -1;
      n = read_line(conn, line, sizeof line, NULL);
      if (n != 0) {
        if (n > 0) snprintf(conn->error, sizeof conn->error, "chunk not followed by CRLF");
        return -1;
      }
    }
    for (int trailers = 0;; trailers++) { /* trailer fields are read and ignored */
      long n = read_line(conn, line, sizeof line, NULL);
      if (n < 0 || trailers > HTTP_MAX_HEADERS) {
        if (n >= 0) snprintf(conn->error, sizeof conn->error, "too many trailer fields");
        return -1;
      }
      if (n == 0) break;
    }
  } else if (content_length) {
    if (parse_decimal(content_length, &total) != 0) {
      snprintf(conn->error, sizeof conn->error, "bad Content-Length '%.32s'", content_length);
      return -1;
    }
    if (total > (unsigned long long)max_body + HTTP_MAX_DRAIN) {
      /* Not worth draining: report the size and drop the connection. */
      response->body_too_large = 1;
      response->declared_length = total;
      response->body_length = 0;
      response->body[0] = '\0';
      *must_close = 1;
      return 0;
    }
    if (read_bytes(conn, response->body, &stored, limit, total) != 0) return -1;
  } else {
    /* Framed by the connection closing. */
    *must_close = 1;
    for (;;) {
      if (conn->buffer_start == conn->buffer_end) {
        int rc = fill(conn);
        if (rc == 0) break;
        if (rc < 0) {
          snprintf(conn->error, sizeof conn->error, "receive failed: %s", strerror(errno));
          return -1;
        }
      }
      size_t available = conn->buffer_end - conn->buffer_start;
      total += available;
      if (total > (unsigned long long)max_body + HTTP_MAX_DRAIN) {
        snprintf(conn->error, sizeof conn->error, "body beyond %zu bytes", (size_t)max_body + HTTP_MAX_DRAIN);
        return -1;
      }
      if (read_bytes(conn, response->body, &stored, limit, available) != 0) return -1;
    }
  }
  if (total > max_body) { /* keep the first max_body bytes: a caller may sniff them */
    response->body_too_large = 1;
    response->declared_length = total;
    response->body_length = stored < max_body ? stored : max_body;
  } else {
    response->body_length = stored;
  }
  response->body[response->body_length] = '\0';
  return 0;
}

int http_request(http_conn *conn, const char *method, const char *path, const char *extra_headers,
                 const void *body, size_t body_length, int timeout_ms, http_response *response,
                 size_t max_body) {
  char head[1024];
  int head_length = snprintf(head, sizeof head,
                             "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: medinfer-lambda/1\r\n"
                             "Content-Length: %zu\r\n",
                             method, path, conn->host_header, body_length);
  if (head_length < 0 || (size_t)head_length >= sizeof head) return fail(conn, "request line too long");
  response->status = 0;
  response->header_count = 0;
  response->body_length = 0;
  response->body_too_large = 0;
  response->declared_length = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    int fresh = conn->fd < 0;
    if (fresh && connect_to_server(conn) != 0) return -1;
    if (set_timeout(conn->fd, timeout_ms) != 0) return fail(conn, "setsockopt: %s", strerror(errno));
    struct iovec iov[4] = {
        {head, (size_t)head_length},
        {(void *)(extra_headers ? extra_headers : ""), extra_headers ? strlen(extra_headers) : 0},
        {"\r\n", 2},
        {(void *)(body ? body : ""), body ? body_length : 0},
    };
    if (send_pieces(conn, iov, 4) != 0) {
      int e = errno;
      if (!fresh && (e == EPIPE || e == ECONNRESET)) { /* a stale keep-alive connection */
        http_conn_close(conn);
        continue;
      }
      return fail(conn, "send failed: %s", strerror(e));
    }
    int rc = read_head(conn, response);
    if (rc == -3 && !fresh) { /* closed before answering: retry once on a new connection */
      http_conn_close(conn);
      continue;
    }
    if (rc < 0) {
      char why[256];
      snprintf(why, sizeof why, "%s", rc == -3 ? "connection closed by the server" : conn->error);
      return fail(conn, "%s", why);
    }
    int must_close = rc == 1; /* HTTP/1.0 */
    const char *connection = http_header_value(response, "Connection");
    if (connection && strcasecmp(connection, "close") == 0) must_close = 1;
    if (read_body(conn, response, method, max_body, &must_close) != 0) {
      char why[256];
      snprintf(why, sizeof why, "%s", conn->error);
      return fail(conn, "%s", why);
    }
    if (must_close) http_conn_close(conn);
    return 0;
  }
  return fail(conn, "the server closed the connection twice without answering");
}
