// POST /v1/txn's body readers (lib/server/txn_json.h): the plain reader
// takes what clients send, declines everything else, and never gives an
// answer the checked reader would not: the same request when both take a
// body, the checked reader's error when the plain one declines it.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "lib/core/base64.h"
#include "lib/server/txn_json.h"

namespace {

using namespace kvctl;
using core::TxnCompare;
using core::TxnOp;
using core::TxnRequest;
using server::ReadTxnBody;
using server::txn_json::ReadChecked;
using server::txn_json::ReadPlain;

constexpr size_t kMaxOps = 128;

std::string B64(std::string_view bytes) { return core::Base64Encode(bytes); }

bool Same(const TxnOp& a, const TxnOp& b) {
  return a.kind == b.kind && a.key == b.key && a.value == b.value && a.lease == b.lease && a.limit == b.limit;
}

bool Same(const std::vector<TxnOp>& a, const std::vector<TxnOp>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!Same(a[i], b[i])) return false;
  }
  return true;
}

bool Same(const TxnRequest& a, const TxnRequest& b) {
  if (a.compare.size() != b.compare.size()) return false;
  for (size_t i = 0; i < a.compare.size(); ++i) {
    const TxnCompare& x = a.compare[i];
    const TxnCompare& y = b.compare[i];
    if (x.key != y.key || x.target != y.target || x.op != y.op || x.value != y.value || x.number != y.number) {
      return false;
    }
  }
  return Same(a.success, b.success) && Same(a.failure, b.failure);
}

// Whether ReadTxnBody answers `body` exactly as the checked reader alone
// does; and when the plain reader takes it, that the checked one takes it
// too, into the same request.
void CheckAgrees(const std::string& body) {
  CAPTURE(body);
  TxnRequest checked;
  const core::Status want = ReadChecked(body, &checked);
  TxnRequest got;
  const core::Status s = ReadTxnBody(body, kMaxOps, &got);
  CHECK(s.ok() == want.ok());
  CHECK(s.message() == want.message());
  if (want.ok()) CHECK(Same(got, checked));
  TxnRequest plain;
  if (ReadPlain(body, kMaxOps, &plain)) {
    CHECK(want.ok());
    CHECK(Same(plain, checked));
  }
}

// Bodies as clients send them, one of every shape the SPEC has.
std::vector<std::string> PlainBodies() {
  const std::string a = B64("a"), k = B64("key/0000000000001"), v = B64(std::string(100, 'v'));
  return {
      "{}",
      R"({"compare":[],"success":[],"failure":[]})",
      R"({"compare":null,"success":null,"failure":null})",
      // kvctl bench's transaction: three puts, no compares.
      R"({"compare":[],"success":[{"put":{"key":")" + k + R"(","value":")" + v + R"("}},{"put":{"key":")" + k +
          R"(","value":")" + v + R"("}},{"put":{"key":")" + a + R"(","value":")" + v + R"("}}],"failure":[]})",
      R"({"compare":[{"key":")" + a + R"(","target":"value","op":"=","value":")" + v + R"("}],)"
      R"("success":[{"put":{"key":")" + a + R"(","value":"","lease":7}}],"failure":[{"get":{"key":")" + a + R"("}}]})",
      R"({"compare":[{"key":")" + a + R"(","target":"version","op":"!=","value":0},)"
      R"({"key":")" + a + R"(","target":"revision","op":"<","value":"18446744073709551615"},)"
      R"({"op":">","value":12,"target":"create_revision","key":")" + a + R"("},)"
      R"({"key":")" + a + R"(","target":"lease","op":"=","value":"0"}]})",
      R"({"success":[{"delete":{"key":")" + a + R"("}},{"delete":{"prefix":""}},{"get":{"prefix":")" + a +
          R"(","limit":"10000"}},{"get":{"limit":0,"prefix":")" + a + R"("}},{"put":{"lease":"18446744073709551615","key":")" +
          a + R"("}}]})",
      " \r\n\t{ \"failure\" : [ { \"get\" : { \"key\" : \"" + a + "\" } } ] , \"compare\" : [ ] } \n",
      R"({"compare":[{"key":")" + a + R"(","target":"value","op":">","value":""}],"success":[{"put":{"key":")" + a +
          R"(","value":"/+/+"}}]})",
  };
}

TEST_CASE("txn body: the plain reader takes every shape of the SPEC's body, into the request the checked reader reads") {
  for (const std::string& body : PlainBodies()) {
    CAPTURE(body);
    TxnRequest plain;
    CHECK(ReadPlain(body, kMaxOps, &plain));
    CheckAgrees(body);
  }
  TxnRequest txn;
  REQUIRE(ReadTxnBody(PlainBodies()[6], kMaxOps, &txn).ok());
  REQUIRE(txn.success.size() == 5);
  CHECK(txn.success[0].kind == TxnOp::Kind::kDelete);
  CHECK(txn.success[1].kind == TxnOp::Kind::kDeletePrefix);
  CHECK(txn.success[1].key.empty());
  CHECK(txn.success[2].kind == TxnOp::Kind::kGetPrefix);
  CHECK(txn.success[2].limit == 10000);
  CHECK(txn.success[4].kind == TxnOp::Kind::kPut);
  CHECK(txn.success[4].lease == UINT64_MAX);
}

