// Errors as values, in the style of leveldb::Status and absl::Status.
//
// A Status is either OK or carries a Code and a message that reads as one
// sentence for an operator: what went wrong, and where useful, what to do.
// Result<T> holds a T or a non-OK Status; its spelling follows std::expected
// (has_value / value / error / operator*) so it can be swapped for it later.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kvctl::core {

enum class Code {
  kOk = 0,
  kNotFound,            // the key (or file) does not exist
  kInvalidArgument,     // bad input or configuration: the caller must change it
  kFailedPrecondition,  // a conditional write did not hold (If-Match, create-only)
  kCorruption,          // stored data fails its checksum or format
  kIOError,             // the disk or the OS refused (write, fsync, open)
  kUnavailable,         // not serving this now (writes disabled, unreachable)
  kBusy,                // a resource is held by someone else (the data dir lock)
  kCompacted,           // the history asked for was compacted away (a watch from too old a revision)
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {Code::kFailedPrecondition, std::move(m)};
  }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Busy(std::string m) { return {Code::kBusy, std::move(m)}; }
  static Status Compacted(std::string m) { return {Code::kCompacted, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsFailedPrecondition() const { return code_ == Code::kFailedPrecondition; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsCompacted() const { return code_ == Code::kCompacted; }

  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    return {code_, std::string(context) + ": " + message_};
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit like std::expected
  Result(Status error) : v_(std::move(error)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result needs a non-OK Status or a value");
  }

  bool has_value() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Status& error() const { return std::get<Status>(v_); }
  // OK when a value is held, else the error: handy for early returns.
  Status status() const { return has_value() ? Status::Ok() : error(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace kvctl::core
