// Bytes shown to people: keys and values are arbitrary bytes (SPEC §1), and
// a terminal takes some of them as commands (ESC starts a sequence that can
// retitle the window or move the cursor), so what reaches one is quoted.
#pragma once

#include <string>
#include <string_view>

namespace kvctl::cmd {

// `bytes` in double quotes with C escapes: \" \\ \n \r \t, and \xNN for
// other control bytes (DEL and the two bytes of a C1 control included) and
// for invalid UTF-8; other UTF-8 is kept. One line, safe on a terminal, and
// the exact bytes can be recovered from it. Keys in messages and replay's
// text lines are quoted this way.
std::string QuoteBytes(std::string_view bytes);

}  // namespace kvctl::cmd
