// The hand-written JSON string escaping of hot answers must write exactly
// what nlohmann::json writes for the same text.
#include "lib/core/json_string.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

namespace kvctl::core {
namespace {

std::string ByHand(std::string_view text) {
  std::string out;
  AppendJsonString(text, &out);
  return out;
}

std::string ByNlohmann(std::string_view text) { return nlohmann::json(std::string(text)).dump(); }

TEST_CASE("AppendJsonString writes the bytes nlohmann writes for every control, quote and UTF-8 text") {
  const std::string every_control = [] {
    std::string s;
    for (int c = 0; c < 0x20; ++c) s.push_back(static_cast<char>(c));
    return s;
  }();
  const std::string cases[] = {
      "",
      "plain-key/0001",
      "quote \" and backslash \\ inside",
      every_control,
      "tab\tnew\nline\rreturn\bback\fform",
      "\x7f delete is not escaped",
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91",
      std::string("nul\0in the middle", 17),
      "ends with escape\\",
  };
  for (const std::string& text : cases) {
    CAPTURE(text);
    CHECK(ByHand(text) == ByNlohmann(text));
  }
}

TEST_CASE("AppendJsonString appends to what the string already holds") {
  std::string out = "{\"key\":";
  AppendJsonString("a\"b", &out);
  CHECK(out == "{\"key\":\"a\\\"b\"");
}

}  // namespace
}  // namespace kvctl::core
