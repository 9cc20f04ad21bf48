// The one table of kvctl settings.
//
// Each row (in settings.cpp) declares a setting's key, value kind, default,
// help, allowed values, optional short flag, the subcommands that use it, and
// how its text is parsed, checked and stored into Config. Everything else —
// the TOML keys Load accepts, the KVCTL_* environment names, the CLI flags and
// their help, `config show` — is derived from the table, so adding a setting
// is one new row plus its Config field.
//
// Names: key "section.name" -> env KVCTL_SECTION_NAME, flag --section-name.
// The table is built once, on first use, and is immutable afterwards; it is
// safe to read from any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/config/config.h"
#include "lib/core/status.h"

namespace kvctl::config {

// The subcommands a setting applies to; decides which flags each gets.
enum class Scope {
  kServe,    // kvctl serve
  kClient,   // kvctl put / get / del
  kCompact,  // kvctl compact (through a server, or offline on a data dir)
  kReplay,   // kvctl replay (reads a data dir)
  kBench,    // kvctl bench: the client's address and timeout, and the
             // storage and postgres settings of its --embedded server
  kMigrate,  // kvctl migrate
};

// How a setting is written, which decides the TOML types it accepts:
// kInt takes a TOML integer; kBytes an integer (bytes) or a string ("64MiB");
// kBool a TOML boolean (true/false, also from env and flags); kIdentities
// an array of tables ([[auth.tokens]]), in the config file only; the rest
// take strings only (a duration must carry its unit).
enum class Kind { kString, kInt, kDuration, kBytes, kEnum, kBool, kIdentities };

// "string", "integer", "duration", "size", "enum", "boolean", "tables".
std::string_view KindName(Kind kind);

// Whether a setting's value may be shown as it is (in `kvctl config show` and
// in error messages). Secrets are masked wherever kvctl prints a value.
enum class Secret {
  kNone,
  kValue,     // the whole value is secret (a token): shown as "********"
  kPassword,  // a connection string: the secrets inside it are masked by a
              // ConnectionMasker (lib/pg's, which parses it as libpq does);
              // without one, the whole value is
};

// Masks the secrets inside a connection string and keeps the rest readable.
// lib/config cannot parse one as libpq does (only lib/pg may use libpq), so
// whoever shows settings passes lib/pg's MaskDsnSecrets (cmd/ wires it).
using ConnectionMasker = std::function<std::string(std::string_view)>;

// What a string setting's value names, for shell completion and the help
// label: TEXT, FILE (complete file names) or DIR (complete directories).
enum class ValueHint { kNone, kFile, kDir };

// How a setting's text becomes a Config field. Built by the helpers in
// settings.cpp so each kind is parsed and checked the same way everywhere.
struct ValueCodec {
  Kind kind = Kind::kString;
  // What is accepted, for help text: "an integer from 1 to 16384".
  std::string accepted;
  // kEnum only: the allowed values, in display order.
  std::vector<std::string> allowed;
  // Parses `text`, checks it, stores it into the config. On failure returns
  // InvalidArgument with a phrase that follows the value ("is not one of: a, b");
  // the caller adds the key and the source.
  std::function<core::Status(std::string_view text, Config& config)> parse;
  // The current value as text that `parse` accepts back ("5s", "512",
  // "64MiB"): what a user would write after the flag or in the variable.
  std::function<std::string(const Config& config)> text;
  // kIdentities only: the list the tables go into, and whether they are
  // client certificates ([[auth.certs]]) rather than tokens.
  std::function<std::vector<AuthIdentity>&(Config& config)> identities;
  bool certs = false;
  // A setting that used to be a boolean: a TOML true or false reaches
  // `parse` as "true" or "false", which it maps to one of its values.
  bool takes_boolean = false;
};

struct Setting {
  std::string key;  // "section.name", lowercase, [a-z0-9_]
  ValueCodec value;
  std::string default_value;  // as a user would write it; parsed by `value.parse`
  std::string alias;          // short flag without dashes ("listen"), "" if none
  std::vector<Scope> scopes;
  std::string help;  // one line, no trailing period
  Secret secret = Secret::kNone;
  ValueHint hint = ValueHint::kNone;

  bool UsedBy(Scope scope) const;
  std::string_view Section() const;  // "storage"
  std::string_view Name() const;     // "fsync_interval"
};

// All settings, in a stable order (grouped by section).
const std::vector<Setting>& Settings();

// `text` (a value of `setting`, as accepted by its parse) ready to be shown:
// unchanged unless the setting is secret, then masked as Secret says
// (a connection string by `mask_connection`, or whole when it is null).
std::string Displayable(const Setting& setting, std::string_view text,
                        const ConnectionMasker& mask_connection = nullptr);

// `text` as the TOML literal for `setting`: integers (and byte counts without a
// unit) bare, everything else a quoted string.
std::string TomlLiteral(const Setting& setting, std::string_view text);

// The setting with this key, or nullptr.
const Setting* FindSetting(std::string_view key);

// The distinct section names, in table order.
std::vector<std::string> Sections();

// "storage.fsync_interval" -> "KVCTL_STORAGE_FSYNC_INTERVAL".
std::string EnvName(std::string_view key);

// "storage.fsync_interval" -> "--storage-fsync-interval".
std::string FlagName(std::string_view key);

// The flag a user most likely typed, for error messages: "--" + alias when
// the setting has one, else FlagName(key).
std::string PreferredFlag(const Setting& setting);

}  // namespace kvctl::config
