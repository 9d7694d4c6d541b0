// monitor.cpp - a simulated ICU ward streaming vital signs through one shared MedInfer
// sequence model, one stream per bed, raising early-warning alerts.
//
//   monitor [--model PATH] [--beds N] [--steps N] [--threads N] [--threshold P] ...
//
// See README.md here for the options, the threading model and sample output.
#include <medinfer.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "latency_histogram.hpp"
#include "medinfer.hpp"
#include "vitals.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// An alert clears only once the risk falls this far below the threshold, so a risk
// hovering around the threshold does not page the nurse every few seconds.
constexpr float kHysteresis = 0.1f;

// When an alert fires, the monitor asks the library why: a Shapley explanation of the
// bed's latest risk over its last kExplainSteps samples, each vital sign in each of
// kExplainWindows windows being one player, against a normal patient's vitals
// (ward::kNormalVitals). Streams keep those steps (explain_steps).
constexpr size_t kExplainSteps = 12;
constexpr size_t kExplainWindows = 2;
constexpr size_t kDriversShown = 3;

struct Options {
  std::string model = "examples/models/icu_lstm.onnx";
  size_t beds = 64;
  uint64_t steps = 3600;  // one sample per second for an hour
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  float threshold = 0.5f;
  double bad_rate = 0.002;       // fraction of samples corrupted
  double deteriorating = 0.15;   // fraction of patients who get worse
  size_t window = 0;             // 0: the library's AUTO mode
  size_t show_events = 12;       // alert events printed (all are counted)
  size_t explain_budget = 512;   // model evaluations per alert explanation; 0: none
  uint64_t seed = 2024;
};

void print_usage(const char *program) {
  std::printf(
      "usage: %s [options]\n"
      "  --model PATH         sequence model (default examples/models/icu_lstm.onnx)\n"
      "  --beds N             beds on the ward (default 64)\n"
      "  --steps N            samples per bed, one per simulated second (default 3600)\n"
      "  --threads N          worker threads sharing the model (default: hardware threads)\n"
      "  --threshold P        alert when the risk reaches P (default 0.5); clears below P - %.1f\n"
      "  --bad-rate F         fraction of samples corrupted: NaN, Inf, SpO2 > 100, HR < 0 (default 0.002)\n"
      "  --deteriorating F    fraction of patients who deteriorate (default 0.15)\n"
      "  --window W           window mode with W steps (default: AUTO, exact for forward models)\n"
      "  --show-events N      alert events printed (default 12; all are counted)\n"
      "  --explain-budget N   model evaluations per alert explanation (default 512; 0: no explanations)\n"
      "  --seed N             random seed (default 2024)\n",
      program, static_cast<double>(kHysteresis));
}

// Parses "--name value" pairs. Returns false (after a message) on anything malformed.
bool parse_options(int argc, char **argv, Options &options) {
  auto number = [](const char *text, double low, double high, double &out) {
    char *end = nullptr;
    out = std::strtod(text, &end);
    return end != text && *end == '\0' && out >= low && out <= high;
  };
  auto whole = [&number](const char *text, double low, double high, double &out) {
    return number(text, low, high, out) && out == std::floor(out);
  };
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    if (name == "--help" || name == "-h") {
      print_usage(argv[0]);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "monitor: %s needs a value\n", name.c_str());
      return false;
    }
    const char *text = argv[++i];
    double value = 0;
    bool ok = true;
    if (name == "--model") options.model = text;
    else if (name == "--beds") ok = whole(text, 1, 1e6, value) && (options.beds = static_cast<size_t>(value), true);
    else if (name == "--steps") ok = whole(text, 1, 1e9, value) && (options.steps = static_cast<uint64_t>(value), true);
    else if (name == "--threads") ok = whole(text, 1, 1024, value) && (options.threads = static_cast<size_t>(value), true);
    else if (name == "--threshold") ok = number(text, 0, 1, value) && (options.threshold = static_cast<float>(value), true);
    else if (name == "--bad-rate") ok = number(text, 0, 1, value) && (options.bad_rate = value, true);
    else if (name == "--deteriorating") ok = number(text, 0, 1, value) && (options.deteriorating = value, true);
    else if (name == "--window") ok = whole(text, 1, 4096, value) && (options.window = static_cast<size_t>(value), true);
    else if (name == "--show-events") ok = whole(text, 0, 1e9, value) && (options.show_events = static_cast<size_t>(value), true);
    else if (name == "--explain-budget") ok = whole(text, 0, 1e6, value) && (options.explain_budget = static_cast<size_t>(value), true);
    else if (name == "--seed") ok = whole(text, 0, 1.8e19, value) && (options.seed = static_cast<uint64_t>(value), true);
    else {
      std::fprintf(stderr, "monitor: unknown option %s (--help lists them)\n", name.c_str());
      return false;
    }
    if (!ok) {
      std::fprintf(stderr, "monitor: bad value '%s' for %s\n", text, name.c_str());
      return false;
    }
  }
  return true;
}

