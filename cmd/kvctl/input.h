// Input a command reads whole (a value for put, a transaction for txn), from
// standard input or a file, bounded (SPEC §8): never more than its limit is
// held, so `kvctl put k < /dev/zero` ends.
#pragma once

#include <functional>
#include <string>

#include "lib/core/status.h"

namespace kvctl::cmd {

struct BoundedInput {
  std::string what;  // names the input in messages: "--file PATH", "standard input"
  size_t limit = 0;  // the most bytes it may hold
  // The hints of a failure to stat it, and to read it.
  std::string unreadable_hint;
  std::string read_failed_hint;
  // The error when it is over `limit`; `size` is "is N bytes" or "is more
  // than N bytes".
  std::function<core::Status(const std::string& size)> too_large;
};

// Reads all of `fd`, but never more than limit + 1 bytes; a regular file's
// size is checked before it is read. Every failure here is the input's
// (InvalidArgument: exit 2).
core::Result<std::string> ReadBounded(int fd, const BoundedInput& input);

}  // namespace kvctl::cmd
