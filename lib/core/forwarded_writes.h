// A batch of puts and deletes as one server forwards it to the server that
// commits for all (the PostgreSQL backend's writer, pg_store.h), and the
// outcomes it answers: a small binary format, varints and length-prefixed
// bytes, one version byte first. Both ends are kvctl servers of the same
// database; the decoder still trusts nothing it reads (a bad length, a
// truncated body, an unknown code) and says what was wrong.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/kv_store.h"
#include "lib/core/status.h"

namespace kvctl::core {

// Where a peer sends them on the writer's native listener, and the header
// that carries the writer's token (kv_writer.token).
inline constexpr std::string_view kPeerWritesPath = "/v1/peer/writes";
inline constexpr std::string_view kPeerTokenHeader = "Kvctl-Peer-Token";

struct ForwardedWrite {
  bool is_put = true;
  std::string key;
  std::string value;  // a put's
  Precondition pre;
  uint64_t lease = 0;  // a put's
};

struct ForwardedOutcome {
  Status status;          // what the write came to (its code and message)
  uint64_t revision = 0;  // PutOutcome / DeleteOutcome's revision
  bool existed = false;   // the key existed before
  bool changed = false;   // a revision was taken
};

// The encoded size of one write: a batch is the sum plus one byte.
size_t ForwardedWriteSize(const ForwardedWrite& w);

std::string EncodeForwardedWrites(const std::vector<ForwardedWrite>& writes);
Result<std::vector<ForwardedWrite>> DecodeForwardedWrites(std::string_view body);

std::string EncodeForwardedOutcomes(const std::vector<ForwardedOutcome>& outcomes);
Result<std::vector<ForwardedOutcome>> DecodeForwardedOutcomes(std::string_view body);

// What became of a batch sent to the writer.
struct ForwardReply {
  enum class Kind {
    kAnswered,  // `body` holds the outcomes
    kNotSent,   // refused or never delivered: nothing of it was applied
    kUnknown,   // sent, and no answer came: it may have been applied
  };
  Kind kind = Kind::kNotSent;
  std::string body;
  std::string why;  // when not answered: what went wrong
};
// Sends an encoded batch to the writer's URL with its token and waits for
// the answer (the server's wiring provides one that speaks HTTP).
using ForwardTransport =
    std::function<ForwardReply(const std::string& url, const std::string& token, const std::string& body)>;

}  // namespace kvctl::core