// ---- the model's inputs ----------------------------------------------------------------

// What the monitor needs to know about the model: its vital-sign input and any static
// inputs (rank 2, one row per patient), and how many values a push returns.
struct ModelLayout {
  std::string sequence_input;
  struct StaticInput {
    std::string name;
    size_t width;
  };
  std::vector<StaticInput> static_inputs;
  size_t outputs_per_step = 1;
};

ModelLayout inspect(const medinfer::Model &model) {
  ModelLayout layout;
  for (const medinfer::TensorInfo &input : model.inputs()) {
    if (input.dims.size() == 3) {
      if (input.dims[2] != static_cast<int64_t>(ward::kVitalCount))
        throw std::runtime_error("input '" + input.name + "' takes " + std::to_string(input.dims[2]) +
                                 " features per step; the monitor streams 8 vital signs");
      layout.sequence_input = input.name;
    } else if (input.dims.size() == 2 && input.dims[1] == static_cast<int64_t>(std::tuple_size<ward::StaticFacts>::value)) {
      layout.static_inputs.push_back({input.name, static_cast<size_t>(input.dims[1])});
    } else {
      throw std::runtime_error("input '" + input.name +
                               "' is neither a [batch, time, 8] vital-sign sequence nor a [batch, 4] row of "
                               "sex, age, height, weight");
    }
  }
  if (layout.sequence_input.empty()) throw std::runtime_error("the model has no [batch, time, 8] input");
  std::vector<medinfer::TensorInfo> outputs = model.outputs();
  if (!outputs.empty()) {
    for (size_t a = 1; a < outputs[0].dims.size(); ++a)
      if (outputs[0].dims[a] > 0) layout.outputs_per_step *= static_cast<size_t>(outputs[0].dims[a]);
  }
  return layout;
}

// ---- memory -----------------------------------------------------------------------------

// A field of /proc/self/status in kB ("VmRSS", "VmHWM"), 0 when unavailable.
long proc_status_kib(const char *field) {
  std::FILE *file = std::fopen("/proc/self/status", "r");
  if (!file) return 0;
  char line[256];
  long kib = 0;
  size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, file)) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
      kib = std::strtol(line + n + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(file);
  return kib;
}
long rss_kib() { return proc_status_kib("VmRSS"); }

// ---- the ward ---------------------------------------------------------------------------

struct Bed {
  size_t id;
  ward::Patient patient;
  ward::ArtifactInjector artifacts;
  medinfer::Stream stream;
  bool alerting = false;
  uint64_t consumed = 0;  // steps the library accepted; checked against the stream's count
};

