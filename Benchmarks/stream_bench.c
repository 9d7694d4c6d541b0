/* Per-step latency of medinfer_stream_push, one thread (make stream-bench).
 *
 *   stream_bench MODEL [--samples N] [--streams M] [--cpu C] [--out FILE.md]
 *
 * 1. One stream: N samples (default 100,000) pushed one after another, each timed with
 *    CLOCK_MONOTONIC: p50 / p99 / p99.9 / max, and the mean from one clock around an
 *    untimed run of N more (no per-call timer cost).
 * 2. M streams (default 1,000) round-robin, N pushes in all: every push finds its
 *    stream's state evicted from L1/L2 by the other streams, as on a busy monitor.
 * 3. For scale: medinfer_sequence_run on 48 steps, what recomputing the whole window on
 *    every new sample would cost instead.
 * The process is pinned to one CPU (default: the last). Writes a Markdown table to
 * stdout and, with --out, to FILE. */
#define _GNU_SOURCE
#include <medinfer.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FEATURES 8
#define WINDOW_STEPS 48

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The q-quantile (0..1) of sorted values, nearest rank. */
static uint64_t quantile(const uint64_t *sorted, size_t n, double q) {
  size_t rank = (size_t)ceil(q * (double)n);
  return sorted[rank > 0 ? rank - 1 : 0];
}

static void die(const char *what, int status) {
  fprintf(stderr, "stream_bench: %s: %s: %s\n", what, medinfer_status_name(status), medinfer_last_error());
  exit(1);
}

/* Standardized vital signs drifting like real traces (what the ICU models take). */
static float *make_samples(size_t n) {
  float *x = malloc(n * FEATURES * sizeof(float));
  uint64_t state = 12345;
  float level[FEATURES] = {0};
  for (size_t i = 0; i < n; i++)
    for (size_t f = 0; f < FEATURES; f++) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      float u = (float)((double)(state >> 40) / (double)(1ull << 23) - 1.0);
      level[f] = 0.95f * level[f] + 0.3f * u;
      x[i * FEATURES + f] = level[f];
    }
  return x;
}

/* A static row (sex, age, height, weight) for models that take one. */
static void set_static_if_any(const medinfer_model *model, medinfer_stream *stream) {
  size_t inputs = 0;
  medinfer_network_input_count(model, &inputs);
  for (size_t i = 0; i < inputs; i++) {
    const char *name = NULL;
    int64_t dims[MEDINFER_MAX_RANK];
    size_t rank = 0;
    if (medinfer_network_input(model, i, &name, dims, MEDINFER_MAX_RANK, &rank) != MEDINFER_OK || rank != 2) continue;
    float row[64] = {1, 0.2f, -0.1f, 0.3f};
    int status = medinfer_stream_set_static(stream, name, row, dims[1] > 0 && dims[1] <= 64 ? (size_t)dims[1] : 4);
    if (status != MEDINFER_OK) die("medinfer_stream_set_static", status);
  }
}

static medinfer_stream *new_stream(const medinfer_model *model) {
  medinfer_stream *stream = NULL;
  int status = medinfer_stream_create(model, NULL, &stream);
  if (status != MEDINFER_OK) die("medinfer_stream_create", status);
  set_static_if_any(model, stream);
  return stream;
}

static void push(const medinfer_model *model, medinfer_stream *stream, const float *sample, float *risk) {
  int status = medinfer_stream_push(model, stream, sample, FEATURES, risk, 1, NULL);
  if (status != MEDINFER_OK) die("medinfer_stream_push", status);
}

typedef struct {
  uint64_t p50, p99, p999, max;
  double mean;
} latency;

static latency summarize(uint64_t *ns, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)ns[i];
  qsort(ns, n, sizeof *ns, compare_u64);
  latency l = {quantile(ns, n, 0.50), quantile(ns, n, 0.99), quantile(ns, n, 0.999), ns[n - 1], sum / (double)n};
  return l;
}

