#include "lib/bench/key_chooser.h"

#include <algorithm>
#include <cmath>

namespace kvctl::bench {
namespace {

uint64_t SplitMix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

__extension__ using Uint128 = unsigned __int128;  // for Lemire's multiply-shift range

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Random::Random(uint64_t seed) {
  for (uint64_t& s : s_) s = SplitMix(seed);
}

uint64_t Random::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Random::NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

uint64_t Random::Below(uint64_t n) {
  return static_cast<uint64_t>((static_cast<Uint128>(Next()) * n) >> 64);
}

KeyChooser::KeyChooser(uint64_t keys, double zipf_s) : keys_(std::max<uint64_t>(keys, 1)) {
  if (zipf_s <= 0) return;
  auto cdf = std::make_shared<std::vector<double>>(keys_);
  double sum = 0;
  for (uint64_t i = 0; i < keys_; ++i) {
    sum += 1.0 / std::pow(static_cast<double>(i + 1), zipf_s);
    (*cdf)[i] = sum;
  }
  for (double& c : *cdf) c /= sum;
  cdf_ = std::move(cdf);
}

uint64_t KeyChooser::Next(Random& random) const {
  if (!cdf_) return random.Below(keys_);
  const double u = random.NextDouble();
  const auto it = std::upper_bound(cdf_->begin(), cdf_->end(), u);
  return std::min<uint64_t>(static_cast<uint64_t>(it - cdf_->begin()), keys_ - 1);
}

void AppendKeyName(uint64_t index, size_t size, std::string* out) {
  char digits[20];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + index % 10);
    index /= 10;
  } while (index > 0);
  out->push_back('k');
  if (size > n + 1) out->append(size - n - 1, '0');
  while (n > 0) out->push_back(digits[--n]);
}

std::string KeyName(uint64_t index, size_t size) {
  std::string key;
  AppendKeyName(index, size, &key);
  return key;
}

}  // namespace kvctl::bench
