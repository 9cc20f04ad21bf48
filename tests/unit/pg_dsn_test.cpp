// How the PostgreSQL backend shows a DSN: where it points, never secrets.
#include <doctest/doctest.h>

#include "lib/pg/pg_history.h"

using kvctl::pg::DescribeDatabase;

TEST_CASE("a DSN is described by host, port, database and user, without the password") {
  const std::string uri = DescribeDatabase("postgresql://kv:s3cret@db1:5433/app?sslmode=require");
  CHECK(uri.find("s3cret") == std::string::npos);
  CHECK(uri.find("host=db1") != std::string::npos);
  CHECK(uri.find("port=5433") != std::string::npos);
  CHECK(uri.find("dbname=app") != std::string::npos);
  CHECK(uri.find("user=kv") != std::string::npos);

  const std::string kv =
      DescribeDatabase("host=a,b port=1,2 dbname=d password='x y' target_session_attrs=read-write");
  CHECK(kv.find("x y") == std::string::npos);
  CHECK(kv.find("password") == std::string::npos);
  CHECK(kv.find("host=a,b") != std::string::npos);
  CHECK(kv.find("target_session_attrs=read-write") != std::string::npos);
}

TEST_CASE("a DSN libpq cannot parse is described as empty rather than echoed") {
  CHECK(DescribeDatabase("host='unterminated password=hunter2").find("hunter2") ==
        std::string::npos);
}
