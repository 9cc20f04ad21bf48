// libFuzzer target over everything that reads log bytes from disk: the
// segment scanner, the snapshot scanner, and recovery (FileLog::Open) of a
// data dir holding the input as a segment or a snapshot. No input may
// crash, hang, or read outside its buffer (AddressSanitizer watches).
//
// The first input byte picks what the rest is fed to. Run by ctest for a
// bounded time (tests/fuzz/run.sh); README says how to run it longer.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "lib/core/file_log.h"
#include "lib/core/log_format.h"
#include "lib/core/log_reader.h"
#include "lib/core/snapshot.h"

namespace {

using namespace kvctl::core;

std::string g_dir;  // a scratch data dir, emptied before each recovery run

void EmptyScratch() {
  for (const auto& e : std::filesystem::directory_iterator(g_dir)) std::filesystem::remove_all(e.path());
}

void WriteSeed(const std::string& dir, const std::string& name, char mode, const std::string& bytes) {
  std::ofstream(dir + "/" + name, std::ios::binary) << mode << bytes;
}

// Valid inputs to start from, so the fuzzer begins past the magic numbers.
void WriteSeeds(const std::string& dir) {
  std::string segment;
  AppendSegmentHeader(&segment);
  AppendRecord(&segment, 1, RecordType::kPut, "a", "1");
  AppendRecord(&segment, 2, RecordType::kPut, std::string("\0k", 2), std::string(40, 'v'));
  AppendRecord(&segment, 3, RecordType::kDelete, "a", "");
  const KeyMeta meta{4, 1, 0};
  AppendTxnRecord(&segment, 4,
                  {{RecordType::kPut, "t1", "one", &meta}, {RecordType::kDelete, std::string("\0k", 2), "", nullptr},
                   {RecordType::kPut, "t2", std::string(20, 'w'), nullptr}});
  // Leases: a grant, a put attached to it, an expiry that deletes it (in a
  // TRANSACTION record, as the store writes one with keys), a bare revoke.
  const KeyMeta leased{6, 1, 77};
  AppendRecord(&segment, 5, RecordType::kLeaseGrant, LeaseGrantKey(77), LeaseTtlValue(30));
  AppendRecord(&segment, 6, RecordType::kPut, "l1", "held", &leased);
  AppendTxnRecord(&segment, 7,
                  {{RecordType::kLeaseEnd, LeaseEndKey(77, LeaseEndReason::kExpired), "", nullptr},
                   {RecordType::kDelete, "l1", "", nullptr}});
  AppendRecord(&segment, 8, RecordType::kLeaseGrant, LeaseGrantKey(78), LeaseTtlValue(1));
  AppendRecord(&segment, 9, RecordType::kLeaseEnd, LeaseEndKey(78, LeaseEndReason::kRevoked), "");
  for (char mode : {'\0', '\2'}) WriteSeed(dir, std::string("segment-") + char('0' + mode), mode, segment);

  EmptyScratch();
  auto written = WriteSnapshot(PosixFileSystem(), g_dir, 9, {{"a", "1", 3}, {"b", "", 7}}, {{77, 30}});
  if (written) {
    std::ifstream in(written->path, std::ios::binary);
    std::string snapshot((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (char mode : {'\1', '\3'}) WriteSeed(dir, std::string("snapshot-") + char('0' + mode), mode, snapshot);
  }
}

// Recovers a data dir holding `bytes` as `file_name`, and, when given, an
// empty segment named `next_segment` after it (a snapshot needs one to chain).
void Recover(const std::string& file_name, std::string_view bytes, const std::string& next_segment = "") {
  EmptyScratch();
  std::ofstream(g_dir + "/" + file_name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!next_segment.empty()) {
    std::string header;
    AppendSegmentHeader(&header);
    std::ofstream(g_dir + "/" + next_segment, std::ios::binary) << header;
  }
  auto log = FileLog::Open({g_dir, FsyncPolicy::kNever, 1 << 20, nullptr, nullptr},
                           [](const LogRecord& r) { return r.key.empty() ? Status::Corruption("empty key") : Status::Ok(); },
                           nullptr);
  if (log) {
    const uint64_t next = (*log)->stats().segments + 1000000;
    (void)(*log)->Append({Change{next, RecordType::kPut, "k", "v"}, Change{next + 1, RecordType::kPut, "t1", "v"},
                          Change{next + 1, RecordType::kDelete, "t2", ""}});
    (void)(*log)->Close();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // tmpfs when there is one: recovery syncs files and directories, which
  // costs nothing there and keeps thousands of runs a second possible.
  char shm[] = "/dev/shm/kvctl-fuzz-XXXXXX";
  char tmp[] = "/tmp/kvctl-fuzz-XXXXXX";
  char* tmpl = mkdtemp(shm);
  if (tmpl == nullptr) tmpl = mkdtemp(tmp);
  if (tmpl == nullptr) std::abort();
  g_dir = tmpl;
  std::atexit([] { std::filesystem::remove_all(g_dir); });
  if (const char* seeds = std::getenv("KVCTL_FUZZ_SEEDS")) WriteSeeds(seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto ignore = [](const LogRecord&) { return Status::Ok(); };
  switch (data[0] % 4) {
    case 0: (void)ScanSegment(bytes, 1, ignore); break;
    case 1: (void)ScanSnapshot(bytes, "fuzz.snapshot", 9, ignore); break;
    case 2: Recover(SegmentFileName(1), bytes); break;
    case 3: Recover(SnapshotFileName(9), bytes, SegmentFileName(10)); break;
  }
  return 0;
}
