#include "lib/server/data_dir_access.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace kvctl::server {
namespace {

constexpr std::string_view kSetting = "storage.data_dir (--data-dir)";

std::string WhatItIs(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISFIFO(mode)) return "a named pipe";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a directory";
}

// Who the server runs as: the operator has to fix the directory for this
// user, not for the one reading the message.
std::string User() { return fmt::format("uid {} gid {}", ::geteuid(), ::getegid()); }

// faccessat with AT_EACCESS: the effective ids, which are what open(2) uses.
int Access(const std::string& path, int mode) { return ::faccessat(AT_FDCWD, path.c_str(), mode, AT_EACCESS); }

core::Status NotWritable(const std::string& dir, const std::string& path, int err) {
  if (err == EROFS) {
    return core::Status::InvalidArgument(fmt::format(
        "{} = {}: {} is on a read-only file system (point {} at a writable place)", kSetting, dir, path,
        kSetting));
  }
  return core::Status::InvalidArgument(fmt::format(
      "{} = {}: {} is not writable by {}, the user kvctl runs as (give it to that user, e.g. "
      "chown -R kvctl: {}, or choose another directory)",
      kSetting, dir, path, User(), path));
}

}  // namespace

core::Status CheckDataDirAccess(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return core::Status::InvalidArgument(fmt::format(
          "{} = {} is {}, not a directory (point {} at a directory, or move the file away)", kSetting, dir,
          WhatItIs(st.st_mode), kSetting));
    }
    // Listing (r), creating and renaming files (w) and reaching them (x).
    if (Access(dir, R_OK | W_OK | X_OK) != 0) return NotWritable(dir, dir, errno);
    return core::Status::Ok();
  }
  if (errno != ENOENT) {
    return core::Status::InvalidArgument(fmt::format("{} = {} cannot be reached by {}, the user kvctl runs as: {} "
                                                     "(check the permissions of its parent directories)",
                                                     kSetting, dir, User(), std::strerror(errno)));
  }
  // It will be created, with any missing parents: the nearest one that
  // exists must let this user make a directory in it.
  std::filesystem::path ancestor = std::filesystem::absolute(dir).lexically_normal();
  while (ancestor.has_relative_path()) {
    ancestor = ancestor.parent_path();
    if (::stat(ancestor.c_str(), &st) == 0) break;
    if (errno != ENOENT) {
      return core::Status::InvalidArgument(fmt::format("{} = {} cannot be created: {}: {}", kSetting, dir,
                                                       ancestor.string(), std::strerror(errno)));
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    return core::Status::InvalidArgument(fmt::format(
        "{} = {} cannot be created: {} is {}, not a directory (point {} at a directory)", kSetting, dir,
        ancestor.string(), WhatItIs(st.st_mode), kSetting));
  }
  if (Access(ancestor.string(), W_OK | X_OK) != 0) return NotWritable(dir, ancestor.string(), errno);
  return core::Status::Ok();
}

}  // namespace kvctl::server
