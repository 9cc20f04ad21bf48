// kv/put's common body read without a JSON tree: the etcd face's plain put
// spent a tenth of the server's CPU samples (perf) building and walking
// nlohmann's tree of `{"key":"...","value":"..."}` (its lexer copies a
// base64 value a byte at a time); this reader takes 1.5 %.
//
// Only a body this reader is sure of is read here: one JSON object, ASCII
// only, whose members are strings without escapes, integers, true, false
// or null, no name twice, each of put's fields of the type etcd takes
// (base64 for key and value, an integer or a string of digits for lease, a
// bool for the flags). Anything else (nesting, escapes, fractions, a wrong
// type, bad base64, text after the object) is nullopt, and the caller
// reads the body in full as before (EtcdApi::ParseBody), which answers
// exactly and words every refusal. Members put does not have are skipped,
// as the full reader skips them. tests/unit/etcd_put_body_test.cpp holds
// the two readers to the same asks.
#pragma once

#include <optional>
#include <string_view>

#include "lib/etcd/kv_ops.h"

namespace kvctl::server::etcd {

std::optional<PutAsk> ReadPlainPutBody(std::string_view body);

}  // namespace kvctl::server::etcd
