#include "lib/core/forwarded_writes.h"

#include <fmt/format.h>

#include "lib/core/coding.h"

namespace kvctl::core {
namespace {

constexpr char kVersion = 1;
// A write's flags.
constexpr uint64_t kPut = 1, kCreateOnly = 2, kMustExist = 4, kIfRevision = 8;
constexpr uint64_t kKnownFlags = kPut | kCreateOnly | kMustExist | kIfRevision;
// An outcome's flags.
constexpr uint64_t kExisted = 1, kChanged = 2;

void Varint(std::string* out, uint64_t v) {
  char buf[10];
  out->append(buf, static_cast<size_t>(PutVarint(buf, v) - buf));
}

void Bytes(std::string* out, std::string_view b) {
  Varint(out, b.size());
  out->append(b);
}

// Reads a body front to back; the first failure sticks.
class Reader {
 public:
  explicit Reader(std::string_view body) : p_(body.data()), end_(body.data() + body.size()) {}
  uint64_t Varint() {
    uint64_t v = 0;
    if (!ok_) return 0;
    const char* next = GetVarintChecked(p_, end_, &v);
    if (next == nullptr) return Fail(0);
    p_ = next;
    return v;
  }
  std::string Bytes() {
    const uint64_t n = Varint();
    if (!ok_ || n > static_cast<uint64_t>(end_ - p_)) return Fail(std::string());
    std::string b(p_, static_cast<size_t>(n));
    p_ += n;
    return b;
  }
  char Byte() {
    if (!ok_ || p_ == end_) return Fail('\0');
    return *p_++;
  }
  bool ok() const { return ok_; }
  bool done() const { return p_ == end_; }

 private:
  template <typename T>
  T Fail(T v) {
    ok_ = false;
    return v;
  }
  const char* p_;
  const char* end_;
  bool ok_ = true;
};

Status Truncated(std::string_view what) {
  return Status::InvalidArgument(fmt::format(
      "the forwarded {} are cut short or damaged (a length runs past the end); the sending server "
      "must be a kvctl of the same version",
      what));
}

Status BadVersion(std::string_view what, char v) {
  return Status::InvalidArgument(fmt::format(
      "the forwarded {} are in format version {}, this kvctl reads version {}: run the same kvctl "
      "version on every server of the database",
      what, static_cast<int>(static_cast<unsigned char>(v)), static_cast<int>(kVersion)));
}

}  // namespace

size_t ForwardedWriteSize(const ForwardedWrite& w) {
  return 1 + VarintSize(w.key.size()) + w.key.size() + VarintSize(w.value.size()) + w.value.size() +
         VarintSize(w.lease) + (w.pre.if_revision ? VarintSize(*w.pre.if_revision) : 0);
}

std::string EncodeForwardedWrites(const std::vector<ForwardedWrite>& writes) {
  std::string out(1, kVersion);
  size_t size = 1;
  for (const ForwardedWrite& w : writes) size += ForwardedWriteSize(w);
  out.reserve(size + 10);
  Varint(&out, writes.size());
  for (const ForwardedWrite& w : writes) {
    const uint64_t flags = (w.is_put ? kPut : 0) | (w.pre.create_only ? kCreateOnly : 0) |
                           (w.pre.must_exist ? kMustExist : 0) | (w.pre.if_revision ? kIfRevision : 0);
    Varint(&out, flags);
    Bytes(&out, w.key);
    Bytes(&out, w.value);
    Varint(&out, w.lease);
    if (w.pre.if_revision) Varint(&out, *w.pre.if_revision);
  }
  return out;
}

Result<std::vector<ForwardedWrite>> DecodeForwardedWrites(std::string_view body) {
  Reader in(body);
  if (const char v = in.Byte(); in.ok() && v != kVersion) return BadVersion("writes", v);
  const uint64_t count = in.Varint();
  // Each write takes at least four bytes: a count past that is damage.
  if (!in.ok() || count > body.size() / 4) return Truncated("writes");
  std::vector<ForwardedWrite> writes(static_cast<size_t>(count));
  for (ForwardedWrite& w : writes) {
    const uint64_t flags = in.Varint();
    if (in.ok() && (flags & ~kKnownFlags) != 0) {
      return Status::InvalidArgument(fmt::format("a forwarded write has unknown flags {:#x}", flags));
    }
    w.is_put = (flags & kPut) != 0;
    w.pre.create_only = (flags & kCreateOnly) != 0;
    w.pre.must_exist = (flags & kMustExist) != 0;
    w.key = in.Bytes();
    w.value = in.Bytes();
    w.lease = in.Varint();
    if ((flags & kIfRevision) != 0) w.pre.if_revision = in.Varint();
  }
  if (!in.ok() || !in.done()) return Truncated("writes");
  return writes;
}

std::string EncodeForwardedOutcomes(const std::vector<ForwardedOutcome>& outcomes) {
  std::string out(1, kVersion);
  Varint(&out, outcomes.size());
  for (const ForwardedOutcome& o : outcomes) {
    Varint(&out, static_cast<uint64_t>(o.status.code()));
    Bytes(&out, o.status.message());
    Varint(&out, o.revision);
    Varint(&out, (o.existed ? kExisted : 0) | (o.changed ? kChanged : 0));
  }
  return out;
}

Result<std::vector<ForwardedOutcome>> DecodeForwardedOutcomes(std::string_view body) {
  Reader in(body);
  if (const char v = in.Byte(); in.ok() && v != kVersion) return BadVersion("outcomes", v);
  const uint64_t count = in.Varint();
  if (!in.ok() || count > body.size() / 4) return Truncated("outcomes");
  std::vector<ForwardedOutcome> outcomes(static_cast<size_t>(count));
  for (ForwardedOutcome& o : outcomes) {
    const uint64_t code = in.Varint();
    std::string message = in.Bytes();
    if (in.ok() && code > static_cast<uint64_t>(Code::kCompacted)) {
      return Status::InvalidArgument(fmt::format("a forwarded outcome has unknown status code {}", code));
    }
    o.status = Status(static_cast<Code>(code), std::move(message));
    o.revision = in.Varint();
    const uint64_t flags = in.Varint();
    o.existed = (flags & kExisted) != 0;
    o.changed = (flags & kChanged) != 0;
  }
  if (!in.ok() || !in.done()) return Truncated("outcomes");
  return outcomes;
}

}  // namespace kvctl::core