struct Counters {
  uint64_t pushes = 0;               // calls to medinfer_stream_push
  uint64_t accepted = 0;             // steps consumed
  uint64_t rejected_by_library = 0;  // NaN/Inf samples the library refused, as it must
  uint64_t flagged_by_monitor = 0;   // out-of-range samples discarded before pushing
  uint64_t unexpected = 0;           // any other outcome: a library or monitor bug
  uint64_t alerts_raised = 0, alerts_raised_on_deteriorating = 0, alerts_cleared = 0;
  uint64_t explanations = 0;             // alerts explained
  uint64_t explain_ns = 0, explain_max_ns = 0;

  void add(const Counters &o) {
    pushes += o.pushes;
    accepted += o.accepted;
    rejected_by_library += o.rejected_by_library;
    flagged_by_monitor += o.flagged_by_monitor;
    unexpected += o.unexpected;
    alerts_raised += o.alerts_raised;
    alerts_raised_on_deteriorating += o.alerts_raised_on_deteriorating;
    alerts_cleared += o.alerts_cleared;
    explanations += o.explanations;
    explain_ns += o.explain_ns;
    explain_max_ns = std::max(explain_max_ns, o.explain_max_ns);
  }
};

// Prints the first `limit` lines handed to it, from any thread; later ones are dropped
// (they are still counted by the caller). The lock is taken only while printing.
class EventPrinter {
 public:
  explicit EventPrinter(size_t limit) : limit_(limit) {}
  bool wants_more() const { return printed_.load(std::memory_order_relaxed) < limit_; }
  void print(const char *line) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (printed_.load(std::memory_order_relaxed) >= limit_) return;
    printed_.fetch_add(1, std::memory_order_relaxed);
    std::fputs(line, stdout);
  }

 private:
  std::mutex mutex_;
  size_t limit_;
  std::atomic<size_t> printed_{0};
};

struct Printers {
  EventPrinter alerts, rejections, problems;
};

// "[01:02:03] bed 17" for step 3723 (one step per simulated second).
int format_prefix(char *buffer, size_t size, uint64_t step, size_t bed) {
  return std::snprintf(buffer, size, "[%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 "] bed %4zu ", step / 3600,
                       step / 60 % 60, step % 60, bed);
}

int format_vitals(char *buffer, size_t size, const ward::Sample &s) {
  return std::snprintf(buffer, size, "HR %.0f SBP %.0f DBP %.0f MAP %.0f RR %.0f SpO2 %.0f Temp %.1f GCS %.0f",
                       static_cast<double>(s[ward::kHeartRate]), static_cast<double>(s[ward::kSystolic]),
                       static_cast<double>(s[ward::kDiastolic]), static_cast<double>(s[ward::kMeanArterial]),
                       static_cast<double>(s[ward::kRespiratoryRate]), static_cast<double>(s[ward::kSpO2]),
                       static_cast<double>(s[ward::kTemperature]), static_cast<double>(s[ward::kGCS]));
}

// The steps a bed's explanation covers: the last kExplainSteps (fewer early in the stay, or
// in a shorter window), split into kExplainWindows windows of equal length.
struct ExplainWindows {
  size_t windows = 0, window_steps = 0;  // windows == 0: nothing to explain yet
};
ExplainWindows explain_windows(uint64_t consumed, size_t kept) {
  size_t steps = static_cast<size_t>(std::min<uint64_t>(consumed, kept));
  ExplainWindows w;
  if (steps == 0) return w;
  w.windows = steps >= kExplainWindows ? kExplainWindows : 1;
  w.window_steps = steps / w.windows;
  return w;
}

