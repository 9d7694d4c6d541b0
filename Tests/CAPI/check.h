/*
 * check.h - the counters and CHECK macros of the C API test programs (test_network.c,
 * test_stream.c): a failed check prints the file, line, message and the library's last
 * error, and the program goes on; main() reports g_passed / g_failed.
 */
#ifndef MEDINFER_TEST_CHECK_H
#define MEDINFER_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

#include "medinfer.h"

static int g_passed, g_failed;

static void check_impl(int ok, const char *file, int line, const char *fmt, ...) {
  if (ok) { g_passed++; return; }
  g_failed++;
  fprintf(stderr, "%s:%d: FAILED: ", file, line);
  va_list args;
  va_start(args, fmt);
  vfprintf(stderr, fmt, args);
  va_end(args);
  fprintf(stderr, " (last error: %s)\n", medinfer_last_error());
}
#define CHECK(cond, ...) check_impl((cond) != 0, __FILE__, __LINE__, __VA_ARGS__)
/* Evaluates `got` once: it is usually the call under test. */
#define CHECK_STATUS(got, want, what)                                                        \
  do {                                                                                      \
    int status_ = (got);                                                                    \
    CHECK(status_ == (want), "%s: status %s, expected %s", what, medinfer_status_name(status_), \
          medinfer_status_name(want));                                                      \
  } while (0)

#endif
