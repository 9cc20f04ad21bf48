// Tests for lib/config/redact and Displayable: secrets never reach output
// (connection strings: tests/unit/pg_dsn_test.cpp).
#include "lib/config/redact.h"

#include <doctest/doctest.h>

#include "lib/config/settings.h"

namespace kvctl::config {
namespace {

TEST_CASE("a whole secret is masked to a fixed length, and an empty one stays empty") {
  CHECK(MaskWhole("tok-123456789012345678901234567890") == std::string(kMasked));
  CHECK(MaskWhole("x") == std::string(kMasked));
  CHECK(MaskWhole("") == "");
}

TEST_CASE("Displayable masks by the setting's Secret and leaves other settings alone") {
  const Setting* addr = FindSetting("client.addr");
  REQUIRE(addr != nullptr);
  CHECK(Displayable(*addr, "http://u:pw@h:1") == "http://u:pw@h:1");
  Setting token = *addr;
  token.secret = Secret::kValue;
  CHECK(Displayable(token, "abc") == std::string(kMasked));
  Setting dsn = *addr;
  dsn.secret = Secret::kPassword;
  // lib/config cannot parse a DSN: without lib/pg's masker it masks it whole.
  CHECK(Displayable(dsn, "postgres://u:pw@h/db") == std::string(kMasked));
  CHECK(Displayable(dsn, "") == "");
  CHECK(Displayable(dsn, "postgres://u:pw@h/db", [](std::string_view) { return std::string("masked by pg"); }) ==
        "masked by pg");
}

TEST_CASE("no setting in the table is secret without a reason: every secret's default is empty") {
  for (const Setting& s : Settings()) {
    if (s.secret == Secret::kValue) CHECK_MESSAGE(s.default_value.empty(), s.key);
  }
}

}  // namespace
}  // namespace kvctl::config
