// minimal.cpp - MedInfer from C++: load a model, score one row, print the result.
//
//   minimal MODEL [FEATURE=VALUE ...]
//
// Features not given are missing (NaN), which follows each split's default direction as
// the training library does. Prints the model's kind, the prediction and the top SHAP
// contribution. Built against an installed MedInfer with CMake (CMakeLists.txt here):
//
//   cmake -S examples/cpp -B build -DCMAKE_PREFIX_PATH=/usr/local && cmake --build build
//   build/minimal examples/models/noshow_xgb.json Age=42 SMS_Received=1
#include <medinfer.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

// Throws nothing: a failed call prints the status and message and exits.
void check(int status, const char *what) {
  if (status != MEDINFER_OK) {
    std::fprintf(stderr, "%s: %s: %s\n", what, medinfer_status_name(status), medinfer_last_error());
    std::exit(1);
  }
}

struct ModelDeleter {
  void operator()(medinfer_model *model) const { medinfer_model_free(model); }
};
using Model = std::unique_ptr<medinfer_model, ModelDeleter>;

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [FEATURE=VALUE ...]\n", argv[0]);
    return 2;
  }
  if (medinfer_abi_version() != MEDINFER_ABI_VERSION) {
    std::fprintf(stderr, "libmedinfer ABI %d, header %d\n", medinfer_abi_version(), MEDINFER_ABI_VERSION);
    return 1;
  }
  medinfer_model *raw = nullptr;
  check(medinfer_model_load(argv[1], &raw), "medinfer_model_load");
  Model model(raw);

  size_t features = 0, outputs = 0;
  check(medinfer_model_feature_count(model.get(), &features), "medinfer_model_feature_count");
  check(medinfer_model_output_count(model.get(), MEDINFER_OUTPUT_TRANSFORMED, &outputs), "medinfer_model_output_count");
  std::vector<std::string> names(features);
  for (size_t i = 0; i < features; ++i) {
    const char *name = nullptr;
    check(medinfer_model_feature_name(model.get(), i, &name), "medinfer_model_feature_name");
    names[i] = name ? name : "f" + std::to_string(i);
  }

  std::vector<float> row(features, NAN);
  for (int a = 2; a < argc; ++a) {
    std::string arg = argv[a];
    size_t eq = arg.find('=');
    size_t i = 0;
    while (eq != std::string::npos && i < features && names[i] != arg.substr(0, eq)) ++i;
    if (eq == std::string::npos || i == features) {
      std::fprintf(stderr, "unknown feature in '%s'\n", argv[a]);
      return 2;
    }
    row[i] = std::strtof(arg.c_str() + eq + 1, nullptr);
  }

  std::vector<double> prediction(outputs);
  check(medinfer_predict(model.get(), row.data(), 1, features, nullptr, prediction.data(), prediction.size()),
        "medinfer_predict");
  std::printf("MedInfer %s, %zu features\nprediction:", medinfer_version(), features);
  for (double p : prediction) std::printf(" %.6f", p);
  std::printf("\n");

  size_t margins = 0;  // SHAP explains the raw margin(s): K columns of M + 1 values
  check(medinfer_model_output_count(model.get(), MEDINFER_OUTPUT_RAW, &margins), "medinfer_model_output_count");
  if (margins == 1) {  // one value per feature plus the bias
    std::vector<double> shap(features + 1);
    check(medinfer_shap_values(model.get(), row.data(), 1, features, nullptr, shap.data(), shap.size()),
          "medinfer_shap_values");
    size_t top = 0;
    for (size_t i = 1; i < features; ++i)
      if (std::fabs(shap[i]) > std::fabs(shap[top])) top = i;
    std::printf("top driver: %s %+.4f\n", names[top].c_str(), shap[top]);
  }
  return 0;
}