TEST_CASE("txn body: the plain reader declines bad bodies, and the answer is the checked reader's error naming the place") {
  const std::string a = B64("a");
  // body, what the error says
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "the body is empty"},
      {"{", "not JSON"},
      {R"({"success":[{"put":{"key":"YQ==")", "not JSON"},
      {"\xEF\xBB\xBF{}x", "not JSON"},
      {"{}{}", "not JSON"},
      {"[1]", "not a JSON object"},
      {R"({"compare":{}})", "compare: not an array"},
      {R"({"compare":[1]})", "compare[0]: not an object"},
      {R"({"compare":[{"key":7,"target":"value","op":"=","value":""}]})", "compare[0].key: not a string"},
      {R"({"compare":[{"key":"YQ==","target":"Version","op":"=","value":1}]})", "compare[0].target: not one of"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"==","value":1}]})", "compare[0].op: not one of"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"="}]})", "compare[0].value: missing"},
      {R"({"compare":[{"key":"YQ==","target":"value","op":"=","value":1}]})", "compare[0].value: not a string"},
      // Numbers: only whole ones in 64 bits, as JSON numbers or decimal strings.
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":18446744073709551616}]})",
       "compare[0].value: not a whole number"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":"18446744073709551616"}]})",
       "compare[0].value: not a whole number"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":99999999999999999999999999999999}]})",
       "compare[0].value: not a whole number"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":1e3}]})", "compare[0].value: not a whole number"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":1.0}]})", "compare[0].value: not a whole number"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":-1}]})", "compare[0].value: not a whole number"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":"-1"}]})", "compare[0].value: not a whole number"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":"+1"}]})", "compare[0].value: not a whole number"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":" 1"}]})", "compare[0].value: not a whole number"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":007}]})", "not JSON"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":true}]})", "compare[0].value: not a whole number"},
      {R"({"success":[{"get":{"prefix":"YQ==","limit":10001}}]})", "success[0].get.limit: not a whole number from 0 to 10000"},
      {R"({"success":[{"get":{"key":"YQ==","limit":5}}]})", "success[0].get.limit: only with prefix"},
      {R"({"failure":[{"put":{"key":"YQ==","lease":"7x"}}]})", "failure[0].put.lease: not a whole number"},
      // Base64.
      {R"({"success":[{"put":{"key":"YQ="}}]})", "success[0].put.key: not base64"},
      {R"({"success":[{"put":{"key":"Y===","value":"YQ=="}}]})", "success[0].put.key: not base64"},
      {R"({"success":[{"put":{"key":"YQ==","value":"%%%%"}}]})", "success[0].put.value: not base64"},
      {R"({"success":[{"put":{"key":"YQ==","value":"YQ==YQ=="}}]})", "success[0].put.value: not base64"},
      {R"({"success":[{"delete":{"prefix":"-_-_"}}]})", "success[0].delete.prefix: not base64"},
      // Shapes and fields.
      {R"({"success":"x"})", "success: not an array of ops"},
      {R"({"success":[{}]})", "success[0]: is empty"},
      {R"({"success":[{"put":[]}]})", "success[0].put: not an object"},
      {R"({"success":[{"put":{"key":"YQ=="},"get":{"key":"YQ=="}}]})", "success[0]: has more than one"},
      {R"({"success":[{"put":{"key":"YQ==","valu":"YQ=="}}]})", "success[0].put.valu: unknown field"},
      {R"({"success":[{"pu":{"key":"YQ=="}}]})", "success[0].pu: unknown field"},
      {R"({"failure":[{"get":{"key":"YQ==","prefix":"YQ=="}}]})", "failure[0].get: has both key and prefix"},
      {R"({"success":[{"delete":{}}]})", "success[0].delete: has neither key nor prefix"},
      {R"({"success":[{"delete":{"key":"YQ==","limit":1}}]})", "success[0].delete.limit: unknown field"},
      {R"({"compare":[], "extra":1})", "extra: unknown field"},
      {R"({"compare":[],"success":[],"failure":[],"compare ":[]})", "compare : unknown field"},
  };
  for (const auto& [body, says] : bad) {
    CAPTURE(body);
    TxnRequest plain;
    CHECK_FALSE(ReadPlain(body, kMaxOps, &plain));
    TxnRequest txn;
    const core::Status s = ReadTxnBody(body, kMaxOps, &txn);
    CHECK_FALSE(s.ok());
    CHECK_MESSAGE(s.message().find(says) != std::string::npos, s.message());
    CheckAgrees(body);
  }
}

TEST_CASE("txn body: every cut of a body the plain reader takes is declined by it and refused") {
  for (const std::string& body : PlainBodies()) {
    const size_t end = body.find_last_not_of(" \r\n\t");
    for (size_t n = 0; n <= end; ++n) {
      const std::string cut = body.substr(0, n);
      CAPTURE(cut);
      TxnRequest plain;
      CHECK_FALSE(ReadPlain(cut, kMaxOps, &plain));
      TxnRequest txn;
      CHECK_FALSE(ReadTxnBody(cut, kMaxOps, &txn).ok());
    }
  }
}