// " drivers: HR last 6s +0.081, RR 6-12s ago +0.040, ..." : the players that raised the
// risk most (largest Shapley values), player p being vital p % 8 in window p / 8 (earliest
// window first), with one sample per second.
int format_drivers(char *buffer, size_t size, const medinfer::Explanation &e, const ExplainWindows &w) {
  std::vector<size_t> order(e.players);
  for (size_t p = 0; p < e.players; ++p) order[p] = p;
  size_t shown = std::min(kDriversShown, e.players);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(shown), order.end(),
                    [&e](size_t a, size_t b) { return e.value(a) > e.value(b); });
  int n = std::snprintf(buffer, size, "  drivers:");
  for (size_t i = 0; i < shown && n > 0 && static_cast<size_t>(n) < size; ++i) {
    size_t p = order[i], window = p / ward::kVitalCount;
    size_t ago = (w.windows - 1 - window) * w.window_steps;  // seconds from the window's end to now
    char when[32];
    if (ago == 0) std::snprintf(when, sizeof when, "last %zus", w.window_steps);
    else std::snprintf(when, sizeof when, "%zu-%zus ago", ago, ago + w.window_steps);
    n += std::snprintf(buffer + n, size - static_cast<size_t>(n), "%s %s %s %+.3f", i ? "," : "",
                       ward::kVitalNames[p % ward::kVitalCount], when, e.value(p));
  }
  return n;
}

struct WorkerResult {
  Counters counters;
  ward::LatencyHistogram latency;  // successful pushes only
};

struct RunContext {
  const Options &options;
  size_t explain_steps;  // steps each stream keeps for explanations (0: none)
  const ModelLayout &layout;
  Printers &printers;
  std::atomic<long> &mid_run_rss_kib;
};

