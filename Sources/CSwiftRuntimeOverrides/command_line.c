/* The command line for Swift's CommandLine.arguments, read from /proc/self/cmdline on
 * first use, replacing the static Swift runtime's version (CommandLine.cpp.o in
 * libswiftCore.a).
 *
 * Why: that version finds argv at load time. Its constructor parses every line of
 * /proc/self/maps with sscanf to locate the stack, then walks back from environ. In a
 * host with many mappings (Python with numpy: ~450 lines) that costs 0.15-0.25 ms of
 * every dlopen of libmedinfer.so, for arguments the library never reads. Defining the
 * two functions the stdlib calls here keeps the linker from pulling that archive member
 * (and its constructor) in at all; nm -D shows neither (the version script hides them).
 *
 * Only the release library links the Swift runtime statically (-static-stdlib), so only
 * there is this compiled: debug and test builds use the shared runtime's own version. */
#if defined(MEDINFER_STATIC_SWIFT_RUNTIME) && defined(__linux__)
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTERNAL __attribute__((visibility("hidden")))

static char **override_argv;
static int override_argc;
static char **process_argv;
static int process_argc;
static pthread_once_t process_once = PTHREAD_ONCE_INIT;
static char *empty_argv[1];

/* Splits the NUL-separated /proc/self/cmdline into an argv that lives for the process. */
static void read_process_command_line(void) {
  FILE *file = fopen("/proc/self/cmdline", "rb");
  if (!file) return;
  size_t capacity = 4096, length = 0;
  char *text = malloc(capacity + 1);
  while (text) {
    size_t got = fread(text + length, 1, capacity - length, file);
    length += got;
    if (length < capacity) break;
    char *larger = realloc(text, capacity * 2 + 1);
    if (!larger) { free(text); text = NULL; break; }
    text = larger;
    capacity *= 2;
  }
  fclose(file);
  if (!text) return;
  text[length] = '\0';
  int count = 0;
  for (size_t i = 0; i < length; i += strlen(text + i) + 1) count++;
  char **argv = calloc((size_t)count + 1, sizeof(char *));
  if (!argv) { free(text); return; }
  int index = 0;
  for (size_t i = 0; i < length; i += strlen(text + i) + 1) argv[index++] = text + i;
  process_argv = argv;
  process_argc = count;
}

INTERNAL void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc) {
  override_argv = argv;
  override_argc = argc;
}

INTERNAL char **_swift_stdlib_getUnsafeArgvArgc(int *outArgLen) {
  if (override_argv) {
    *outArgLen = override_argc;
    return override_argv;
  }
  pthread_once(&process_once, read_process_command_line);
  if (!process_argv) {
    *outArgLen = 0;
    return empty_argv;
  }
  *outArgLen = process_argc;
  return process_argv;
}
#endif
