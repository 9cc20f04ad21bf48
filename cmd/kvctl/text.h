// Bytes shown to people: keys and values are arbitrary bytes (SPEC §1), and
// a terminal takes some of them as commands (ESC starts a sequence that can
// retitle the window or move the cursor), so what reaches one is either
// quoted or known to be text.
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

// Where `bytes` stop being printable text, or npos: printable text is valid
// UTF-8 without control characters (C0, DEL, C1) other than tab, newline,
// and a carriage return right before a newline. Only printable text goes
// to a terminal as it is.
size_t FirstUnprintable(std::string_view bytes);
inline bool IsPrintableText(std::string_view bytes) { return FirstUnprintable(bytes) == std::string_view::npos; }

}  // namespace kvctl::cmd
