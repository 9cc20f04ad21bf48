// Tests for lib/config/redact and Displayable: secrets never reach output.
#include "lib/config/redact.h"

#include <doctest/doctest.h>

#include "lib/config/settings.h"

namespace kvctl::config {
namespace {

TEST_CASE("a URL's password is masked and the rest of the URL kept") {
  CHECK(MaskConnectionPassword("postgres://app:s3cret@db:5432/kv?sslmode=require") ==
        "postgres://app:********@db:5432/kv?sslmode=require");
  CHECK(MaskConnectionPassword("postgresql://app:p@ss:w@rd@db/kv") == "postgresql://app:********@db/kv");
  CHECK(MaskConnectionPassword("https://user:pw@host") == "https://user:********@host");
}

TEST_CASE("a URL without a password is unchanged") {
  CHECK(MaskConnectionPassword("postgres://app@db/kv") == "postgres://app@db/kv");
  CHECK(MaskConnectionPassword("postgres://db:5432/kv") == "postgres://db:5432/kv");
  CHECK(MaskConnectionPassword("http://127.0.0.1:7070") == "http://127.0.0.1:7070");
  CHECK(MaskConnectionPassword("") == "");
}

TEST_CASE("a password query parameter is masked") {
  CHECK(MaskConnectionPassword("postgresql://db/kv?user=app&password=s3cret&sslmode=disable") ==
        "postgresql://db/kv?user=app&password=********&sslmode=disable");
  CHECK(MaskConnectionPassword("postgresql:///kv?password=x") == "postgresql:///kv?password=********");
}

TEST_CASE("a key=value connection string has only its password masked") {
  CHECK(MaskConnectionPassword("host=db user=app password=s3cret dbname=kv") ==
        "host=db user=app password=******** dbname=kv");
  CHECK(MaskConnectionPassword("host=db password = 'it\\'s secret' port=5432") ==
        "host=db password=******** port=5432");
  CHECK(MaskConnectionPassword("host=db dbname=kv") == "host=db dbname=kv");
}

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
  CHECK(Displayable(dsn, "postgres://u:pw@h/db") == "postgres://u:********@h/db");
}

TEST_CASE("no setting in the table is secret without a reason: every secret's default is empty") {
  for (const Setting& s : Settings()) {
    if (s.secret == Secret::kValue) CHECK_MESSAGE(s.default_value.empty(), s.key);
  }
}

}  // namespace
}  // namespace kvctl::config