// One worker thread: steps its own beds through the simulated hour, time-major (every
// bed gets second s before any gets second s + 1, as on a real ward). It is the only
// user of these beds' streams while it runs; the model is shared with every other
// worker. Nothing here throws on a bad sample: every outcome is counted.
void run_beds(Bed *beds, size_t bed_count, bool reports_mid_run, const RunContext &run, WorkerResult &result) {
  Counters &c = result.counters;
  std::vector<float> output(std::max<size_t>(1, run.layout.outputs_per_step));
  medinfer::Explanation explanation;  // its buffer is reused for every alert
  medinfer_shapley_options explain_options = medinfer::default_shapley_options();
  explain_options.method = MEDINFER_SHAPLEY_PERMUTATION;
  explain_options.budget = run.options.explain_budget;
  char line[1024];
  for (uint64_t step = 0; step < run.options.steps; ++step) {
    if (reports_mid_run && step == run.options.steps / 2) run.mid_run_rss_kib.store(rss_kib());
    for (size_t b = 0; b < bed_count; ++b) {
      Bed &bed = beds[b];
      ward::Sample sample = bed.patient.next(step);
      ward::Artifact artifact = bed.artifacts.maybe_corrupt(sample);
      if (!ward::plausible(sample)) {
        ++c.flagged_by_monitor;
        continue;
      }
      bool non_finite = artifact == ward::Artifact::kNaN || artifact == ward::Artifact::kInfinity;

      size_t out_count = 0;
      ++c.pushes;
      Clock::time_point start = Clock::now();
      medinfer::Status status = bed.stream.push(sample.data(), sample.size(), output.data(), output.size(), &out_count);
      Clock::time_point stop = Clock::now();
      if (status.code() == MEDINFER_ERR_BUFFER_TOO_SMALL && out_count > output.size()) {
        // The step was not consumed: grow the buffer (once per thread) and push again.
        output.resize(out_count);
        ++c.pushes;
        start = Clock::now();
        status = bed.stream.push(sample.data(), sample.size(), output.data(), output.size(), &out_count);
        stop = Clock::now();
      }

      if (!status.ok()) {
        if (non_finite && status.code() == MEDINFER_ERR_INVALID_ARGUMENT) {
          ++c.rejected_by_library;
          if (run.printers.rejections.wants_more()) {
            int n = format_prefix(line, sizeof line, step, bed.id);
            std::snprintf(line + n, sizeof line - n, "refused by the library: %s\n",
                          status.message().c_str());
            run.printers.rejections.print(line);
          }
        } else {
          ++c.unexpected;
          int n = format_prefix(line, sizeof line, step, bed.id);
          std::snprintf(line + n, sizeof line - n, "UNEXPECTED %s: %s\n", status.name(), status.message().c_str());
          run.printers.problems.print(line);
        }
        continue;
      }
      if (non_finite) {  // the library must never consume a NaN or Inf
        ++c.unexpected;
        int n = format_prefix(line, sizeof line, step, bed.id);
        std::snprintf(line + n, sizeof line - n, "UNEXPECTED: a non-finite sample was accepted\n");
        run.printers.problems.print(line);
      }
      ++c.accepted;
      ++bed.consumed;
      result.latency.record(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(stop - start).count()));

      float risk = output[0];
      if (!bed.alerting && risk >= run.options.threshold) {
        bed.alerting = true;
        ++c.alerts_raised;
        if (bed.patient.deteriorates()) ++c.alerts_raised_on_deteriorating;
        // Why? Explain the risk over the bed's recent samples (outside the push latency).
        ExplainWindows windows = explain_windows(bed.consumed, run.explain_steps);
        bool explained = false;
        if (windows.windows > 0 && run.options.explain_budget > 0) {
          explain_options.time_windows = windows.windows;
          explain_options.window_steps = windows.window_steps;
          explain_options.budget = std::max(run.options.explain_budget, 2 * windows.windows * ward::kVitalCount);
          explain_options.seed = run.options.seed ^ (bed.id * 1000003u + step);
          Clock::time_point explain_start = Clock::now();
          medinfer::Status why = bed.stream.explain(ward::kNormalVitals.data(), ward::kNormalVitals.size(),
                                                    explain_options, explanation);
          uint64_t ns = static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - explain_start).count());
          if (why.ok() && explanation.players == windows.windows * ward::kVitalCount && explanation.outputs >= 1) {
            explained = true;
            ++c.explanations;
            c.explain_ns += ns;
            c.explain_max_ns = std::max(c.explain_max_ns, ns);
          } else {
            ++c.unexpected;
            int n = format_prefix(line, sizeof line, step, bed.id);
            std::snprintf(line + n, sizeof line - n, "UNEXPECTED explanation %s: %s (%zu players)\n", why.name(),
                          why.message().c_str(), explanation.players);
            run.printers.problems.print(line);
          }
        }
        if (run.printers.alerts.wants_more()) {
          int n = format_prefix(line, sizeof line, step, bed.id);
          n += std::snprintf(line + n, sizeof line - n, "ALERT  risk %.3f  ", static_cast<double>(risk));
          n += format_vitals(line + n, sizeof line - n, sample);
          if (explained) n += format_drivers(line + n, sizeof line - n, explanation, windows);
          std::snprintf(line + n, sizeof line - n, "\n");
          run.printers.alerts.print(line);
        }
      } else if (bed.alerting && risk < run.options.threshold - kHysteresis) {
        bed.alerting = false;
        ++c.alerts_cleared;
        if (run.printers.alerts.wants_more()) {
          int n = format_prefix(line, sizeof line, step, bed.id);
          std::snprintf(line + n, sizeof line - n, "clear  risk %.3f\n", static_cast<double>(risk));
          run.printers.alerts.print(line);
        }
      }
    }
  }
}

// ---- the report -------------------------------------------------------------------------

void print_latency(const ward::LatencyHistogram &latency) {
  auto us = [](double ns) { return ns / 1000.0; };
  std::printf("per-step latency (us, around medinfer_stream_push, %" PRIu64 " steps):\n", latency.count());
  std::printf("  p50 %.2f   p90 %.2f   p99 %.2f   p99.9 %.2f   max %.1f   mean %.2f\n", us(latency.quantile(0.50)),
              us(latency.quantile(0.90)), us(latency.quantile(0.99)), us(latency.quantile(0.999)),
              us(static_cast<double>(latency.max())), us(latency.mean()));
  // A coarse picture of the tail: decades of microseconds.
  static constexpr struct {
    const char *label;
    uint64_t low, high;
  } kBands[] = {{"       < 1 us", 0, 1000},        {"    1 - 10 us", 1000, 10000},
                {"   10 - 100 us", 10000, 100000}, {"100 us - 1 ms", 100000, 1000000},
                {"      >= 1 ms", 1000000, UINT64_MAX}};
  for (const auto &band : kBands) {
    uint64_t n = latency.count_between(band.low, band.high);
    double share = latency.count() ? 100.0 * static_cast<double>(n) / static_cast<double>(latency.count()) : 0;
    int bar = static_cast<int>(std::lround(share / 2.5));  // 40 characters = 100 %
    std::printf("  %s %10" PRIu64 " %6.2f%% %.*s\n", band.label, n, share, bar, "########################################");
  }
}

