#include "lib/bench/chunked_lines.h"

#include <cstring>

namespace kvctl::bench {

ChunkedLines::State ChunkedLines::Feed(std::string_view data,
                                       const std::function<void(std::string_view)>& on_line) {
  size_t i = 0;
  while (i < data.size() && state_ == State::kOpen) {
    switch (part_) {
      case Part::kSize: {
        const char c = data[i++];
        if (c != '\n') {
          if (size_line_.size() >= 32) return state_ = State::kBad;
          size_line_.push_back(c);
          break;
        }
        if (!size_line_.empty() && size_line_.back() == '\r') size_line_.pop_back();
        // Chunk extensions (";name=value") are allowed and ignored.
        const std::string_view hex = std::string_view(size_line_).substr(0, size_line_.find(';'));
        if (hex.empty() || hex.size() > 15) return state_ = State::kBad;
        size_t n = 0;
        for (const char h : hex) {
          int d;
          if (h >= '0' && h <= '9') {
            d = h - '0';
          } else if (h >= 'a' && h <= 'f') {
            d = h - 'a' + 10;
          } else if (h >= 'A' && h <= 'F') {
            d = h - 'A' + 10;
          } else {
            return state_ = State::kBad;
          }
          n = n * 16 + static_cast<size_t>(d);
        }
        size_line_.clear();
        left_ = n;
        part_ = n == 0 ? Part::kTrailer : Part::kData;
        break;
      }
      case Part::kData: {
        const size_t take = std::min(left_, data.size() - i);
        std::string_view piece = data.substr(i, take);
        i += take;
        left_ -= take;
        // Whole lines straight from the input; only a line cut by the end
        // of a feed or of a chunk is copied.
        for (size_t nl; (nl = piece.find('\n')) != std::string_view::npos;) {
          if (line_.empty()) {
            on_line(piece.substr(0, nl));
          } else {
            line_.append(piece.substr(0, nl));
            on_line(line_);
            line_.clear();
          }
          piece.remove_prefix(nl + 1);
        }
        if (line_.size() + piece.size() > max_line_) return state_ = State::kBad;
        line_.append(piece);
        if (left_ == 0) part_ = Part::kDataEnd;
        break;
      }
      case Part::kDataEnd: {
        // The CRLF after a chunk's data.
        const char c = data[i++];
        if (c == '\n') {
          part_ = Part::kSize;
        } else if (c != '\r') {
          return state_ = State::kBad;
        }
        break;
      }
      case Part::kTrailer: {
        // No trailers are sent: the empty line after "0" ends the body.
        const char c = data[i++];
        if (c == '\n') state_ = State::kEnded;
        break;
      }
    }
  }
  return state_;
}

}  // namespace kvctl::bench
