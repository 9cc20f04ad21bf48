#include "lib/core/base64.h"

#include <array>

namespace kvctl::core {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr auto kDecode = MakeDecodeTable();

}  // namespace

// Both write into a string sized once: a push_back per byte (its capacity
// check each time) was most of their cost, and they run for every key and
// value a transaction carries, on the server and in `kvctl bench`.
std::string Base64Encode(std::string_view bytes) {
  std::string out((bytes.size() + 2) / 3 * 4, '\0');
  char* p = out.data();
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) |
                       (static_cast<uint8_t>(bytes[i + 1]) << 8) | static_cast<uint8_t>(bytes[i + 2]);
    *p++ = kAlphabet[(n >> 18) & 63];
    *p++ = kAlphabet[(n >> 12) & 63];
    *p++ = kAlphabet[(n >> 6) & 63];
    *p++ = kAlphabet[n & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    *p++ = kAlphabet[(n >> 18) & 63];
    *p++ = kAlphabet[(n >> 12) & 63];
    *p++ = rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    *p++ = '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return Status::InvalidArgument("base64 text must be a multiple of 4 characters long");
  }
  // Padding only at the very end; a '=' elsewhere fails as a character.
  const int pad = text.empty() ? 0
                               : (text[text.size() - 1] == '=') +
                                     (text[text.size() - 1] == '=' && text[text.size() - 2] == '=');
  std::string out(text.size() / 4 * 3 - static_cast<size_t>(pad), '\0');
  char* p = out.data();
  for (size_t i = 0; i < text.size(); i += 4) {
    const int quad_pad = i + 4 == text.size() ? pad : 0;
    uint32_t n = 0;
    for (int j = 0; j < 4 - quad_pad; ++j) {
      const int v = kDecode[static_cast<unsigned char>(text[i + j])];
      if (v < 0) return Status::InvalidArgument("invalid character in base64 text");
      n |= static_cast<uint32_t>(v) << (18 - 6 * j);
    }
    *p++ = static_cast<char>((n >> 16) & 255);
    if (quad_pad < 2) *p++ = static_cast<char>((n >> 8) & 255);
    if (quad_pad < 1) *p++ = static_cast<char>(n & 255);
  }
  return out;
}

}  // namespace kvctl::core
