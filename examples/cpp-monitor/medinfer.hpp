// medinfer.hpp - C++17 RAII wrappers over the MedInfer C handles used by a bedside
// monitor: Model (immutable, shared by every thread) and Stream (one bed's recurrent
// state, owned by one thread at a time).
//
// Error handling has two shapes, chosen by how often a failure is expected:
//  - Setup calls (load, create, set_static, reset) throw medinfer::Error, which carries
//    the status code and medinfer_last_error(): a failure there is a configuration
//    problem the host should stop on.
//  - Stream::push returns a medinfer::Status instead. A rejected sample (a NaN from a
//    disconnected probe) is an everyday event on a ward, the stream is left exactly as it
//    was, and the caller just counts it and goes on: no exception on the hot path.
//    Stream::explain (why did this bed alert?) returns a Status too: it runs inside the
//    ward loop, where nothing throws.
//
// Header-only; needs include/medinfer.h and libmedinfer.so.
#ifndef MEDINFER_HPP
#define MEDINFER_HPP

#include <medinfer.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace medinfer {

// A failed MedInfer call: the status code, the call's name and the library's message.
class Error : public std::runtime_error {
 public:
  Error(int status, const std::string &call)
      : std::runtime_error(call + ": " + medinfer_status_name(status) + ": " + medinfer_last_error()),
        status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

inline void check(int status, const char *call) {
  if (status != MEDINFER_OK) throw Error(status, call);
}

// The outcome of a call whose failure is expected now and then. On failure it keeps a
// copy of medinfer_last_error(), which the next MedInfer call on this thread overwrites.
class Status {
 public:
  Status() = default;
  static Status from(int code) {
    Status status;
    status.code_ = code;
    if (code != MEDINFER_OK) status.message_ = medinfer_last_error();
    return status;
  }
  bool ok() const noexcept { return code_ == MEDINFER_OK; }
  int code() const noexcept { return code_; }
  const char *name() const noexcept { return medinfer_status_name(code_); }
  const std::string &message() const noexcept { return message_; }

 private:
  int code_ = MEDINFER_OK;
  std::string message_;
};

// A network input or output as the model file declares it; -1 marks an open dimension.
struct TensorInfo {
  std::string name;
  std::vector<int64_t> dims;
};

// A loaded model. Immutable: one Model may be used by any number of threads at once.
// Move-only; it must outlive every Stream created from it.
class Model {
 public:
  static Model load(const std::string &path) {
    medinfer_model *raw = nullptr;
    check(medinfer_model_load(path.c_str(), &raw), "medinfer_model_load");
    return Model(raw);
  }

  const medinfer_model *get() const noexcept { return handle_.get(); }

  std::vector<TensorInfo> inputs() const {
    return describe(medinfer_network_input_count, medinfer_network_input, "medinfer_network_input");
  }
  std::vector<TensorInfo> outputs() const {
    return describe(medinfer_network_output_count, medinfer_network_output, "medinfer_network_output");
  }

 private:
  struct Free {
    void operator()(medinfer_model *model) const noexcept { medinfer_model_free(model); }
  };
  explicit Model(medinfer_model *raw) : handle_(raw) {}

  using CountFn = int (*)(const medinfer_model *, size_t *);
  using InfoFn = int (*)(const medinfer_model *, size_t, const char **, int64_t *, size_t, size_t *);
  std::vector<TensorInfo> describe(CountFn count_fn, InfoFn info_fn, const char *call) const {
    size_t count = 0;
    check(count_fn(get(), &count), call);
    std::vector<TensorInfo> tensors(count);
    for (size_t i = 0; i < count; ++i) {
      const char *name = nullptr;
      int64_t dims[MEDINFER_MAX_RANK];
      size_t rank = 0;
      check(info_fn(get(), i, &name, dims, MEDINFER_MAX_RANK, &rank), call);
      tensors[i].name = name ? name : "";
      tensors[i].dims.assign(dims, dims + (rank < MEDINFER_MAX_RANK ? rank : MEDINFER_MAX_RANK));
    }
    return tensors;
  }

