// The etcd face's quick reader of a put body (etcd_put_body.h) against the
// full one (nlohmann's tree and the face's field readers): on every body
// the quick one reads, both read the same ask; it declines every body it
// cannot be sure of, so the full reader words the refusal.
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "lib/server/etcd_internal.h"
#include "lib/server/etcd_put_body.h"

namespace {

using kvctl::server::etcd::PutAsk;
using kvctl::server::etcd::ReadPlainPutBody;

// What the full reader makes of a body: the ask, or nullopt when it refuses
// it (or reads it only as a stream's first value).
std::optional<PutAsk> ReadInFull(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  namespace etcd = kvctl::server::etcd;
  PutAsk ask;
  for (auto e : {etcd::ReadBytes(j, "key", &ask.key), etcd::ReadBytes(j, "value", &ask.value),
                 etcd::ReadInt(j, "lease", &ask.lease), etcd::ReadBool(j, "prev_kv", &ask.prev_kv),
                 etcd::ReadBool(j, "ignore_value", &ask.ignore_value),
                 etcd::ReadBool(j, "ignore_lease", &ask.ignore_lease)}) {
    if (e) return std::nullopt;
  }
  return ask;
}

void CheckSame(const PutAsk& quick, const PutAsk& full) {
  CHECK(quick.key == full.key);
  CHECK(quick.value == full.value);
  CHECK(quick.lease == full.lease);
  CHECK(quick.prev_kv == full.prev_kv);
  CHECK(quick.ignore_value == full.ignore_value);
  CHECK(quick.ignore_lease == full.ignore_lease);
}

TEST_CASE("etcd face: the usual put bodies are read without a tree, to the same ask as the full reader's") {
  const std::vector<std::string> bodies = {
      R"({"key":"Zm9v","value":"YmFy"})",
      R"( { "key" : "Zm9v" , "value" : "YmFy" } )",
      "{\n\t\"key\": \"Zm9v\",\r\n\"value\": \"\"\n}\n",
      R"({"value":"YmFy","key":"Zm9v"})",
      R"({"key":"Zm9v"})",
      R"({"key":"Zm9v","value":"YmFy","lease":"7587869428553578530"})",
      R"({"key":"Zm9v","value":"YmFy","lease":12345})",
      R"({"key":"Zm9v","value":"YmFy","lease":-5})",
      R"({"key":"Zm9v","value":"YmFy","lease":"-9223372036854775808"})",
      R"({"key":"Zm9v","value":null,"lease":null,"prev_kv":null})",
      R"({"key":"Zm9v","prev_kv":true,"ignore_value":false,"ignore_lease":true})",
      R"({"key":"Zm9v","value":"YmFy","other":"x","n":-10})",  // members put does not have
      R"({})",
  };
  for (const std::string& body : bodies) {
    CAPTURE(body);
    const auto quick = ReadPlainPutBody(body);
    const auto full = ReadInFull(body);
    REQUIRE(quick.has_value());
    REQUIRE(full.has_value());
    CheckSame(*quick, *full);
  }
}

TEST_CASE("etcd face: a put body the quick reader cannot be sure of is left to the full reader") {
  const std::vector<std::string> bodies = {
      R"({"key":"Zm9v","value":"YmFy"} trailing)",   // Go's decoder reads the first value only
      R"({"key":"Zm9v","value":"YmFy"}{"key":"eA=="})",
      R"({"key":"Zm9v","key":"YmFy"})",              // a name twice
      R"({"key":"Zm9v","x":1,"x":2})",
      R"({"key":"Zm9\u0076"})",                      // an escape
      R"({"k\u0065y":"Zm9v"})",
      R"({"key":"Zm9v","value":"not base64!"})",     // refused in full
      R"({"key":1})",
      R"({"key":"Zm9v","lease":"12a"})",
      R"({"key":"Zm9v","lease":" 12"})",
      R"({"key":"Zm9v","lease":"+12"})",
      R"({"key":"Zm9v","lease":1.0})",               // taken in full: a fraction of zero
      R"({"key":"Zm9v","lease":1e3})",
      R"({"key":"Zm9v","lease":01})",
      R"({"key":"Zm9v","lease":18446744073709551615})",
      R"({"key":"Zm9v","lease":true})",
      R"({"key":"Zm9v","prev_kv":"true"})",
      R"({"key":"Zm9v","prev_kv":1})",
      R"({"key":"Zm9v","nested":{"a":1}})",
      R"({"key":"Zm9v","n":1.5e3})",                 // a fraction, even in a member put does not have
      R"({"key":"Zm9v","list":[1]})",
      "{\"key\":\"Zm9v\",\"v\":\"caf\xc3\xa9\"}",    // not ASCII
      "{\"key\":\"Zm9v\",\"v\":\"a\tb\"}",           // a control character in a string
      R"({"key":"Zm9v",})",
      R"({,"key":"Zm9v"})",
      R"({"key":"Zm9v" "value":"YmFy"})",
      R"({"key":"Zm9v")",
      R"({"key":"Zm9v)",
      R"(["key"])",
      R"("key")",
      "",
      R"({"key":tru})",
      R"({"key":nul})",
  };
  for (const std::string& body : bodies) {
    CAPTURE(body);
    CHECK_FALSE(ReadPlainPutBody(body).has_value());
  }
}

}  // namespace
