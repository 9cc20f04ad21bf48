// `kvctl watch KEY -- CMD ARGS...`: CMD runs once per event, to its end,
// before the next event is taken, with the event in its environment (as
// etcdctl's `watch -- cmd` sets ETCD_WATCH_*):
//   KVCTL_WATCH_REVISION  the event's revision
//   KVCTL_WATCH_OP        put or delete
//   KVCTL_WATCH_KEY       the key, when it holds no NUL byte (an environment
//                         string cannot)
//   KVCTL_WATCH_KEY_BASE64  the key's exact bytes, always
//   KVCTL_WATCH_VALUE     the value, when it holds no NUL byte and fits in
//                         one environment string (128 KiB); unset otherwise
// and the value, exactly, on its standard input, whatever it holds.
// stdout and stderr are kvctl's.
#pragma once

#include <string>
#include <vector>

#include "lib/client/watch_session.h"
#include "lib/core/status.h"

namespace kvctl::client {

// Runs `argv` for `event` and waits for it. Its exit status, or 128 + the
// signal that ended it; an error when it could not be started (the message
// names argv[0] and why).
core::Result<int> RunEventCommand(const std::vector<std::string>& argv, const WatchEvent& event);

}  // namespace kvctl::client
