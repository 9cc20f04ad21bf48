// Tests for lib/config/file_modes: private keys and auth files that other
// local users could read or change are refused, with the chmod that fixes it.
#include "lib/config/file_modes.h"

#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace kvctl::config {
namespace {

namespace fs = std::filesystem;

// A file with `mode` in a fresh temp dir, removed with it.
class ModedFile {
 public:
  explicit ModedFile(mode_t mode) {
    std::string pattern = (fs::temp_directory_path() / "kvctl-modes-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    dir_ = pattern;
    path_ = (dir_ / "file").string();
    std::ofstream(path_) << "-----BEGIN PRIVATE KEY-----\n";
    REQUIRE(::chmod(path_.c_str(), mode) == 0);
  }
  ~ModedFile() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  fs::path dir_;
  std::string path_;
};

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST_CASE("a private key readable by group or others is refused, naming it and the chmod") {
  for (mode_t mode : {0644, 0604, 0660, 0666, 0700 | 0004}) {
    CAPTURE(mode);
    ModedFile key(mode);
    const core::Status st = CheckPrivateKeyMode("tls.key", key.path());
    REQUIRE_FALSE(st.ok());
    CHECK(st.IsInvalidArgument());
    CHECK(Contains(st.message(), "tls.key = " + key.path()));
    CHECK(Contains(st.message(), "(chmod "));
    CHECK(Contains(st.message(), key.path() + ")"));
  }
  ModedFile world(0644);
  const std::string why = CheckPrivateKeyMode("client.key", world.path()).message();
  CHECK(Contains(why, "other users (mode 0644)"));
}

TEST_CASE("a private key for its owner only is accepted, so is no key, or one that is not there") {
  for (mode_t mode : {0600, 0400}) {
    ModedFile key(mode);
    CHECK(CheckPrivateKeyMode("tls.key", key.path()).ok());
  }
  CHECK(CheckPrivateKeyMode("tls.key", "").ok());
  // Reading it reports the missing file, with the reason.
  CHECK(CheckPrivateKeyMode("tls.key", "/nonexistent/kvctl/key.pem").ok());
}

TEST_CASE("a key owned by root may be read by its group (0640), as PostgreSQL allows, others never") {
  ModedFile key(0640);
  if (::geteuid() == 0) {
    CHECK(CheckPrivateKeyMode("tls.key", key.path()).ok());
    ModedFile group_writable(0660);
    CHECK(Contains(CheckPrivateKeyMode("tls.key", group_writable.path()).message(), "(chmod 640 "));
  } else {
    // Not root's: the group may not read it either.
    CHECK(Contains(CheckPrivateKeyMode("tls.key", key.path()).message(), "its group (mode 0640)"));
    CHECK(Contains(CheckPrivateKeyMode("tls.key", key.path()).message(), "(chmod 600 "));
  }
}

TEST_CASE("an auth file writable by group or others is refused, readable is fine") {
  for (mode_t mode : {0666, 0664, 0646, 0620}) {
    CAPTURE(mode);
    ModedFile file(mode);
    const core::Status st = CheckNotWritableByOthers("auth.file", file.path());
    REQUIRE_FALSE(st.ok());
    CHECK(st.IsInvalidArgument());
    CHECK(Contains(st.message(), "auth.file = " + file.path() + " is writable by"));
    CHECK(Contains(st.message(), "(chmod go-w " + file.path() + ")"));
  }
  for (mode_t mode : {0644, 0600, 0640, 0444}) {
    ModedFile file(mode);
    CHECK(CheckNotWritableByOthers("auth.file", file.path()).ok());
  }
}

}  // namespace
}  // namespace kvctl::config
