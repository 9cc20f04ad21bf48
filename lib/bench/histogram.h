// A latency histogram in the manner of HdrHistogram: log-linear buckets,
// so memory and recording cost are fixed (a few KiB, one increment) however
// many samples arrive, and every value is kept to within 1/64 (1.6 %) of
// itself. Values below 128 are exact.
//
// Bucket layout (values are nanoseconds in kvctl bench): 0..127 one bucket
// each; above that, each power of two [2^k, 2^(k+1)) is split into 64 equal
// buckets. Values over the top (~2^40 ns, 18 minutes) count in the last one.
//
// Not thread-safe: one histogram per thread, merged at the end.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvctl::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 6;  // 64 buckets per power of two
  static constexpr int kMaxBits = 40;
  static constexpr size_t kBuckets = (2u << kSubBits) + (kMaxBits - kSubBits - 1) * (1u << kSubBits);

  void Record(uint64_t value);
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }  // exact
  uint64_t max() const { return max_; }                    // exact
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / static_cast<double>(count_); }

  // The value at or below which `percentile` (0..100) of the samples fall:
  // the top of that sample's bucket, capped at max().
  uint64_t ValueAtPercentile(double percentile) const;

  struct Bar {
    uint64_t upper = 0;  // samples at or below this value...
    uint64_t count = 0;  // ...and above the previous bar's upper
  };
  // `bars` rows between min() and max(), spaced evenly on a log scale, for
  // a text histogram. Empty when there are no samples.
  std::vector<Bar> Bars(int bars) const;

  // For tests: the bucket of a value and the largest value in a bucket.
  static size_t BucketOf(uint64_t value);
  static uint64_t BucketUpper(size_t bucket);

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  uint64_t sum_ = 0;
};

}  // namespace kvctl::bench