static void cpu_name(char *out, size_t size) {
  snprintf(out, size, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (strncmp(line, "model name", 10) == 0 && colon) {
      snprintf(out, size, "%s", colon + 2);
      out[strcspn(out, "\n")] = '\0';
      break;
    }
  }
  fclose(f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [--samples N] [--streams M] [--cpu C] [--out FILE.md]\n", argv[0]);
    return 2;
  }
  const char *model_path = argv[1], *out_path = NULL;
  size_t samples = 100000, streams = 1000;
  long cpu = sysconf(_SC_NPROCESSORS_ONLN) - 1;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--samples") == 0) samples = strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--streams") == 0) streams = strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--cpu") == 0) cpu = strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--out") == 0) out_path = argv[i + 1];
    else { fprintf(stderr, "stream_bench: unknown option %s\n", argv[i]); return 2; }
  }
  if (samples < 1000 || streams < 1) { fprintf(stderr, "stream_bench: --samples >= 1000, --streams >= 1\n"); return 2; }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu < 0 ? 0 : (int)cpu, &set);
  int pinned = sched_setaffinity(0, sizeof set, &set) == 0;

  medinfer_model *model = NULL;
  int status = medinfer_model_load(model_path, &model);
  if (status != MEDINFER_OK) die("medinfer_model_load", status);
  float *x = make_samples(samples);
  uint64_t *ns = malloc(samples * sizeof *ns);
  float risk = 0;

  /* 1. one stream */
  medinfer_stream *stream = new_stream(model);
  for (size_t i = 0; i < 10000; i++) push(model, stream, x + (i % samples) * FEATURES, &risk); /* warm up */
  uint64_t timer_cost[1001];
  for (size_t i = 0; i < 1001; i++) {
    uint64_t a = now_ns();
    timer_cost[i] = now_ns() - a;
  }
  qsort(timer_cost, 1001, sizeof *timer_cost, compare_u64);
  for (size_t i = 0; i < samples; i++) {
    uint64_t start = now_ns();
    push(model, stream, x + i * FEATURES, &risk);
    ns[i] = now_ns() - start;
  }
  latency one = summarize(ns, samples);
  uint64_t start = now_ns();
  for (size_t i = 0; i < samples; i++) push(model, stream, x + i * FEATURES, &risk);
  double untimed_mean = (double)(now_ns() - start) / (double)samples;
  medinfer_stream_free(stream);

  /* 2. many streams, round-robin */
  medinfer_stream **many = malloc(streams * sizeof *many);
  for (size_t s = 0; s < streams; s++) many[s] = new_stream(model);
  for (size_t s = 0; s < streams; s++) push(model, many[s], x + (s % samples) * FEATURES, &risk); /* first touch */
  for (size_t i = 0; i < samples; i++) {
    medinfer_stream *next = many[i % streams];
    uint64_t t0 = now_ns();
    push(model, next, x + i * FEATURES, &risk);
    ns[i] = now_ns() - t0;
  }
  latency cold = summarize(ns, samples);
  for (size_t s = 0; s < streams; s++) medinfer_stream_free(many[s]);
  free(many);

  /* 3. the alternative: rerun 48 steps per sample */
  medinfer_session *session = NULL;
  status = medinfer_session_create(model, &session);
  if (status != MEDINFER_OK) die("medinfer_session_create", status);
  double window_us = NAN;
  size_t inputs = 0;
  medinfer_network_input_count(model, &inputs);
  if (inputs == 1) { /* single-input models only: no static rows to build */
    medinfer_sequence_batch batch;
    medinfer_sequence_batch_init(&batch);
    batch.values = x;
    batch.batch = 1;
    batch.max_steps = WINDOW_STEPS;
    batch.features = FEATURES;
    enum { RUNS = 501 };
    uint64_t runs[RUNS];
    for (size_t i = 0; i < RUNS + 50; i++) {
      batch.values = x + (i % 1000) * FEATURES;
      uint64_t t0 = now_ns();
      status = medinfer_sequence_run(session, &batch, &risk, 1, NULL);
      if (status != MEDINFER_OK) die("medinfer_sequence_run", status);
      if (i >= 50) runs[i - 50] = now_ns() - t0; /* the first runs plan the graph */
    }
    qsort(runs, RUNS, sizeof *runs, compare_u64);
    window_us = (double)runs[RUNS / 2] / 1000.0;
  }
  medinfer_session_free(session);

  char cpu_model[256], when[64];
  cpu_name(cpu_model, sizeof cpu_model);
  time_t t = time(NULL);
  strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&t));
  double load[1] = {0};
  if (getloadavg(load, 1) < 1) load[0] = NAN;

  char report[4096];
  int n = snprintf(report, sizeof report,
      "# Streaming benchmark\n\n"
      "`make stream-bench` (%s, %s, %ld CPUs, load average %.2f; one thread%s). Model `%s`,\n"
      "libmedinfer %s. Each push is timed with two `clock_gettime(CLOCK_MONOTONIC)` calls,\n"
      "which cost about %llu ns together (included in the percentiles).\n\n"
      "| measure | p50 | p99 | p99.9 | max | mean | bar |\n"
      "| --- | ---: | ---: | ---: | ---: | ---: | --- |\n"
      "| one stream, %zu pushes | %llu ns | %llu ns | %llu ns | %.1f us | %.0f ns (untimed: %.0f ns) | p99 < 1 us: %s |\n"
      "| %zu streams round-robin, %zu pushes | %llu ns | %llu ns | %llu ns | %.1f us | %.0f ns | |\n",
      when, cpu_model, sysconf(_SC_NPROCESSORS_ONLN), load[0], pinned ? ", pinned to one CPU" : "", model_path,
      medinfer_version(), (unsigned long long)timer_cost[500], samples, (unsigned long long)one.p50,
      (unsigned long long)one.p99, (unsigned long long)one.p999, (double)one.max / 1000.0, one.mean, untimed_mean,
      one.p99 < 1000 ? "ok" : "MISSED", streams, samples, (unsigned long long)cold.p50, (unsigned long long)cold.p99,
      (unsigned long long)cold.p999, (double)cold.max / 1000.0, cold.mean);
  if (!isnan(window_us) && n > 0 && (size_t)n < sizeof report)
    n += snprintf(report + n, sizeof report - (size_t)n,
                  "\nFor scale: `medinfer_sequence_run` on a %d-step window, batch 1 (what recomputing the window\n"
                  "on every sample would cost): median %.1f us, %.0fx the streaming step.\n",
                  WINDOW_STEPS, window_us, window_us * 1000.0 / (double)one.p50);
  fputs(report, stdout);
  if (out_path) {
    FILE *f = fopen(out_path, "w");
    if (!f || fputs(report, f) < 0 || fclose(f) != 0) { perror(out_path); return 1; }
  }
  free(ns);
  free(x);
  medinfer_model_free(model);
  return 0;
}
