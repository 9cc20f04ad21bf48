// A PostgreSQL connection string made fit to show (`kvctl config show`):
// parsed by libpq itself, so what is masked is exactly what libpq would
// take as a secret, whatever form the string has (key=value, URI,
// percent-encoded names, quoting, a "://" inside another value).
// Pure; safe from any thread. No libpq type appears here.
#pragma once

#include <string>
#include <string_view>

namespace kvctl::pg {

// What a masked value is shown as (the same as lib/config's kMasked).
inline constexpr std::string_view kMaskedSecret = "********";

// `dsn` as the key=value options libpq parses from it, in libpq's order,
// with the value of every option libpq marks as secret (dispchar '*':
// password, sslpassword, and any a newer libpq adds) replaced by
// kMaskedSecret:
//   postgresql://app:s3cret@db/kv?sslmode=require
//     -> user=app password=******** dbname=kv host=db sslmode=require
//   host=db password=S3CRET application_name=http://x
//     -> password=******** host=db application_name=http://x
// "" stays "". A string libpq cannot parse comes back as kMaskedSecret
// alone: where a secret would be in it cannot be told.
std::string MaskDsnSecrets(std::string_view dsn);

}  // namespace kvctl::pg
