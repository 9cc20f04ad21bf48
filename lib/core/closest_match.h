// "Did you mean": the known word a mistyped one was probably meant to be,
// for config keys, environment variables, flags and subcommands alike.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kvctl::core {

// The closest of `candidates` to `word` by edit distance, within a couple
// of typos (a sixth of the word's length, at least 2), or "": a wild guess
// is worse than none.
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace kvctl::core
