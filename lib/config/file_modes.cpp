#include "lib/config/file_modes.h"

#include <sys/stat.h>

#include <fmt/format.h>

namespace kvctl::config {
namespace {

// "group and others", "others", ... for the bits that are too open.
std::string Who(mode_t too_open) {
  const bool group = (too_open & S_IRWXG) != 0;
  const bool others = (too_open & S_IRWXO) != 0;
  if (group && others) return "its group and other users";
  return group ? "its group" : "other users";
}

}  // namespace

core::Status CheckPrivateKeyMode(std::string_view setting, const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return core::Status::Ok();
  const mode_t mode = st.st_mode & 07777;
  const bool root_owned = st.st_uid == 0;
  const mode_t forbidden = root_owned ? (S_IWGRP | S_IXGRP | S_IRWXO) : (S_IRWXG | S_IRWXO);
  const mode_t too_open = mode & forbidden;
  if (too_open == 0) return core::Status::Ok();
  return core::Status::InvalidArgument(fmt::format(
      "{} = {} is open to {} (mode {:04o}); a private key must be readable by its owner only{} "
      "(chmod {} {})",
      setting, path, Who(too_open), mode, root_owned ? ", or also by its group when root owns it" : "",
      root_owned ? "640" : "600", path));
}

core::Status CheckNotWritableByOthers(std::string_view setting, const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return core::Status::Ok();
  const mode_t mode = st.st_mode & 07777;
  const mode_t too_open = mode & (S_IWGRP | S_IWOTH);
  if (too_open == 0) return core::Status::Ok();
  return core::Status::InvalidArgument(fmt::format(
      "{} = {} is writable by {} (mode {:04o}), who could give themselves any grant "
      "(chmod go-w {})",
      setting, path, Who(too_open), mode, path));
}

}  // namespace kvctl::config
