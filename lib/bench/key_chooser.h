// Which key a request uses: uniform over `keys`, or Zipf-skewed (key i
// drawn with probability proportional to 1 / (i + 1)^s), like YCSB's
// request distribution. Each thread draws with its own chooser.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kvctl::bench {

// A small, fast generator (xoshiro256**), seeded per thread.
class Random {
 public:
  explicit Random(uint64_t seed);
  uint64_t Next();
  double NextDouble();  // [0, 1)
  uint64_t Below(uint64_t n);  // [0, n)

 private:
  uint64_t s_[4];
};

class KeyChooser {
 public:
  // zipf_s = 0: uniform. The Zipf table (one double per key) is shared.
  KeyChooser(uint64_t keys, double zipf_s);
  uint64_t Next(Random& random) const;

 private:
  uint64_t keys_;
  std::shared_ptr<const std::vector<double>> cdf_;  // null when uniform
};

// Key `index` as exactly `size` bytes: "k" then the zero-padded index, e.g.
// size 8, index 42 -> "k0000042". Needs size > digits of the largest index.
std::string KeyName(uint64_t index, size_t size);
// The same, appended to `out` without a temporary string.
void AppendKeyName(uint64_t index, size_t size, std::string* out);

}  // namespace kvctl::bench