  std::unique_ptr<medinfer_model, Free> handle_;
};

// The stream options, defaults from the library (AUTO mode, window 48, no explanations).
inline medinfer_stream_options default_stream_options() {
  medinfer_stream_options options;
  medinfer_stream_options_init(&options);
  return options;
}

// The Shapley options, defaults from the library (AUTO method, one time window).
inline medinfer_shapley_options default_shapley_options() {
  medinfer_shapley_options options;
  medinfer_shapley_options_init(&options);
  return options;
}

// A Shapley explanation of a stream's latest output: `players` rows of `outputs` values
// (player p, output k at values[p * outputs + k]), then the base value (one row).
struct Explanation {
  size_t players = 0, outputs = 0;
  std::vector<double> values;
  double value(size_t player, size_t output = 0) const { return values[player * outputs + output]; }
  double base(size_t output = 0) const { return values[players * outputs + output]; }
};

// One growing sequence (one bed): the recurrent state, static inputs and step count.
// Not thread-safe: one thread at a time may use it (handing it to another thread
// between uses is fine). Move-only; keeps a pointer to its Model, which must outlive it.
class Stream {
 public:
  explicit Stream(const Model &model, const medinfer_stream_options &options = default_stream_options())
      : model_(model.get()) {
    medinfer_stream *raw = nullptr;
    check(medinfer_stream_create(model_, &options, &raw), "medinfer_stream_create");
    handle_.reset(raw);
  }

  // Sets static input `name` (nullptr: the model's only one), one row of `count` values.
  void set_static(const char *name, const float *values, size_t count) {
    check(medinfer_stream_set_static(handle_.get(), name, values, count), "medinfer_stream_set_static");
  }
  void set_static(const std::string &name, const std::vector<float> &values) {
    set_static(name.c_str(), values.data(), values.size());
  }

  // Appends one time step and writes the model's output for the sequence so far.
  // A failure (e.g. INVALID_ARGUMENT for a NaN) leaves the stream unchanged; with
  // BUFFER_TOO_SMALL, *out_count says how many floats `out` needs. Never throws for a
  // rejected sample.
  Status push(const float *sample, size_t count, float *out, size_t length, size_t *out_count = nullptr) {
    return Status::from(medinfer_stream_push(model_, handle_.get(), sample, count, out, length, out_count));
  }

  // Explains the latest output over the stream's recent steps (see medinfer_stream_explain:
  // the stream must have been created with explain_steps covering them). Reads the stream,
  // never changes it. Like push, it does not throw: the caller decides what a refusal
  // means. The explanation's buffer is reused between calls.
  Status explain(const float *reference, size_t count, const medinfer_shapley_options &options,
                 Explanation &out) const {
    out.players = out.outputs = 0;
    int code = medinfer_stream_explain(model_, handle_.get(), reference, count, &options, out.values.data(),
                                       out.values.size(), &out.players, &out.outputs);
    if (code == MEDINFER_ERR_BUFFER_TOO_SMALL && (out.players + 1) * out.outputs > out.values.size()) {
      out.values.resize((out.players + 1) * out.outputs);
      code = medinfer_stream_explain(model_, handle_.get(), reference, count, &options, out.values.data(),
                                     out.values.size(), &out.players, &out.outputs);
    }
    return Status::from(code);
  }

  uint64_t steps() const {
    uint64_t steps = 0;
    check(medinfer_stream_steps(handle_.get(), &steps), "medinfer_stream_steps");
    return steps;
  }

  // Back to step 0; static inputs are kept.
  void reset() { check(medinfer_stream_reset(handle_.get()), "medinfer_stream_reset"); }

  medinfer_stream *get() const noexcept { return handle_.get(); }

 private:
  struct Free {
    void operator()(medinfer_stream *stream) const noexcept { medinfer_stream_free(stream); }
  };
  const medinfer_model *model_;  // not owned
  std::unique_ptr<medinfer_stream, Free> handle_;
};

}  // namespace medinfer

#endif  // MEDINFER_HPP
