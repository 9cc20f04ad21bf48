#include "cmd/kvctl/input.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace kvctl::cmd {

core::Result<std::string> ReadBounded(int fd, const BoundedInput& in) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return core::Status::InvalidArgument(
        fmt::format("cannot read {}: {} ({})", in.what, std::strerror(errno), in.unreadable_hint));
  }
  if (S_ISDIR(st.st_mode)) return core::Status::InvalidArgument(fmt::format("{}: is a directory (give a file)", in.what));
  std::string data;
  if (S_ISREG(st.st_mode)) {
    const auto size = static_cast<uint64_t>(st.st_size);
    if (size > in.limit) return in.too_large(fmt::format("is {} bytes", size));
    data.reserve(size);
  }
  char buf[1 << 16];
  while (data.size() <= in.limit) {
    const ssize_t n = ::read(fd, buf, std::min(sizeof(buf), in.limit + 1 - data.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return core::Status::InvalidArgument(
          fmt::format("cannot read {}: {} ({})", in.what, std::strerror(errno), in.read_failed_hint));
    }
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
  return in.too_large(fmt::format("is more than {} bytes", in.limit));
}

}  // namespace kvctl::cmd
