// Percent-encoding of arbitrary bytes (RFC 3986), as keys travel in URLs.
#pragma once

#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace kvctl::core {

// Encodes every byte except the unreserved ones (A-Z a-z 0-9 - . _ ~), so
// the result is safe in a path segment or a query value; '/' is encoded too.
std::string PercentEncode(std::string_view bytes);

// Decodes %XX escapes; every other byte stands for itself ('+' included).
// InvalidArgument names the offset of a '%' not followed by two hex digits.
Result<std::string> PercentDecode(std::string_view text);

// The value of a hex digit (either case), or -1 for any other character.
int HexDigitValue(char c);

}  // namespace kvctl::core
