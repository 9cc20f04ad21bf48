// How kvctl shows a DSN: where it points (logs, errors) or every option
// (config show), never its secrets.
#include <doctest/doctest.h>

#include "lib/pg/dsn_mask.h"
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

// MaskDsnSecrets: what `kvctl config show` prints for postgres.dsn.
using kvctl::pg::MaskDsnSecrets;

TEST_CASE("a key=value DSN has its password masked, even when another value holds ://") {
  CHECK(MaskDsnSecrets("host=db user=app password=s3cret dbname=kv") ==
        "user=app password=******** dbname=kv host=db");
  // Before: any "://" made the whole string be read as a URL, and the
  // password was printed in clear.
  const std::string shown = MaskDsnSecrets("host=db password=S3CRET application_name=http://x");
  CHECK(shown.find("S3CRET") == std::string::npos);
  CHECK(shown == "password=******** host=db application_name=http://x");
  // Quoted, with escapes and spaces around '='.
  const std::string quoted = MaskDsnSecrets("host=db password = 'it\\'s s3cret' port=5432");
  CHECK(quoted.find("s3cret") == std::string::npos);
  CHECK(quoted == "password=******** host=db port=5432");
}

TEST_CASE("sslpassword, and every option libpq marks secret, is masked") {
  const std::string shown = MaskDsnSecrets("host=db sslkey=/k.pem sslpassword=keypass dbname=kv");
  CHECK(shown.find("keypass") == std::string::npos);
  CHECK(shown.find("sslpassword=********") != std::string::npos);
  CHECK(shown.find("sslkey=/k.pem") != std::string::npos);  // a path, not a secret
  const std::string uri = MaskDsnSecrets("postgresql://db/kv?sslpassword=keypass&sslmode=require");
  CHECK(uri.find("keypass") == std::string::npos);
  CHECK(uri.find("sslpassword=********") != std::string::npos);
}

TEST_CASE("a URI has the password of its userinfo and of its query masked, percent-encoded names too") {
  CHECK(MaskDsnSecrets("postgres://app:s3cret@db:5432/kv?sslmode=require") ==
        "user=app password=******** dbname=kv host=db port=5432 sslmode=require");
  CHECK(MaskDsnSecrets("postgresql://db/kv?user=app&password=s3cret") ==
        "user=app password=******** dbname=kv host=db");
  // libpq decodes parameter names: %70assword is password.
  const std::string encoded = MaskDsnSecrets("postgresql://db/kv?%70assword=s3cret");
  CHECK(encoded.find("s3cret") == std::string::npos);
  CHECK(encoded.find("password=********") != std::string::npos);
  // A password holding '@' and ':' (percent-encoded, as a URI needs).
  CHECK(MaskDsnSecrets("postgresql://app:p%40ss%3Aw@db/kv").find("p@ss") == std::string::npos);
}

TEST_CASE("a DSN without secrets is shown whole, values that need it are quoted") {
  CHECK(MaskDsnSecrets("") == "");
  CHECK(MaskDsnSecrets("host=db dbname=kv") == "dbname=kv host=db");
  CHECK(MaskDsnSecrets("postgres://app@db/kv") == "user=app dbname=kv host=db");
  CHECK(MaskDsnSecrets("host=db application_name='my app'") == "host=db application_name='my app'");
}

TEST_CASE("a DSN libpq cannot parse is masked whole: where its secret is cannot be told") {
  CHECK(MaskDsnSecrets("host='unterminated password=hunter2") == "********");
  CHECK(MaskDsnSecrets("hunter2") == "********");
  CHECK(MaskDsnSecrets("host=db passwd=hunter2") == "********");  // an unknown option
}
