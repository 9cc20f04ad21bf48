// Tests for lib/access/grants.h: what a grant allows, by prefix and
// operation.
#include "lib/access/grants.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace kvctl::access {
namespace {

TEST_SUITE_BEGIN("grants");

TEST_CASE("a grant covers exactly the keys under its prefix, for its operations") {
  Principal p{"deploy", {Grant{"app/", true, true, false}, Grant{"shared/", true, false, false}}};
  CHECK(p.Permits(Op::kRead, "app/db/url"));
  CHECK(p.Permits(Op::kWrite, "app/"));
  CHECK(p.Permits(Op::kRead, "shared/x"));
  CHECK_FALSE(p.Permits(Op::kWrite, "shared/x"));
  CHECK_FALSE(p.Permits(Op::kRead, "app"));       // shorter than the prefix
  CHECK_FALSE(p.Permits(Op::kRead, "apps/x"));    // a prefix is bytes, not a path segment
  CHECK_FALSE(p.Permits(Op::kRead, "other/app/x"));
  CHECK_FALSE(p.Permits(Op::kAdmin, ""));
  Principal everything{"root", {Grant{"", true, true, true}}};
  CHECK(everything.Permits(Op::kRead, std::string("\0binary", 7)));
  CHECK(everything.Permits(Op::kAdmin, ""));
}

TEST_CASE("the readable part of a listing is the disjoint granted prefixes within it, in key order") {
  Principal p{"p",
              {Grant{"b/", true, false, false}, Grant{"a/x/", true, false, false}, Grant{"a/", true, false, false},
               Grant{"c/", false, true, false}, Grant{"a/y", true, false, false}}};
  CHECK(p.ReadableWithin("") == std::vector<std::string>{"a/", "b/"});  // a/x/ and a/y lie inside a/
  CHECK(p.ReadableWithin("a/x/1") == std::vector<std::string>{"a/x/1"});  // all of it granted
  CHECK(p.ReadableWithin("a") == std::vector<std::string>{"a/"});
  CHECK(p.ReadableWithin("c/").empty());  // write-only
  CHECK(p.ReadableWithin("z").empty());
  CHECK(p.ReadsAnything());
  CHECK_FALSE(Principal{"w", {Grant{"", false, true, false}}}.ReadsAnything());
}

TEST_CASE("a principal writes anything when one of its grants writes") {
  CHECK(Principal{"w", {Grant{"r/", true, false, false}, Grant{"w/", false, true, false}}}.WritesAnything());
  CHECK_FALSE(Principal{"r", {Grant{"", true, false, true}}}.WritesAnything());
  CHECK_FALSE(Principal{"none", {}}.WritesAnything());
}

TEST_SUITE_END();

}  // namespace
}  // namespace kvctl::access
