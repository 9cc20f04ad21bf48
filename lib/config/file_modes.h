// Files that must not be open to other local users, refused before they
// are used, as ssh and PostgreSQL refuse theirs: a private key others can
// read is no longer private, and an auth file others can write lets any
// local user give themselves every grant.
//
// Modes are judged on the file a path leads to (symbolic links followed,
// as when it is read). A path that cannot be examined passes here: reading
// it reports the problem. Pure checks; touch nothing.
#pragma once

#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace kvctl::config {

// A private key (tls.key, client.key): no access for group or others
// (0600 or less), except that a key owned by root may be read by its group
// (0640 or less), so a group such as Debian's ssl-cert can share it, as
// PostgreSQL allows. InvalidArgument naming the setting, the file, its mode
// and the chmod that fixes it. `path` "" passes.
core::Status CheckPrivateKeyMode(std::string_view setting, const std::string& path);

// A file that says who may do what (auth.file): not writable by group or
// others. InvalidArgument as above. `path` "" passes.
core::Status CheckNotWritableByOthers(std::string_view setting, const std::string& path);

}  // namespace kvctl::config
