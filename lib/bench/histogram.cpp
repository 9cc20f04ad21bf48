#include "lib/bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace kvctl::bench {
namespace {

constexpr uint64_t kLinear = uint64_t{2} << Histogram::kSubBits;  // 128 exact buckets
constexpr uint64_t kHalf = uint64_t{1} << Histogram::kSubBits;     // 64 per power of two

}  // namespace

size_t Histogram::BucketOf(uint64_t value) {
  if (value < kLinear) return static_cast<size_t>(value);
  const int msb = 63 - std::countl_zero(value);  // >= kSubBits + 1
  if (msb >= kMaxBits) return kBuckets - 1;
  const int shift = msb - kSubBits;
  const uint64_t sub = (value >> shift) - kHalf;  // 0..63
  return static_cast<size_t>(kLinear + static_cast<uint64_t>(msb - kSubBits - 1) * kHalf + sub);
}

uint64_t Histogram::BucketUpper(size_t bucket) {
  if (bucket < kLinear) return bucket;
  const uint64_t above = bucket - kLinear;
  const int msb = static_cast<int>(above / kHalf) + kSubBits + 1;
  const int shift = msb - kSubBits;
  const uint64_t sub = above % kHalf + kHalf;
  return ((sub + 1) << shift) - 1;
}

void Histogram::Record(uint64_t value) {
  ++counts_[BucketOf(value)];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t Histogram::ValueAtPercentile(double percentile) const {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(percentile, 0.0, 100.0);
  // The rank of the sample wanted, 1-based: p50 of 4 samples is the 2nd.
  const uint64_t rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(clamped / 100.0 * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(BucketUpper(i), max_);
  }
  return max_;
}

std::vector<Histogram::Bar> Histogram::Bars(int bars) const {
  std::vector<Bar> out;
  if (count_ == 0 || bars <= 0) return out;
  const double lo = static_cast<double>(std::max<uint64_t>(min(), 1));
  const double hi = static_cast<double>(std::max<uint64_t>(max_, 1));
  const double step = std::pow(hi / lo, 1.0 / bars);
  for (int b = 1; b <= bars; ++b) {
    const uint64_t upper = b == bars ? max_ : static_cast<uint64_t>(lo * std::pow(step, b));
    if (!out.empty() && upper <= out.back().upper) continue;
    out.push_back({upper, 0});
  }
  // Each bucket's samples go to the first bar whose upper bound covers the
  // bucket's top (so a bar may hold values up to 1.6 % above its label).
  size_t bar = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    if (counts_[i] == 0) continue;
    const uint64_t top = std::min(BucketUpper(i), max_);
    while (bar + 1 < out.size() && out[bar].upper < top) ++bar;
    out[bar].count += counts_[i];
  }
  return out;
}

}  // namespace kvctl::bench
