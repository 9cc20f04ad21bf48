// Masking of secrets before a value is printed (`kvctl config show`, error
// messages, logs). Pure functions; safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace kvctl::config {

// What a masked secret is shown as: always the same length, so the output
// says that a value is set without saying how long it is.
inline constexpr std::string_view kMasked = "********";

// `token` masked: "" stays "" (so "not set" is still visible), anything else
// becomes kMasked.
std::string MaskWhole(std::string_view token);

// A connection string with its password masked and everything else kept, so
// an operator can still see which host, port, user and database it names:
//   postgres://app:s3cret@db:5432/kv?sslmode=require -> postgres://app:********@db:5432/kv?sslmode=require
//   postgresql://db/kv?user=app&password=s3cret       -> ...&password=********
//   host=db user=app password='s 3cret' dbname=kv     -> host=db user=app password=******** dbname=kv
// A string without a password comes back unchanged.
std::string MaskConnectionPassword(std::string_view dsn);

}  // namespace kvctl::config
