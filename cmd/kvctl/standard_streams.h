// Which of standard input, output and error were closed when kvctl
// started. A constructor that runs before every library's initializers
// records it and opens /dev/null in each closed one's place: gRPC's
// initializers open an eventfd as the process loads, which would otherwise
// take a closed stream's number and be read as the value of `kvctl put`,
// or be written the output of `kvctl get`.
#pragma once

namespace kvctl::cmd {

// fd is 0, 1 or 2; any other is false.
bool StandardStreamWasClosed(int fd);

}  // namespace kvctl::cmd
