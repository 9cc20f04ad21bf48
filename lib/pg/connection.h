// Connecting to PostgreSQL and telling its failures apart. Internal to
// lib/pg: this header includes pqxx, which nothing outside lib/pg may see.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <pqxx/pqxx>

#include "lib/core/status.h"

namespace kvctl::pg {

// Checks `dsn` (a libpq key=value string or a postgres:// URI) and returns it
// as a key=value string with connect_timeout set (whole seconds, rounded
// up), unless the DSN sets its own. InvalidArgument naming postgres.dsn when
// libpq cannot parse it or it is empty.
core::Result<std::string> ConnInfo(const std::string& dsn, std::chrono::milliseconds connect_timeout);

// "host=a,b port=1,2 dbname=d user=u": where a DSN points, without the
// password or other secrets, for log lines and error messages.
std::string DescribeTarget(const std::string& conninfo);

// Opens a connection. Unavailable (with libpq's reason) when it cannot.
core::Result<std::unique_ptr<pqxx::connection>> Connect(const std::string& conninfo);

// What a caught exception from pqxx means to kvctl.
struct PgError {
  core::Status status;           // Unavailable (the database is away), or IOError
  bool connection_lost = false;  // drop the connection; the database may be down
  bool outcome_unknown = false;  // a COMMIT was sent and no answer came back
};
// Call only from inside a catch block: classifies the exception in flight.
// `doing` says what failed ("the write transaction").
PgError ClassifyCurrentException(std::string_view doing);

}  // namespace kvctl::pg
