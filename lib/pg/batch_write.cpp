#include "lib/pg/batch_write.h"

#include <string>

#include "lib/pg/log_rows.h"

namespace kvctl::pg {
namespace {

// kv_write_batch's r_outcome (migrations.cpp, version 6).
enum class Outcome : int { kWritten = 0, kRefused = 1, kNoSuchLease = 2, kUnchanged = 3, kMissing = 4 };

// PostgreSQL array literals in text form, built for the function's
// parameters: one per column of the batch.
class ArrayLiteral {
 public:
  void Bytes(std::string_view b) {
    static constexpr char kHex[] = "0123456789abcdef";
    Next();
    text_ += "\"\\\\x";  // inside quotes "\\" is one backslash: the bytea's \x hex form
    for (const unsigned char c : b) {
      text_ += kHex[c >> 4];
      text_ += kHex[c & 0xf];
    }
    text_ += '"';
  }
  void Number(uint64_t n) {
    Next();
    text_ += std::to_string(n);
  }
  void Null() {
    Next();
    text_ += "NULL";
  }
  void Bool(bool b) {
    Next();
    text_ += b ? 't' : 'f';
  }
  std::string Done() {
    text_ += '}';
    return std::move(text_);
  }

 private:
  void Next() { text_ += text_.size() == 1 ? "" : ","; }
  std::string text_ = "{";
};

}  // namespace

void PrepareBatchWrite(pqxx::connection& c) {
  c.prepare("kv_write_batch",
            "SELECT r_op, r_outcome, r_existed, r_revision, r_create, r_version "
            "FROM kv_write_batch($1, $2, $3, $4, $5, $6, $7)");
}

BatchWritten WriteBatch(pqxx::connection& conn, std::span<const KeyWrite> writes) {
  ArrayLiteral kinds, keys, values, leases, create_only, must_exist, if_revision;
  for (const KeyWrite& w : writes) {
    kinds.Number(w.is_put ? 1 : 2);
    keys.Bytes(w.key);
    values.Bytes(w.value);
    leases.Number(w.lease);
    const core::Precondition none;
    const core::Precondition& pre = w.pre != nullptr ? *w.pre : none;
    create_only.Bool(pre.create_only);
    must_exist.Bool(pre.must_exist);
    if (pre.if_revision) {
      if_revision.Number(*pre.if_revision);
    } else {
      if_revision.Null();
    }
  }
  pqxx::nontransaction tx(conn);
  const pqxx::result rows = tx.exec_prepared("kv_write_batch", kinds.Done(), keys.Done(), values.Done(),
                                             leases.Done(), create_only.Done(), must_exist.Done(),
                                             if_revision.Done());
  BatchWritten out;
  out.outcomes.resize(writes.size());
  for (const auto& row : rows) {
    const int op = row[0].as<int>();
    const uint64_t revision = row[3].as<uint64_t>();
    if (op == 0) {
      out.base = revision;
      out.compacted = row[4].as<uint64_t>();
      continue;
    }
    const KeyWrite& w = writes[static_cast<size_t>(op - 1)];
    KeyWriteOutcome& r = out.outcomes[static_cast<size_t>(op - 1)];
    r.existed = row[2].as<bool>();
    switch (static_cast<Outcome>(row[1].as<int>())) {
      case Outcome::kWritten:
        r.revision = revision;
        r.changed = true;
        if (w.is_put) {
          const core::KeyMeta meta{row[4].as<uint64_t>(), row[5].as<uint64_t>(), w.lease};
          out.changes.push_back({revision, core::RecordType::kPut, std::string(w.key), std::string(w.value), meta});
        } else {
          out.changes.push_back({revision, core::RecordType::kDelete, std::string(w.key), {}, {}});
        }
        break;
      case Outcome::kRefused:
        // The function judged it; the message is the one every backend gives.
        r.status = core::CheckPrecondition(r.existed, revision, w.pre != nullptr ? *w.pre : core::Precondition{});
        if (r.status.ok()) r.status = core::Status::Corruption("the database refused a write whose condition holds (kv_write_batch disagrees with kvctl)");
        break;
      case Outcome::kNoSuchLease:
        r.status = core::NoSuchLease(w.lease);
        break;
      case Outcome::kUnchanged:
        r.revision = revision;
        break;
      case Outcome::kMissing:
        break;
    }
  }
  return out;
}

}  // namespace kvctl::pg
