// POST /v1/txn's body (SPEC §6) read into a core::TxnRequest.
//
// Two readers, one meaning. The plain reader takes the body as clients
// send it (no escapes in strings, plain whole numbers, each field once)
// in one pass, without building a JSON document: it is the hot path of
// every transaction. Anything else it declines, and the checked reader
// (nlohmann's parser, then the fields one by one) reads the body again
// and names what is wrong ("success[2].put.key: not base64"). So an answer
// never depends on which reader took the body: the plain reader only ever
// accepts what the checked one accepts, into the same request
// (tests/unit/txn_json_test.cpp compares them).
#pragma once

#include <cstddef>
#include <string_view>

#include "lib/core/status.h"
#include "lib/core/txn.h"

namespace kvctl::server {

// Reads `body` into `txn` (empty on entry). InvalidArgument naming the
// place on a body that is not the SPEC's shape; the limits (ValidateTxn)
// are the caller's to check. `max_ops` (limits.max_txn_ops) only bounds
// the plain reader's work: a body over it is left to the checked reader,
// and ValidateTxn then refuses it.
core::Status ReadTxnBody(std::string_view body, size_t max_ops, core::TxnRequest* txn);

namespace txn_json {

// The two readers ReadTxnBody is made of, for the tests.
// True when the plain reader took the body (into `txn`); false when it
// declined it, leaving `txn` in any state.
bool ReadPlain(std::string_view body, size_t max_ops, core::TxnRequest* txn);
core::Status ReadChecked(std::string_view body, core::TxnRequest* txn);

}  // namespace txn_json
}  // namespace kvctl::server
