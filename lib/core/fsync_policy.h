// When the log's bytes are forced to stable storage (SPEC §1).
#pragma once

namespace kvctl::core {

enum class FsyncPolicy {
  kAlways,    // a write is acknowledged only after fdatasync covers it (default)
  kInterval,  // acknowledged after write(2); synced every fsync_interval
  kNever,     // acknowledged after write(2); the OS decides when to flush
};

}  // namespace kvctl::core