TEST_CASE("txn body: what the plain reader does not read plainly is the checked reader's: escapes, UTF-8, a field twice") {
  TxnRequest txn;
  // An escaped character in a field name or base64 text reads as itself.
  const std::string escaped = R"({"success":[{"put":{"k\u0065y":"Y\u0051=="}}]})";
  CHECK_FALSE(ReadPlain(escaped, kMaxOps, &txn));
  txn = {};
  REQUIRE(ReadTxnBody(escaped, kMaxOps, &txn).ok());
  REQUIRE(txn.success.size() == 1);
  CHECK(txn.success[0].key == "a");
  // A field given twice: the last one counts, as nlohmann reads it.
  const std::string twice = R"({"success":[{"put":{"key":"YQ==","key":"Yg=="}}]})";
  txn = {};
  CHECK_FALSE(ReadPlain(twice, kMaxOps, &txn));
  txn = {};
  REQUIRE(ReadTxnBody(twice, kMaxOps, &txn).ok());
  REQUIRE(txn.success.size() == 1);
  CHECK(txn.success[0].key == "b");
  CheckAgrees(twice);
  CheckAgrees(R"({"success":[],"success":[{"get":{"key":"YQ=="}}]})");
  CheckAgrees(R"({"success":[{"put":{"key":"YQ=="},"put":{"key":"Yg=="}}]})");
  // Text that is not base64, whatever its bytes.
  CheckAgrees("{\"success\":[{\"put\":{\"key\":\"\xC3\xA9\xC3\xA9\"}}]}");
  CheckAgrees("{\"success\":[{\"put\":{\"key\":\"\xFF\xFF\xFF\xFF\"}}]}");
  CheckAgrees(std::string(R"({"success":[{"put":{"key":"YQ=)") + '\0' + R"("}}]})");
  CheckAgrees("{\"success\":[{\"put\":{\"key\":\"YQ=\t\"}}]}");
}

TEST_CASE("txn body: deep nesting where the shape has a value is declined without recursing, and refused by the checked reader") {
  const size_t depth = 100000;
  for (const auto& [head, tail] : {std::pair{std::string(R"({"compare":)"), std::string("}")},
                                   std::pair{std::string(R"({"success":[{"put":{"key":)"), std::string("}}]}")}}) {
    const std::string body = head + std::string(depth, '[') + std::string(depth, ']') + tail;
    TxnRequest plain;
    CHECK_FALSE(ReadPlain(body, kMaxOps, &plain));
    TxnRequest txn;
    const core::Status s = ReadTxnBody(body, kMaxOps, &txn);
    CHECK_FALSE(s.ok());
    CHECK_MESSAGE(s.message().find("not") != std::string::npos, s.message());
  }
  // Unclosed, as a peer may send it.
  const std::string open = R"({"success":[{"get":{"key":)" + std::string(depth, '{');
  TxnRequest txn;
  CHECK_FALSE(ReadPlain(open, kMaxOps, &txn));
  txn = {};
  CHECK(ReadTxnBody(open, kMaxOps, &txn).message().find("not JSON") != std::string::npos);
}

TEST_CASE("txn body: a body of more compares and ops than limits.max_txn_ops is the checked reader's") {
  std::string body = R"({"success":[)";
  for (int i = 0; i < 5; ++i) body += std::string(i > 0 ? "," : "") + R"({"get":{"key":"YQ=="}})";
  body += "]}";
  TxnRequest txn;
  CHECK(ReadPlain(body, 5, &txn));
  txn = {};
  CHECK_FALSE(ReadPlain(body, 4, &txn));
  txn = {};
  // The checked reader reads it all; ValidateTxn is what refuses it.
  REQUIRE(ReadTxnBody(body, 4, &txn).ok());
  CHECK(txn.success.size() == 5);
  CHECK_FALSE(core::ValidateTxn(txn, 4, 100, 100).ok());
}

TEST_CASE("txn body: a byte changed, dropped or added anywhere in a plain body never makes the two readers disagree") {
  const std::string swaps[] = {" ", "\"", "{", "}", "[", "]", ",", ":", "0", "9", "-", ".", "e", "A", "=",
                               "/", "\\", "n", "x", "\x80", ""};
  size_t taken = 0;
  for (const std::string& body : PlainBodies()) {
    for (size_t i = 0; i < body.size(); ++i) {
      for (const std::string& swap : swaps) {
        CheckAgrees(body.substr(0, i) + swap + body.substr(i + 1));  // changed, or dropped ("")
        std::string added = body.substr(0, i) + swap + body.substr(i);
        CheckAgrees(added);
        TxnRequest plain;
        taken += ReadPlain(added, kMaxOps, &plain) ? 1 : 0;
      }
    }
  }
  CHECK(taken > 0);  // spaces between tokens, digits in numbers: still plain
}

}  // namespace
