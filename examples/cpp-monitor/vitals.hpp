// vitals.hpp - synthetic ICU patients for the ward simulation: eight vital signs once
// a second, static facts (sex, age, height, weight), some patients deteriorating, and
// the occasional bad sample a real monitor sees (probe off, artifacts).
#ifndef MONITOR_VITALS_HPP
#define MONITOR_VITALS_HPP

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace ward {

// The model's feature order.
enum Vital : size_t { kHeartRate, kSystolic, kDiastolic, kMeanArterial, kRespiratoryRate, kSpO2, kTemperature, kGCS };
constexpr size_t kVitalCount = 8;
using Sample = std::array<float, kVitalCount>;

constexpr const char *kVitalNames[kVitalCount] = {"HR", "SBP", "DBP", "MAP", "RR", "SpO2", "Temp", "GCS"};

// A normal adult at rest: the reference an explanation compares a bed against ("what if
// this channel had been normal?"). MAP = (SBP + 2 DBP) / 3.
constexpr Sample kNormalVitals = {75, 120, 75, 90, 14, 98, 37.0f, 15};

struct Range {
  float low, high;
};

// What a bedside device can physically report; anything outside is an artifact that the
// monitor discards before it reaches the model (SpO2 of 104 %, a negative heart rate).
constexpr Range kPlausible[kVitalCount] = {
    {0, 300}, {0, 300}, {0, 250}, {0, 250}, {0, 100}, {0, 100}, {25, 45}, {3, 15}};

// Where the simulated physiology is kept (a live patient, however sick).
constexpr Range kPhysiological[kVitalCount] = {
    {25, 220}, {50, 230}, {25, 140}, {35, 170}, {4, 60}, {55, 100}, {33, 42.5f}, {3, 15}};

// Out-of-range values only: a non-finite value is deliberately passed on, so the run
// shows the library rejecting it (and the stream staying usable).
inline bool plausible(const Sample &sample) {
  for (size_t i = 0; i < kVitalCount; ++i) {
    float v = sample[i];
    if (std::isfinite(v) && (v < kPlausible[i].low || v > kPlausible[i].high)) return false;
  }
  return true;
}

// SplitMix64: small, fast and good enough for a simulation. Each bed owns its generators,
// so beds share no random state across threads and a run is reproducible from --seed.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  // Standard normal, Box-Muller (one of the pair is dropped: simplicity over speed).
  double normal() {
    double u = 1.0 - uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }

 private:
  uint64_t state_;
};

// Sex (0 female, 1 male), age (years), height (cm), weight (kg): the two-branch model's
// static input, in that order.
using StaticFacts = std::array<float, 4>;

// One patient: a personal baseline, vital signs that wander around it (mean-reverting
// noise, as real traces do), and for some patients a deterioration (septic-shock-like:
// tachycardia, hypotension, tachypnoea, desaturation, fever, falling GCS) that starts
// at a random time and worsens over a ramp.
class Patient {
 public:
  Patient(uint64_t seed, bool deteriorates, uint64_t total_steps) : random_(seed), deteriorates_(deteriorates) {
    baseline_[kHeartRate] = static_cast<float>(random_.uniform(62, 95));
    baseline_[kSystolic] = static_cast<float>(random_.uniform(105, 140));
    baseline_[kDiastolic] = static_cast<float>(random_.uniform(60, 85));
    baseline_[kRespiratoryRate] = static_cast<float>(random_.uniform(12, 19));
    baseline_[kSpO2] = static_cast<float>(random_.uniform(95, 99));
    baseline_[kTemperature] = static_cast<float>(random_.uniform(36.4, 37.3));
    baseline_[kGCS] = random_.uniform() < 0.8 ? 15.0f : static_cast<float>(random_.uniform(12, 15));
    baseline_[kMeanArterial] = (baseline_[kSystolic] + 2 * baseline_[kDiastolic]) / 3;
    current_ = baseline_;
    onset_ = static_cast<uint64_t>(random_.uniform(0.1, 0.5) * static_cast<double>(total_steps));
    ramp_ = std::max<uint64_t>(30, total_steps * 3 / 10);

    bool male = random_.uniform() < 0.5;
    facts_[0] = male ? 1.0f : 0.0f;
    facts_[1] = static_cast<float>(random_.uniform(18, 92));
    facts_[2] = static_cast<float>(random_.normal() * 8 + (male ? 176 : 163));
    facts_[3] = static_cast<float>(std::clamp(random_.normal() * 15 + (male ? 84 : 70), 40.0, 160.0));
  }

  bool deteriorates() const { return deteriorates_; }
  const StaticFacts &facts() const { return facts_; }

  // The vital signs at second `step` (called with step = 0, 1, 2, ...).
  Sample next(uint64_t step) {
    // How far along the deterioration is, 0 .. 1.
    double severity = 0;
    if (deteriorates_ && step > onset_) severity = std::min(1.0, static_cast<double>(step - onset_) / ramp_);
    constexpr float kShift[kVitalCount] = {50, -45, -28, 0, 16, -12, 2.2f, -6};
    constexpr float kNoise[kVitalCount] = {1.2f, 1.5f, 1.0f, 0, 0.5f, 0.3f, 0.01f, 0};
    constexpr float kPull = 0.05f;  // per second: a disturbance fades in ~20 s
    Sample target = baseline_;
    for (size_t i = 0; i < kVitalCount; ++i) {
      target[i] += kShift[i] * static_cast<float>(severity);
      current_[i] += kPull * (target[i] - current_[i]) + kNoise[i] * static_cast<float>(random_.normal());
      current_[i] = std::clamp(current_[i], kPhysiological[i].low, kPhysiological[i].high);
    }
    // Derived and discrete signals, as a monitor reports them.
    Sample sample = current_;
    sample[kMeanArterial] = (sample[kSystolic] + 2 * sample[kDiastolic]) / 3;
    sample[kGCS] = std::round(std::clamp(target[kGCS], 3.0f, 15.0f));
    sample[kSpO2] = std::round(sample[kSpO2]);
    return sample;
  }

 private:
  Random random_;
  bool deteriorates_;
  Sample baseline_{}, current_{};
  uint64_t onset_ = 0, ramp_ = 1;
  StaticFacts facts_{};
};

// What goes wrong with a real sample now and then.
enum class Artifact { kNone, kNaN, kInfinity, kSpO2Over100, kNegativeHeartRate };

// Corrupts a small fraction of samples, each kind equally often: NaN (probe off) and
// +Inf (a broken device driver) go to the library, which must reject them; SpO2 > 100 and
// a negative heart rate are caught by the monitor's own plausibility check.
class ArtifactInjector {
 public:
  ArtifactInjector(uint64_t seed, double rate) : random_(seed), rate_(rate) {}

  Artifact maybe_corrupt(Sample &sample) {
    if (rate_ <= 0 || random_.uniform() >= rate_) return Artifact::kNone;
    size_t channel = static_cast<size_t>(random_.next() % kVitalCount);
    switch (random_.next() % 4) {
      case 0:
        sample[channel] = std::numeric_limits<float>::quiet_NaN();
        return Artifact::kNaN;
      case 1:
        sample[channel] = std::numeric_limits<float>::infinity();
        return Artifact::kInfinity;
      case 2:
        sample[kSpO2] = static_cast<float>(random_.uniform(101, 127));
        return Artifact::kSpO2Over100;
      default:
        sample[kHeartRate] = -static_cast<float>(random_.uniform(1, 60));
        return Artifact::kNegativeHeartRate;
    }
  }

 private:
  Random random_;
  double rate_;
};

}  // namespace ward

#endif  // MONITOR_VITALS_HPP
