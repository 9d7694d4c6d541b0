// latency_histogram.hpp - a fixed-size log-linear histogram of durations in nanoseconds.
//
// 1000 beds x 3600 steps are 3.6 million latencies: keeping them all would take 14 MB
// and make the memory measurement meaningless, so each thread counts them into ~1300
// buckets (values below 64 ns exact, above that 32 buckets per power of two: within
// 3 % of the true value) and the histograms are merged at the end.
#ifndef MONITOR_LATENCY_HISTOGRAM_HPP
#define MONITOR_LATENCY_HISTOGRAM_HPP

#include <algorithm>
#include <array>
#include <cstdint>

namespace ward {

class LatencyHistogram {
 public:
  void record(uint64_t nanoseconds) {
    ++counts_[bucket_of(nanoseconds)];
    ++count_;
    sum_ += nanoseconds;
    max_ = std::max(max_, nanoseconds);
  }

  void merge(const LatencyHistogram &other) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }

  // The value below which a fraction q (0..1) of the recorded durations lie: the
  // middle of the bucket holding that rank, never above the maximum seen.
  double quantile(double q) const {
    if (count_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(static_cast<double>(max_), lower_bound(i) + width(i) / 2.0);
    }
    return static_cast<double>(max_);
  }

  // How many durations fall in [low, high) nanoseconds (bucket resolution).
  uint64_t count_between(uint64_t low, uint64_t high) const {
    uint64_t n = 0;
    for (size_t i = 0; i < kBuckets; ++i)
      if (lower_bound(i) >= low && lower_bound(i) < high) n += counts_[i];
    return n;
  }

 private:
  static constexpr unsigned kSubBits = 5;                  // 32 buckets per power of two
  static constexpr uint64_t kLinear = 2u << kSubBits;      // 0..63 ns: one bucket each
  static constexpr unsigned kMaxExponent = 44;             // about 4.9 hours
  static constexpr size_t kBuckets = kLinear + (kMaxExponent - kSubBits) * (1u << kSubBits);

  static size_t bucket_of(uint64_t v) {
    if (v < kLinear) return static_cast<size_t>(v);
    unsigned exponent = 63u - static_cast<unsigned>(__builtin_clzll(v));  // v >= 64: exponent >= 6
    if (exponent > kMaxExponent) return kBuckets - 1;
    uint64_t sub = (v >> (exponent - kSubBits)) & ((1u << kSubBits) - 1);
    return kLinear + (exponent - kSubBits - 1) * (1u << kSubBits) + sub;
  }
  static uint64_t lower_bound(size_t i) {
    if (i < kLinear) return i;
    size_t k = i - kLinear;
    unsigned exponent = static_cast<unsigned>(k >> kSubBits) + kSubBits + 1;
    uint64_t sub = k & ((1u << kSubBits) - 1);
    return ((1ull << kSubBits) + sub) << (exponent - kSubBits);
  }
  static uint64_t width(size_t i) {
    if (i < kLinear) return 1;
    unsigned exponent = static_cast<unsigned>((i - kLinear) >> kSubBits) + kSubBits + 1;
    return 1ull << (exponent - kSubBits);
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0, sum_ = 0, max_ = 0;
};

}  // namespace ward

#endif  // MONITOR_LATENCY_HISTOGRAM_HPP
