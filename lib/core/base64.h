// Standard base64 (RFC 4648, with padding): how binary values travel in JSON.
#pragma once

#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace kvctl::core {

std::string Base64Encode(std::string_view bytes);
// InvalidArgument on characters outside the alphabet or bad padding.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace kvctl::core
