// Tests for the byte codecs keys and values travel in: percent-encoding
// (URLs), base64 (JSON values) and the UTF-8 check (JSON keys).
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "lib/core/base64.h"
#include "lib/core/percent_encoding.h"
#include "lib/core/utf8.h"

namespace kvctl::core {
namespace {

TEST_SUITE_BEGIN("codec");

std::string AllBytes() {
  std::string s;
  for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
  return s;
}

bool IsUnreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// ---- percent-encoding -------------------------------------------------------

TEST_CASE("percent-encoding round-trips every byte value") {
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    const std::string encoded = PercentEncode(one);
    CAPTURE(b);
    if (IsUnreserved(one[0])) {
      CHECK(encoded == one);
    } else {
      CHECK(encoded.size() == 3);
      CHECK(encoded[0] == '%');
    }
    auto decoded = PercentDecode(encoded);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == one);
  }
  const std::string all = AllBytes();
  auto decoded = PercentDecode(PercentEncode(all));
  REQUIRE(decoded.has_value());
  CHECK(*decoded == all);
}

TEST_CASE("percent-encoding leaves only unreserved characters and escapes") {
  const std::string encoded = PercentEncode(AllBytes());
  for (size_t i = 0; i < encoded.size(); ++i) {
    CAPTURE(i);
    CHECK((IsUnreserved(encoded[i]) || encoded[i] == '%'));
  }
  CHECK(encoded.size() == 66 + 3 * (256 - 66));  // 66 unreserved bytes
}

TEST_CASE("percent-encoding escapes '/', '+', '%', space and non-ASCII bytes") {
  CHECK(PercentEncode("a/b") == "a%2Fb");
  CHECK(PercentEncode("a+b") == "a%2Bb");
  CHECK(PercentEncode("100%") == "100%25");
  CHECK(PercentEncode("a b") == "a%20b");
  CHECK(PercentEncode("?&=#") == "%3F%26%3D%23");
  CHECK(PercentEncode(std::string("\0\xff", 2)) == "%00%FF");
  CHECK(PercentEncode("Az09-._~") == "Az09-._~");
  CHECK(PercentEncode("") == "");
}

TEST_CASE("percent-decoding accepts either case of hex digit") {
  auto upper = PercentDecode("%2F%C3%A9");
  auto lower = PercentDecode("%2f%c3%a9");
  REQUIRE(upper.has_value());
  REQUIRE(lower.has_value());
  CHECK(*upper == "/\xc3\xa9");
  CHECK(*lower == "/\xc3\xa9");
}

TEST_CASE("percent-decoding keeps '+' and other plain bytes as themselves") {
  auto d = PercentDecode("a+b c/d~");
  REQUIRE(d.has_value());
  CHECK(*d == "a+b c/d~");
  auto empty = PercentDecode("");
  REQUIRE(empty.has_value());
  CHECK(empty->empty());
}

TEST_CASE("percent-decoding rejects a '%' without two hex digits, naming its offset") {
  struct Case {
    std::string text;
    size_t offset;
  };
  for (const Case& c : {Case{"%", 0}, Case{"%2", 0}, Case{"%zz", 0}, Case{"a%g0", 1},
                        Case{"ab%2", 2}, Case{"%41%4", 3}, Case{"x%0g", 1}, Case{"%%41", 0}}) {
    CAPTURE(c.text);
    auto d = PercentDecode(c.text);
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().IsInvalidArgument());
    CHECK(d.error().message().find("byte " + std::to_string(c.offset)) != std::string::npos);
  }
}

// ---- base64 -----------------------------------------------------------------

TEST_CASE("base64 matches the RFC 4648 test vectors both ways") {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    CAPTURE(plain);
    CHECK(Base64Encode(plain) == encoded);
    auto d = Base64Decode(encoded);
    REQUIRE(d.has_value());
    CHECK(*d == plain);
  }
}

TEST_CASE("base64 uses the standard alphabet with '+' and '/'") {
  CHECK(Base64Encode("\xfb\xff") == "+/8=");
  CHECK(Base64Encode(std::string("\0\0\0", 3)) == "AAAA");
  auto d = Base64Decode("+/8=");
  REQUIRE(d.has_value());
  CHECK(*d == "\xfb\xff");
}

TEST_CASE("base64 round-trips every length from 0 to 10 and every byte value") {
  for (size_t len = 0; len <= 10; ++len) {
    for (int fill : {0x00, 0x7f, 0x80, 0xff}) {
      std::string s;
      for (size_t i = 0; i < len; ++i) s.push_back(static_cast<char>(fill ^ static_cast<int>(i * 37)));
      CAPTURE(len);
      CAPTURE(fill);
      const std::string encoded = Base64Encode(s);
      CHECK(encoded.size() == (len + 2) / 3 * 4);
      auto d = Base64Decode(encoded);
      REQUIRE(d.has_value());
      CHECK(*d == s);
    }
  }
  const std::string all = AllBytes();
  for (size_t shift = 0; shift < 3; ++shift) {
    const std::string s = all.substr(shift);
    auto d = Base64Decode(Base64Encode(s));
    REQUIRE(d.has_value());
    CHECK(*d == s);
  }
}

