// Parsing of the textual value forms used by settings: integers, durations,
// byte sizes and addresses.
//
// Every parser takes the text exactly as the user wrote it (no trimming) and
// returns either the value or Status::InvalidArgument whose message is a
// phrase meant to follow the offending value, e.g.
//   "is not a duration: missing unit (write e.g. \"100ms\", \"5s\", \"2m\", \"1h\")"
// so the caller can prefix it with the key and where the value came from:
//   storage.fsync_interval = "100" (from environment ...) is not a duration: ...
// Pure functions; no I/O; safe to call from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace kvctl::config {

// A decimal integer with an optional leading '-': "512", "-3". No '+', no
// spaces, no digit separators.
core::Result<int64_t> ParseInteger(std::string_view text);

// A non-negative duration: one or more <number><unit> parts, Go style, with
// units ms, s, m, h (lowercase), e.g. "100ms", "5s", "1h30m", "1.5s".
// A unit is required, even for zero ("0s"). The result must be a whole number
// of milliseconds and fit in int64 milliseconds.
core::Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// A byte count: a plain integer ("1048576") or <number><unit> with units
// (case-insensitive) B, KiB, MiB, GiB, TiB (powers of 1024) and KB, MB, GB, TB
// (powers of 1000), e.g. "64MiB", "1MB", "1.5KiB". Must come to whole bytes.
// Bare "K"/"M"/"G" are refused as ambiguous.
core::Result<uint64_t> ParseByteSize(std::string_view text);

// A server listen address "host:port": host is a name, an IPv4 address or a
// bracketed IPv6 address ("[::1]"), never empty; port is 0..65535, 0 meaning
// "any free port". Returns the text unchanged when valid.
core::Result<std::string> ParseListenAddress(std::string_view text);

// A client target: "host:port", "http://host[:port]" or "https://host[:port]",
// optionally with a trailing "/". Returns the normalized form
// "scheme://host:port" (scheme defaults to http; a missing port becomes 80
// for http and 443 for https), so clients can rely on that shape.
core::Result<std::string> NormalizeClientAddress(std::string_view text);

// Inverse forms, for showing effective values: the largest unit that
// represents the value exactly ("100ms", "5s", "2m", "1h", "0s"; "64MiB",
// "512KiB", or the plain byte count when no binary unit divides it).
// Each output parses back to the same value.
std::string FormatDuration(std::chrono::milliseconds d);
std::string FormatByteSize(uint64_t bytes);

// `s` as a TOML basic string literal: in double quotes, with '"', '\' and
// control characters escaped. Also how values are shown in error messages,
// so an empty or odd value is still visible.
std::string TomlQuote(std::string_view s);

}  // namespace kvctl::config
