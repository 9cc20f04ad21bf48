// Tests for lib/core/forwarded_writes: the batch a server forwards to its
// database's writer and the outcomes it gets back, and what the decoder
// says about bytes that are not such a batch.
#include <doctest/doctest.h>

#include "lib/core/forwarded_writes.h"

namespace kvctl::core {
namespace {

std::vector<ForwardedWrite> SomeWrites() {
  ForwardedWrite put{true, "a/key", std::string("v\0alue", 6), {}, 7};
  ForwardedWrite create{true, std::string(300, 'k'), std::string(70000, 'x'), {}, 0};
  create.pre.create_only = true;
  ForwardedWrite cas{true, "b", "", {}, 0};
  cas.pre.if_revision = 123456789012ULL;
  ForwardedWrite del{false, "c", "", {}, 0};
  del.pre.must_exist = true;
  del.pre.if_revision = 0;
  return {put, create, cas, del};
}

}  // namespace

TEST_CASE("forwarded writes: a batch decodes to what was encoded, conditions and leases included") {
  const std::vector<ForwardedWrite> writes = SomeWrites();
  const std::string body = EncodeForwardedWrites(writes);
  size_t size = 1;
  for (const auto& w : writes) size += ForwardedWriteSize(w);
  CHECK(body.size() <= size + 10);  // the count's varint
  auto back = DecodeForwardedWrites(body);
  REQUIRE(back.has_value());
  REQUIRE(back->size() == writes.size());
  for (size_t i = 0; i < writes.size(); ++i) {
    CHECK((*back)[i].is_put == writes[i].is_put);
    CHECK((*back)[i].key == writes[i].key);
    CHECK((*back)[i].value == writes[i].value);
    CHECK((*back)[i].lease == writes[i].lease);
    CHECK((*back)[i].pre.create_only == writes[i].pre.create_only);
    CHECK((*back)[i].pre.must_exist == writes[i].pre.must_exist);
    CHECK((*back)[i].pre.if_revision == writes[i].pre.if_revision);
  }
  CHECK(DecodeForwardedWrites(EncodeForwardedWrites({}))->empty());
}

TEST_CASE("forwarded outcomes: status, revision and flags come back as sent") {
  const std::vector<ForwardedOutcome> outcomes = {
      {Status::Ok(), 41, true, true},
      {Status::FailedPrecondition("key is at revision 40, not 39"), 40, true, false},
      {Status::Unavailable("writes are paused"), 0, false, false},
  };
  auto back = DecodeForwardedOutcomes(EncodeForwardedOutcomes(outcomes));
  REQUIRE(back.has_value());
  REQUIRE(back->size() == 3);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    CHECK((*back)[i].status.code() == outcomes[i].status.code());
    CHECK((*back)[i].status.message() == outcomes[i].status.message());
    CHECK((*back)[i].revision == outcomes[i].revision);
    CHECK((*back)[i].existed == outcomes[i].existed);
    CHECK((*back)[i].changed == outcomes[i].changed);
  }
}

TEST_CASE("forwarded writes and outcomes: a cut, padded, foreign or forged body is refused with what is wrong") {
  const std::string body = EncodeForwardedWrites(SomeWrites());
  // Every cut short of the whole is refused, never read past its end.
  for (size_t n = 0; n < body.size(); n += (n < 64 ? 1 : 997)) {
    auto cut = DecodeForwardedWrites(body.substr(0, n));
    REQUIRE_FALSE(cut.has_value());
    CHECK(cut.error().IsInvalidArgument());
  }
  auto padded = DecodeForwardedWrites(body + "x");
  REQUIRE_FALSE(padded.has_value());
  CHECK(padded.error().message().find("cut short or damaged") != std::string::npos);

  std::string other_version = body;
  other_version[0] = 9;
  auto foreign = DecodeForwardedWrites(other_version);
  REQUIRE_FALSE(foreign.has_value());
  CHECK(foreign.error().message().find("format version 9") != std::string::npos);
  CHECK(foreign.error().message().find("same kvctl version") != std::string::npos);

  // A count far beyond what the body could hold is refused before anything is allocated.
  auto huge = DecodeForwardedWrites(std::string("\x01\xff\xff\xff\xff\x0f", 6));
  REQUIRE_FALSE(huge.has_value());
  // Unknown flags on a write, an unknown status code on an outcome.
  auto flags = DecodeForwardedWrites(std::string("\x01\x01\x40\x00\x00\x00", 6));
  REQUIRE_FALSE(flags.has_value());
  CHECK(flags.error().message().find("unknown flags 0x40") != std::string::npos);
  auto code = DecodeForwardedOutcomes(std::string("\x01\x01\x63\x00\x00\x00", 6));
  REQUIRE_FALSE(code.has_value());
  CHECK(code.error().message().find("unknown status code 99") != std::string::npos);
  CHECK_FALSE(DecodeForwardedOutcomes(EncodeForwardedOutcomes({{Status::Ok(), 1, true, true}}).substr(0, 3)).has_value());
}

}  // namespace kvctl::core
