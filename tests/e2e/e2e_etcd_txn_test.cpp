// etcd's kv/txn in full (SPEC §7), proven against Debian's etcd 3.4 by the
// differential harness (etcd_differential.h): compares over ranges, ranges
// read and deleted with any end inside a txn, nested txns (both branches,
// two levels, reads of earlier writes, compares judged before any op,
// duplicate keys), and puts with ignore_value / ignore_lease and their
// errors. The same steps go to etcd and to kvctl on each backend, the
// answers compared field by field.
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/etcd_differential.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {
namespace {

using nlohmann::json;

const std::string kFromKeyOn(1, '\0');

json Put(const std::string& key, const std::string& value, json extra = json::object()) {
  json put = {{"key", B64(key)}};
  if (!value.empty()) put["value"] = B64(value);
  put.update(extra);
  return {{"request_put", put}};
}

// A range request or delete over [key, end) ("": the key alone).
json Range(const std::string& key, const std::string& end = "", json extra = json::object()) {
  json range = {{"key", B64(key)}};
  if (!end.empty()) range["range_end"] = B64(end);
  range.update(extra);
  return {{"request_range", range}};
}

json Delete(const std::string& key, const std::string& end = "", json extra = json::object()) {
  json del = {{"key", B64(key)}};
  if (!end.empty()) del["range_end"] = B64(end);
  del.update(extra);
  return {{"request_delete_range", del}};
}

// A compare of `target` (its field `field` holding `value`) over [key, end).
json Cmp(const std::string& key, const std::string& target, const std::string& result, const std::string& field,
         json value, const std::string& end = "") {
  json c = {{"key", B64(key)}, {"target", target}, {"result", result}, {field, value}};
  if (!end.empty()) c["range_end"] = B64(end);
  return c;
}

json TxnBody(json compare, json success, json failure = json::array()) {
  json t = json::object();
  if (!compare.empty()) t["compare"] = std::move(compare);
  if (!success.empty()) t["success"] = std::move(success);
  if (!failure.empty()) t["failure"] = std::move(failure);
  return t;
}

json Nested(json compare, json success, json failure = json::array()) {
  return {{"request_txn", TxnBody(std::move(compare), std::move(success), std::move(failure))}};
}

Step TxnStep(json compare, json success, json failure = json::array()) {
  return {"/v3/kv/txn", TxnBody(std::move(compare), std::move(success), std::move(failure)).dump()};
}

Step PutStep(const std::string& key, const std::string& value) {
  return {"/v3/kv/put", json{{"key", B64(key)}, {"value", B64(value)}}.dump()};
}

std::vector<Step> Steps() {
  std::vector<Step> s = {
      PutStep("a", "1"), PutStep("b", "2"), PutStep("c", "3"), PutStep("d", "4"),  // revisions 2..5
      PutStep("b", "22"),                                                          // b: version 2, mod 6
  };
  auto add = [&](Step step) { s.push_back(std::move(step)); };

  // Compares over a range: all hold, one fails, an empty range, to the end.
  add(TxnStep({Cmp("a", "VALUE", "GREATER", "value", B64("0"), "d")}, {Range("a", "d")}, {Range("d")}));
  add(TxnStep({Cmp("a", "VERSION", "EQUAL", "version", 1, "e")}, {Range("a")}, {Range("b", "c")}));
  add(TxnStep({Cmp("a", "MOD", "LESS", "mod_revision", "@5", "e")}, {Range("a")}, {Range("a", "e", {{"keys_only", true}})}));
  add(TxnStep({Cmp("a", "CREATE", "GREATER", "create_revision", 0, "e")}, {Range("c")}));
  add(TxnStep({Cmp("x", "CREATE", "EQUAL", "create_revision", 0, "y")}, {Range("x")}, {Range("a")}));
  add(TxnStep({Cmp("x", "VALUE", "EQUAL", "value", B64(""), "y")}, {Range("x")}, {Range("a")}));
  add(TxnStep({Cmp("x", "VERSION", "EQUAL", "version", 0, "y")}, {Range("x")}, {Range("a")}));
  add(TxnStep({Cmp("b", "VERSION", "GREATER", "version", 0, kFromKeyOn)}, {Range("b", kFromKeyOn)}));
  add(TxnStep({Cmp("b", "VERSION", "EQUAL", "version", 2, kFromKeyOn)}, {}, {Range("b", kFromKeyOn)}));
  add(TxnStep({Cmp("c", "LEASE", "EQUAL", "lease", 0, "a")}, {Range("c", "a")}));  // an end below the key

  // Ranges inside a txn with any end, and kv/range's fields.
  add(TxnStep({}, {Range("b", "d"), Range("a", kFromKeyOn, {{"limit", 2}, {"sort_order", "DESCEND"}}),
                   Range(kFromKeyOn, kFromKeyOn, {{"count_only", true}}),
                   Range("a", "e", {{"sort_target", "MOD"}, {"sort_order", "DESCEND"}, {"limit", 2}}),
                   Range("a", "e", {{"min_mod_revision", "@4"}, {"max_mod_revision", "@5"}}),
                   Range("a", "e", {{"min_create_revision", "@4"}, {"keys_only", true}}),
                   Range("a", "e", {{"sort_target", "VALUE"}}), Range("d", "b")}));
  // A delete of [b, c) and of [c, "\0") with prev_kv, reads before and after.
  add(PutStep("e", "5"));
  add(PutStep("f", "6"));
  add(TxnStep({}, {Range("a", "z"), Delete("b", "c", {{"prev_kv", true}}), Range("a", "z"),
                   Delete("e", kFromKeyOn, {{"prev_kv", true}}), Range("a", kFromKeyOn), Delete("m", "n")}));
  add(TxnStep({}, {Delete("x", "y"), Range("a", "z")}));  // deletes nothing: no revision
  // Two deletes over one key: etcd takes it, the second deletes nothing.
  add(TxnStep({}, {Delete("c", "e"), Delete("d"), Range("a", "z")}));
  add(PutStep("b", "2"));
  add(PutStep("c", "3"));

  // Nested txns: both branches, two levels, reads seeing earlier writes.
  add(TxnStep({Cmp("a", "VALUE", "EQUAL", "value", B64("1"))},
              {Put("n1", "x"),
               Nested({Cmp("b", "VALUE", "EQUAL", "value", B64("2"))}, {Put("n2", "y"), Range("n", "o")},
                      {Put("n3", "z")}),
               Range("n", "o")},
              {Put("never", "1")}));
  add(TxnStep({Cmp("a", "VALUE", "EQUAL", "value", B64("9"))}, {Put("never", "1")},
              {Nested({Cmp("n1", "VERSION", "EQUAL", "version", 1)},
                      {Nested({Cmp("n2", "VALUE", "EQUAL", "value", B64("nope"))}, {Put("never", "2")},
                              {Put("n4", "w", {{"prev_kv", true}}), Delete("n1", {}, {{"prev_kv", true}}),
                               Range("n", "o", {{"count_only", true}})}),
                       Range("n4")}),
               Nested({}, {}), Range("n", "o")}));
  // Every compare of the tree is judged before any op runs: the nested
  // compare does not see the put before it.
  add(TxnStep({}, {Put("z", "1"), Nested({Cmp("z", "VALUE", "EQUAL", "value", B64("1"))}, {Put("zz", "yes")},
                                         {Put("zz", "no")}),
                   Range("z", kFromKeyOn)}));
  // A nested txn's range compare.
  add(TxnStep({}, {Nested({Cmp("n", "VERSION", "GREATER", "version", 0, "o")}, {Range("n", "o", {{"keys_only", true}})},
                          {Range("a")})}));
  // Read-only nested txns.
  add(TxnStep({Cmp("zz", "VALUE", "EQUAL", "value", B64("no"))}, {Nested({}, {Range("zz")}), Range("z")}));

  // Keys written twice: refused, whatever the branch taken; a put in both
  // branches of one nested txn, and overlapping deletes, are taken.
  add(TxnStep({}, {Put("k", "1"), Nested({}, {Put("k", "2")})}));
  add(TxnStep({}, {Nested({}, {Put("k", "2")}), Put("k", "1")}));
  add(TxnStep({}, {Delete("a", "c"), Nested({}, {}, {Put("b", "2")})}));
  add(TxnStep({}, {Put("b", "3"), Nested({}, {Delete("a", "c")})}));
  add(TxnStep({}, {Nested({}, {Delete("a", "c")}), Nested({}, {Put("b", "3")})}));
  add(TxnStep({}, {Nested({}, {Put("b", "3")}, {Put("b", "4")}), Range("b")}));
  add(TxnStep({Cmp("a", "VALUE", "EQUAL", "value", B64("1"))}, {Put("k", "1")}, {Put("k", "2"), Put("k", "3")}));
  add(TxnStep({}, {Delete("a", "b"), Delete("a", "c", {{"prev_kv", true}}), Range("a", "c")}));
  add(PutStep("a", "1"));

  // ignore_value / ignore_lease: the key keeps its value or lease.
  add({"/v3/lease/grant", R"({"TTL":600})", 1});
  add({"/v3/kv/put", json{{"key", B64("l")}, {"value", B64("lv")}, {"lease", "$L1"}}.dump()});
  add(TxnStep({}, {Put("l", "new", {{"ignore_lease", true}, {"prev_kv", true}}), Range("l")}));
  add(TxnStep({}, {Put("l", "", {{"ignore_value", true}}), Range("l")}));
  // (Both flags at once keep everything: a put that changes nothing, which
  // takes no revision in kvctl; docs/etcd.md, "Differences".)
  add(TxnStep({}, {Put("l", "", {{"ignore_value", true}, {"lease", "$L1"}}), Range("l")}));
  add(TxnStep({}, {Nested({}, {Put("a", "", {{"ignore_value", true}, {"lease", "$L1"}})}), Range("a")}));
  // Their errors, in a branch and in a nested txn; nothing is written.
  add(TxnStep({}, {Put("ghost", "", {{"ignore_value", true}})}));
  add(TxnStep({}, {Put("a", "2"), Put("ghost", "", {{"ignore_lease", true}})}));
  add(TxnStep({Cmp("a", "VALUE", "EQUAL", "value", B64("nope"))}, {}, {Nested({}, {Put("ghost", "", {{"ignore_value", true}})})}));
  add(TxnStep({}, {Put("a", "v", {{"ignore_value", true}})}));
  add(TxnStep({}, {Nested({}, {Put("a", "", {{"ignore_lease", true}, {"lease", "$L1"}})})}));
  add(TxnStep({}, {Put("a", "2", {{"lease", "12345"}})}));
  add({"/v3/kv/range", json{{"key", B64("a")}, {"range_end", B64("z")}}.dump()});
  // A txn with no request inside, nested.
  add(TxnStep({}, {Nested({}, {json::object()})}));

  // Ranges at a past revision: what the keys held then (a=1 at 2, b=2 at
  // 3, c and d after, b=22 at 6), in either branch and nested, with
  // kv/range's fields, before and after the txn's own writes (which a past
  // read does not see); one not there yet refuses the txn, which writes
  // nothing; a negative revision reads now, after the txn's own writes.
  add(TxnStep({}, {Range("b", "", {{"revision", "@3"}}), Range("a", "e", {{"revision", "@4"}}),
                   Range("a", "e", {{"revision", "@6"}, {"keys_only", true}, {"sort_order", "DESCEND"}}),
                   Range("a", kFromKeyOn, {{"revision", "@5"}, {"count_only", true}})}));
  add(TxnStep({Cmp("a", "VALUE", "EQUAL", "value", B64("nope"))}, {Range("a", "", {{"revision", "@2"}})},
              {Nested({}, {Range("a", "e", {{"revision", "@3"}, {"limit", 1}})}), Range("b", "", {{"revision", "@6"}})}));
  add(TxnStep({}, {Put("b", "x"), Range("b", "", {{"revision", "@6"}}), Range("b"), Delete("c"),
                   Range("c", "", {{"revision", "@4"}, {"prev_kv", true}})}));
  add(TxnStep({}, {Put("b", "never"), Range("a", "", {{"revision", "@999"}})}));
  add(TxnStep({}, {Put("a", "-1"), Range("a", "", {{"revision", -1}})}));
  add({"/v3/kv/range", json{{"key", B64("a")}, {"range_end", B64("z")}}.dump()});
  return s;
}

}  // namespace

TEST_CASE("etcd face: kv/txn answers as Debian's etcd 3.4 does (range compares, ranges, nested txns, ignore_value) on the file backend") {
  EtcdProcess etcd;
  const int etcd_port = FreePort();
  KvServer server({"--etcd-listen", Addr(etcd_port)});
  Side reference{etcd.port(), 1, {}, {}};
  Side kvctl{etcd_port, 0, {}, {}};
  CheckSameAnswers(reference, kvctl, Steps());
}

TEST_CASE("etcd face: kv/txn answers as Debian's etcd 3.4 does (range compares, ranges, nested txns, ignore_value) on PostgreSQL") {
  MigratedDb db;
  EtcdProcess etcd;
  const int etcd_port = FreePort();
  PgServer server(db.dsn, {"--etcd-listen", Addr(etcd_port)});
  Side reference{etcd.port(), 1, {}, {}};
  Side kvctl{etcd_port, 0, {}, {}};
  CheckSameAnswers(reference, kvctl, Steps());
}

}  // namespace kvctl::e2e