double mib(long kib) { return static_cast<double>(kib) / 1024.0; }

int run_ward(const Options &options) {
  long rss_at_start = rss_kib();
  medinfer::Model model = medinfer::Model::load(options.model);
  ModelLayout layout = inspect(model);
  long rss_after_load = rss_kib();

  medinfer_stream_options stream_options = medinfer::default_stream_options();
  if (options.window > 0) {
    stream_options.mode = MEDINFER_STREAM_WINDOW;
    stream_options.window = options.window;
  }
  // Keep the last 12 samples (and the state before each) for alert explanations; a window
  // shorter than that explains the whole window.
  size_t explain_steps = 0;
  if (options.explain_budget > 0) explain_steps = options.window > 0 ? std::min(kExplainSteps, options.window) : kExplainSteps;
  stream_options.explain_steps = explain_steps;

  std::printf("MedInfer %s: %s, vital signs '%s' [batch, time, 8]", medinfer_version(), options.model.c_str(),
              layout.sequence_input.c_str());
  for (const auto &input : layout.static_inputs) std::printf(", static '%s' [batch, %zu]", input.name.c_str(), input.width);
  std::printf("\nstream mode: %s\n", options.window ? ("window of " + std::to_string(options.window) + " steps").c_str()
                                                    : "auto (exact O(1) steps for forward recurrences, window for bidirectional)");

  // The main thread creates every stream and sets its static inputs; each bed then
  // belongs to exactly one worker until the workers are joined.
  std::vector<Bed> beds;
  beds.reserve(options.beds);
  size_t deteriorating = 0;
  for (size_t id = 0; id < options.beds; ++id) {
    ward::Random chooser(options.seed * 1000003u + id);
    bool deteriorates = chooser.uniform() < options.deteriorating;
    deteriorating += deteriorates;
    Bed bed{id, ward::Patient(chooser.next(), deteriorates, options.steps), ward::ArtifactInjector(chooser.next(), options.bad_rate),
            medinfer::Stream(model, stream_options)};
    for (const auto &input : layout.static_inputs)
      bed.stream.set_static(input.name.c_str(), bed.patient.facts().data(), bed.patient.facts().size());
    beds.push_back(std::move(bed));
  }
  long rss_after_streams = rss_kib();

  size_t threads = std::min(options.threads, options.beds);
  std::printf("ward: %zu beds (%zu deteriorating), %" PRIu64 " steps each, %zu threads, threshold %.2f (clears below %.2f)\n\n",
              options.beds, deteriorating, options.steps, threads, static_cast<double>(options.threshold),
              static_cast<double>(options.threshold - kHysteresis));
  std::fflush(stdout);

  Printers printers{EventPrinter(options.show_events), EventPrinter(4), EventPrinter(10)};
  std::atomic<long> mid_run_rss_kib{0};
  RunContext context{options, explain_steps, layout, printers, mid_run_rss_kib};
  std::vector<WorkerResult> results(threads);
  std::vector<std::thread> workers;
  Clock::time_point start = Clock::now();
  // Contiguous blocks of beds, sizes differing by at most one.
  for (size_t t = 0, first = 0; t < threads; ++t) {
    size_t count = options.beds / threads + (t < options.beds % threads ? 1 : 0);
    workers.emplace_back(run_beds, beds.data() + first, count, t == 0, std::cref(context), std::ref(results[t]));
    first += count;
  }
  for (std::thread &worker : workers) worker.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  long rss_at_end = rss_kib();

  Counters total;
  ward::LatencyHistogram latency;
  for (const WorkerResult &r : results) {
    total.add(r.counters);
    latency.merge(r.latency);
  }
  // Every rejected push must have left its stream untouched: the library's step count
  // equals the pushes it accepted, bed by bed.
  size_t mismatched_beds = 0;
  for (const Bed &bed : beds) {
    uint64_t steps = 0;
    if (medinfer_stream_steps(bed.stream.get(), &steps) != MEDINFER_OK || steps != bed.consumed) ++mismatched_beds;
  }

  uint64_t rejected = total.rejected_by_library + total.flagged_by_monitor;
  std::printf("\nsummary\n");
  std::printf("  beds                %zu (%zu deteriorating)\n", options.beds, deteriorating);
  std::printf("  steps per bed       %" PRIu64 "\n", options.steps);
  std::printf("  total pushes        %" PRIu64 " (%" PRIu64 " steps accepted)\n", total.pushes, total.accepted);
  std::printf("  rejected samples    %" PRIu64 " (%" PRIu64 " NaN/Inf refused by the library, %" PRIu64
              " out of range flagged by the monitor)\n",
              rejected, total.rejected_by_library, total.flagged_by_monitor);
  std::printf("  alerts              %" PRIu64 " raised (%" PRIu64 " on deteriorating beds), %" PRIu64 " cleared\n",
              total.alerts_raised, total.alerts_raised_on_deteriorating, total.alerts_cleared);
  if (options.explain_budget > 0)
    std::printf("  explanations        %" PRIu64 " alerts explained (%zu vitals x %zu windows over the last %zu samples, "
                "permutation budget %zu): mean %.2f ms, max %.2f ms\n",
                total.explanations, ward::kVitalCount, kExplainWindows, explain_steps, options.explain_budget,
                total.explanations ? static_cast<double>(total.explain_ns) / static_cast<double>(total.explanations) / 1e6 : 0.0,
                static_cast<double>(total.explain_max_ns) / 1e6);
  else
    std::printf("  explanations        off (--explain-budget 0)\n");
  std::printf("  unexpected errors   %" PRIu64 "\n", total.unexpected);
  std::printf("  stream step counts  %s\n", mismatched_beds == 0 ? "match the accepted pushes on every bed"
                                                                 : (std::to_string(mismatched_beds) + " beds differ").c_str());
  std::printf("  throughput          %.0f steps/s (%.3f s wall, %zu threads)\n", static_cast<double>(total.accepted) / seconds,
              seconds, threads);
  print_latency(latency);
  std::printf("memory (VmRSS, MiB): start %.1f, model loaded %.1f, %zu streams created %.1f, mid-run %.1f, end %.1f (peak %.1f)\n",
              mib(rss_at_start), mib(rss_after_load), options.beds, mib(rss_after_streams), mib(mid_run_rss_kib.load()),
              mib(rss_at_end), mib(proc_status_kib("VmHWM")));
  return total.unexpected == 0 && mismatched_beds == 0 ? 0 : 3;
}

}  // namespace

int main(int argc, char **argv) {
  Options options;
  if (!parse_options(argc, argv, options)) return 2;
  if (medinfer_abi_version() != MEDINFER_ABI_VERSION) {
    std::fprintf(stderr, "monitor: libmedinfer ABI %d, header %d\n", medinfer_abi_version(), MEDINFER_ABI_VERSION);
    return 1;
  }
  try {
    return run_ward(options);
  } catch (const std::exception &error) {  // setup only: the ward loop never throws
    std::fprintf(stderr, "monitor: %s\n", error.what());
    return 1;
  }
}