TEST_CASE("base64 decoding rejects a length that is not a multiple of 4") {
  for (const char* text : {"Z", "Zg", "Zg=", "Zm9vY", "Zm9vYmFy=", "Zm9vYg="}) {
    CAPTURE(text);
    auto d = Base64Decode(text);
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().IsInvalidArgument());
  }
}

TEST_CASE("base64 decoding rejects characters outside the alphabet") {
  for (const std::string& text : std::vector<std::string>{"Zm9*", "Zm 9", "Zm9-", "Zm9_", "Zm\n9", "Zm9.", "Zm9v\xc3\xa9==",
                           std::string("Zm9\0", 4)}) {
    CAPTURE(text);
    auto d = Base64Decode(text);
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().IsInvalidArgument());
  }
}

TEST_CASE("base64 decoding rejects bad padding") {
  for (const char* text : {"Zg=A", "Z===", "====", "=Zg=", "Zg==Zg==", "Zm8=Zm9v", "Zm9v=AAA", "A=AA"}) {
    CAPTURE(text);
    auto d = Base64Decode(text);
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().IsInvalidArgument());
  }
}

// ---- UTF-8 ------------------------------------------------------------------

TEST_CASE("ASCII and well-formed multi-byte UTF-8 are valid") {
  for (const std::string& s : std::vector<std::string>{std::string(""), std::string("hello/world"), std::string("a\0b", 3),
                        std::string("\x7f"), std::string("\xc3\xa9"),  // é
                        std::string("\xe2\x82\xac"),                   // €
                        std::string("\xf0\x9f\x98\x80"),               // 😀
                        std::string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80!"),
                        std::string("\xc2\x80"),           // U+0080, smallest 2-byte
                        std::string("\xdf\xbf"),           // U+07FF
                        std::string("\xe0\xa0\x80"),       // U+0800, smallest 3-byte
                        std::string("\xed\x9f\xbf"),       // U+D7FF, just below surrogates
                        std::string("\xee\x80\x80"),       // U+E000, just above surrogates
                        std::string("\xef\xbf\xbf"),       // U+FFFF
                        std::string("\xf0\x90\x80\x80"),   // U+10000, smallest 4-byte
                        std::string("\xf4\x8f\xbf\xbf")}) {  // U+10FFFF, the last
    CAPTURE(s);
    CHECK(IsValidUtf8(s));
  }
}

TEST_CASE("malformed UTF-8 is invalid") {
  struct Case {
    const char* what;
    std::string bytes;
  };
  const std::vector<Case> cases = {
      {"0xff", "\xff"},
      {"0xfe", "\xfe"},
      {"0xff after ASCII", "abc\xff"},
      {"lone continuation byte", "\x80"},
      {"continuation after ASCII", "a\xbf"},
      {"2-byte cut off", "\xc3"},
      {"3-byte cut off after 1", "\xe2"},
      {"3-byte cut off after 2", "\xe2\x82"},
      {"4-byte cut off after 3", "\xf0\x9f\x98"},
      {"cut off then ASCII", "\xe2\x82" "A"},
      {"overlong '/' in 2 bytes", "\xc0\xaf"},
      {"overlong in 2 bytes (c1)", "\xc1\xbf"},
      {"overlong in 3 bytes", "\xe0\x80\xaf"},
      {"overlong U+07FF in 3 bytes", "\xe0\x9f\xbf"},
      {"overlong in 4 bytes", "\xf0\x80\x80\xaf"},
      {"overlong U+FFFF in 4 bytes", "\xf0\x8f\xbf\xbf"},
      {"high surrogate", "\xed\xa0\x80"},
      {"low surrogate", "\xed\xbf\xbf"},
      {"surrogate pair as CESU-8", "\xed\xa0\xbd\xed\xb8\x80"},
      {"past U+10FFFF", "\xf4\x90\x80\x80"},
      {"lead byte f5", "\xf5\x80\x80\x80"},
      {"lead byte f7", "\xf7\xbf\xbf\xbf"},
      {"5-byte form", "\xf8\x88\x80\x80\x80"},
      {"6-byte form", "\xfc\x84\x80\x80\x80\x80"},
      {"ASCII where a continuation belongs", "\xc3" "A"},
      {"valid, then bad", "\xc3\xa9\xc3"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    CHECK_FALSE(IsValidUtf8(c.bytes));
  }
}

TEST_SUITE_END();

}  // namespace
}  // namespace kvctl::core
