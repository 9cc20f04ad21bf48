#include "lib/config/redact.h"

namespace kvctl::config {

std::string MaskWhole(std::string_view token) { return token.empty() ? "" : std::string(kMasked); }

}  // namespace kvctl::config
