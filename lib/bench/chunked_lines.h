// Turns the body of a chunked HTTP/1.1 answer, fed in whatever pieces the
// socket gives, into the lines it carries: what a watch stream (SPEC §6,
// JSON lines over chunked transfer) looks like to `kvctl bench --watchers`.
// A line may span chunks and a chunk may hold many lines; the partial line
// kept between feeds is bounded, so a peer cannot grow it without end.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace kvctl::bench {

class ChunkedLines {
 public:
  enum class State { kOpen, kEnded, kBad };

  explicit ChunkedLines(size_t max_line = 1 << 20) : max_line_(max_line) {}

  // Feeds body bytes (after the head); calls `on_line` with each complete
  // line, without its '\n'. kEnded after the terminating chunk, kBad on a
  // malformed size line or a line longer than max_line.
  State Feed(std::string_view data, const std::function<void(std::string_view)>& on_line);
  State state() const { return state_; }

 private:
  enum class Part { kSize, kData, kDataEnd, kTrailer };

  size_t max_line_;
  State state_ = State::kOpen;
  Part part_ = Part::kSize;
  std::string size_line_;  // the chunk-size line so far
  size_t left_ = 0;        // data bytes left in this chunk
  std::string line_;       // the partial line so far
};

}  // namespace kvctl::bench
