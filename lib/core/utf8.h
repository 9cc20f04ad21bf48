// UTF-8 validity, to decide when JSON can carry a key as a string.
#pragma once

#include <string_view>

namespace kvctl::core {

// Strict: rejects overlong forms, surrogates and code points past U+10FFFF.
bool IsValidUtf8(std::string_view s);

}  // namespace kvctl::core
