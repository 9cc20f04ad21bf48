// Whether `kvctl serve` can use its data dir, asked before anything is
// created or opened there: a path that names a regular file, or a directory
// the server's user cannot write, is a configuration error (exit 2) with
// the fix in the message, not an I/O error halfway through recovery.
#pragma once

#include <string>

#include "lib/core/status.h"

namespace kvctl::server {

// Ok when `dir` is a directory this process may list and write, or does not
// exist yet and its nearest existing ancestor is a directory it may write
// (so it can be created). Otherwise InvalidArgument naming the path, what
// is wrong and what to do. Judged with the effective user and group, as the
// server will use them; touches nothing.
core::Status CheckDataDirAccess(const std::string& dir);

}  // namespace kvctl::server
