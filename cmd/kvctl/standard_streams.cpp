#include "cmd/kvctl/standard_streams.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace kvctl::cmd {

namespace {

bool closed_at_start[3] = {false, false, false};

// Priority 101, the first the toolchain leaves to programs: before the
// statically linked libraries' initializers (default priority), which
// the linker orders after it.
__attribute__((constructor(101))) void GuardStandardStreams() {
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    closed_at_start[fd] = true;
    // open() takes the lowest free number: this one, as the lower ones are open.
    const int null_fd = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (null_fd >= 0 && null_fd != fd) ::close(null_fd);
  }
}

}  // namespace

bool StandardStreamWasClosed(int fd) { return fd >= 0 && fd < 3 && closed_at_start[fd]; }

}  // namespace kvctl::cmd
