#include "lib/core/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace kvctl::core {
namespace {

Status Errno(std::string_view what, const std::string& path, int err) {
  return Status::IOError(fmt::format("{} {}: {}", what, path, std::strerror(err)));
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size), allocated_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    while (!data.empty()) {
      // pwrite at the written end, not O_APPEND: the file may hold
      // preallocated zeros past it.
      ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(size_));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("write to", path_, errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
      size_ += static_cast<uint64_t>(n);
    }
    allocated_ = std::max(allocated_, size_);
    return Status::Ok();
  }

  Status Preallocate(uint64_t bytes) override {
    // Zeros really written, not fallocate(): ext4 marks fallocated blocks
    // unwritten, and converting them on the first write is itself a change
    // that the next fdatasync has to write (PostgreSQL zero-fills its WAL
    // segments for the same reason).
    static const std::string zeros(64 * 1024, '\0');
    while (allocated_ < bytes) {
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(zeros.size(), bytes - allocated_));
      ssize_t n = ::pwrite(fd_, zeros.data(), chunk, static_cast<off_t>(allocated_));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        // Give the space back: a full disk should stop writes no earlier
        // than it did without preallocation.
        if (::ftruncate(fd_, static_cast<off_t>(size_)) == 0) allocated_ = size_;
        return Errno("cannot preallocate space in", path_, err);
      }
      allocated_ += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return Errno("fdatasync of", path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return Errno("close of", path_, errno);
    return Status::Ok();
  }

  uint64_t Size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;       // where the next Append writes
  uint64_t allocated_;  // the file's length: size_ plus preallocated zeros
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }

  Result<std::string> ReadAll() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return Errno("cannot stat", path_, errno);
    std::string data;
    data.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::pread(fd_, data.data() + done, data.size() - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Errno("read of", path_, errno);
      if (n == 0) break;  // the file shrank while we read it
      done += static_cast<size_t>(n);
    }
    data.resize(done);
    return data;
  }
  Result<std::string> ReadAt(uint64_t offset, size_t n) override {
    std::string data(n, '\0');
    size_t done = 0;
    while (done < n) {
      ssize_t got = ::pread(fd_, data.data() + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return Errno("read of", path_, errno);
      if (got == 0) break;  // the end of the file
      done += static_cast<size_t>(got);
    }
    data.resize(done);
    return data;
  }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing releases the flock

 private:
  int fd_;
};

class StringContents final : public FileContents {
 public:
  explicit StringContents(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string_view bytes() const override { return bytes_; }

 private:
  std::string bytes_;
};

class MappedContents final : public FileContents {
 public:
  MappedContents(const void* data, size_t size) : data_(data), size_(size) {}
  ~MappedContents() override { ::munmap(const_cast<void*>(data_), size_); }
  MappedContents(const MappedContents&) = delete;
  MappedContents& operator=(const MappedContents&) = delete;
  std::string_view bytes() const override { return {static_cast<const char*>(data_), size_}; }

 private:
  const void* data_;
  size_t size_;
};

class PosixFs final : public FileSystem {
 public:
  Result<std::unique_ptr<FileContents>> MapFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status::NotFound(fmt::format("no file {}", path));
      return Errno("cannot open", path, errno);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return Errno("cannot stat", path, err);
    }
    const auto size = static_cast<size_t>(st.st_size);
    if (size == 0) {  // mmap refuses an empty length
      ::close(fd);
      return std::unique_ptr<FileContents>(new StringContents(""));
    }
    // MAP_POPULATE reads ahead and maps every page in one call, rather than
    // one page fault per few pages while the caller walks the bytes. The
    // mapping outlives the descriptor.
    void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    int err = errno;
    ::close(fd);
    if (data == MAP_FAILED) return Errno("cannot map", path, err);
    return std::unique_ptr<FileContents>(new MappedContents(data, size));
  }

  Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("cannot open", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return Errno("cannot stat", path, err);
    }
    return std::unique_ptr<WritableFile>(
        new PosixWritableFile(path, fd, static_cast<uint64_t>(st.st_size)));
  }

  Result<std::string> ReadFile(const std::string& path) override {
    auto file = OpenReadable(path);
    if (!file) return file.error();
    return (*file)->ReadAll();
  }

  Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status::NotFound(fmt::format("no file {}", path));
      return Errno("cannot open", path, errno);
    }
    return std::unique_ptr<ReadableFile>(new PosixReadableFile(path, fd));
  }

  Status WriteFile(const std::string& path, std::string_view data) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("cannot create", path, errno);
    PosixWritableFile file(path, fd, 0);
    Status s = file.Append(data);
    if (s.ok()) s = file.Sync();
    Status c = file.Close();
    return s.ok() ? c : s;
  }

  Status Truncate(const std::string& path, uint64_t size) override {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
      return Errno("cannot truncate", path, errno);
    }
    return Status::Ok();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return Errno("cannot rename " + from + " to", to, errno);
    }
    return Status::Ok();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Errno("cannot remove", path, errno);
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Errno("cannot open directory", dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return Errno("fsync of directory", dir, err);
    return Status::Ok();
  }

  Status CreateDirs(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::IOError(fmt::format("cannot create directory {}: {}", dir, ec.message()));
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return Errno("cannot list directory", dir, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      names.emplace_back(name);
    }
    ::closedir(d);
    return names;
  }

  bool Exists(const std::string& path) override {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
  }

  Result<std::unique_ptr<FileLock>> LockExclusive(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("cannot open lock file", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return Status::Busy(fmt::format("{} is locked by another kvctl process", path));
      }
      return Errno("cannot lock", path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }
};

}  // namespace

Result<std::unique_ptr<FileContents>> FileSystem::MapFile(const std::string& path) {
  auto bytes = ReadFile(path);
  if (!bytes) return bytes.error();
  return std::unique_ptr<FileContents>(new StringContents(std::move(*bytes)));
}

FileSystem& PosixFileSystem() {
  static PosixFs fs;
  return fs;
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (!out.empty() && out.back() != '/') out.push_back('/');
  out.append(name);
  return out;
}

}  // namespace kvctl::core
