// When the log's bytes are forced to stable storage (SPEC §1).
#pragma once

namespace kvctl::core {

enum class FsyncPolicy {
  kAlways,    // a write is acknowledged only after fdatasync covers it (default)
  kInterval,  // acknowledged after write(2); synced every fsync_interval
  kNever,     // acknowledged after write(2); the OS decides when to flush
};

// "always", "interval", "never": the spelling of storage.fsync.
inline const char* FsyncPolicyName(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::kAlways: return "always";
    case FsyncPolicy::kInterval: return "interval";
    case FsyncPolicy::kNever: return "never";
  }
  return "always";
}

}  // namespace kvctl::core
