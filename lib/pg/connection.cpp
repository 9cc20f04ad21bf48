#include "lib/pg/connection.h"

#include <algorithm>
#include <vector>

#include <libpq-fe.h>

#include <exception>

#include <fmt/format.h>

namespace kvctl::pg {
namespace {

std::string Quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\\' || c == '\'') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

// libpq's messages end in a newline and may span lines (indented with
// tabs); kvctl's are one line with single spaces.
std::string OneLine(std::string_view why) {
  std::string out;
  for (char c : why) {
    const bool space = c == '\n' || c == '\t' || c == ' ' || c == '\r';
    if (!space) {
      out.push_back(c);
    } else if (!out.empty() && out.back() != ' ') {
      out.push_back(' ');
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool IsSecret(std::string_view keyword) {
  return keyword == "password" || keyword == "sslpassword" || keyword == "sslkey";
}

// libpq's parse errors quote what they stumbled on ("missing \"=\" after
// \"s3cret\""), which may be a piece of a password: every quoted piece but
// "=" and libpq's own option names is hidden.
std::string HideQuotedPieces(const std::string& message) {
  std::vector<std::string> keywords{"="};
  if (PQconninfoOption* defaults = PQconndefaults()) {
    for (PQconninfoOption* o = defaults; o->keyword != nullptr; ++o) keywords.emplace_back(o->keyword);
    PQconninfoFree(defaults);
  }
  std::string out;
  size_t at = 0;
  while (at < message.size()) {
    const size_t open = message.find('"', at);
    const size_t close = open == std::string::npos ? open : message.find('"', open + 1);
    if (close == std::string::npos) break;
    const std::string piece = message.substr(open + 1, close - open - 1);
    const bool known = std::find(keywords.begin(), keywords.end(), piece) != keywords.end();
    out.append(message, at, open + 1 - at).append(known ? piece : "...").push_back('"');
    at = close + 1;
  }
  return out.append(message, std::min(at, message.size()));
}

// Runs `fn(keyword, value)` for each option the DSN sets; an error when
// libpq cannot parse it.
template <typename Fn>
core::Status ForEachOption(const std::string& dsn, Fn fn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options == nullptr) {
    std::string why = HideQuotedPieces(OneLine(error != nullptr ? error : "out of memory"));
    if (error != nullptr) PQfreemem(error);
    return core::Status::InvalidArgument(fmt::format(
        "postgres.dsn is not a valid PostgreSQL connection string: {} (write e.g. "
        "\"host=db1,db2 dbname=kvctl target_session_attrs=read-write\" or "
        "\"postgresql://user@db1/kvctl\")",
        why));
  }
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) fn(std::string_view(o->keyword), std::string_view(o->val));
  }
  PQconninfoFree(options);
  return core::Status::Ok();
}

}  // namespace

core::Result<std::string> ConnInfo(const std::string& dsn, std::chrono::milliseconds connect_timeout) {
  if (dsn.empty()) {
    return core::Status::InvalidArgument(
        "no PostgreSQL database given: set --dsn, KVCTL_POSTGRES_DSN or postgres.dsn in the "
        "config file");
  }
  std::string out;
  bool has_timeout = false;
  core::Status parsed = ForEachOption(dsn, [&](std::string_view keyword, std::string_view value) {
    if (keyword == "connect_timeout") has_timeout = true;
    if (!out.empty()) out.push_back(' ');
    out += fmt::format("{}={}", keyword, Quote(value));
  });
  if (!parsed.ok()) return parsed;
  if (!has_timeout) {
    const auto seconds = (connect_timeout.count() + 999) / 1000;
    out += fmt::format(" connect_timeout={}", seconds < 1 ? 1 : seconds);
  }
  return out;
}

std::string DescribeTarget(const std::string& conninfo) {
  std::string out;
  (void)ForEachOption(conninfo, [&](std::string_view keyword, std::string_view value) {
    if (keyword != "host" && keyword != "hostaddr" && keyword != "port" && keyword != "dbname" &&
        keyword != "user" && keyword != "target_session_attrs") {
      return;
    }
    if (IsSecret(keyword)) return;
    if (!out.empty()) out.push_back(' ');
    out += fmt::format("{}={}", keyword, value);
  });
  return out;
}

core::Result<std::unique_ptr<pqxx::connection>> Connect(const std::string& conninfo) {
  try {
    return std::make_unique<pqxx::connection>(conninfo);
  } catch (const std::exception& e) {
    return core::Status::Unavailable(fmt::format("cannot connect to PostgreSQL ({}): {}",
                                                 DescribeTarget(conninfo), OneLine(e.what())));
  }
}

PgError ClassifyCurrentException(std::string_view doing) {
  try {
    throw;
  } catch (const pqxx::in_doubt_error& e) {
    return {core::Status::Unavailable(fmt::format(
                "{}: the connection to PostgreSQL broke during COMMIT, so the write may or may "
                "not have been made; it is not acknowledged ({})",
                doing, OneLine(e.what()))),
            true, true};
  } catch (const pqxx::broken_connection& e) {
    return {core::Status::Unavailable(
                fmt::format("{}: lost the connection to PostgreSQL: {}", doing, OneLine(e.what()))),
            true, false};
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    // 08: connection exception; 57: operator intervention (shutdown,
    // terminated backend); 25006: a read-only transaction, i.e. a standby
    // (after a failover the DSN must reach the new primary).
    const bool lost = state.starts_with("08") || state.starts_with("57") || state == "25006";
    // 53: insufficient resources (too many connections, disk full).
    if (lost || state.starts_with("53")) {
      return {core::Status::Unavailable(fmt::format("{}: PostgreSQL refused (SQLSTATE {}): {}",
                                                    doing, state, OneLine(e.what()))),
              lost, false};
    }
    return {core::Status::IOError(fmt::format("{}: PostgreSQL error (SQLSTATE {}): {}", doing,
                                              state, OneLine(e.what()))),
            false, false};
  } catch (const std::exception& e) {
    return {core::Status::IOError(fmt::format("{}: {}", doing, OneLine(e.what()))), false, false};
  }
}

}  // namespace kvctl::pg
