// A description of kvctl's command line, independent of the parser that
// built it, and the shell completion scripts rendered from it.
//
// cmd/kvctl walks the CLI11 app into a CommandSpec (so every subcommand and
// option that is declared is described, with nothing to keep in step by
// hand); this folder turns the tree into bash, zsh and fish scripts and into
// JSON for tools and tests. Pure functions; no I/O.
//
// Value completion follows the option's type label, which is also what
// `--help` shows:
//   {a,b,c}         one of these words
//   FILE or PATH    a file name
//   DIR             a directory
//   anything else   a value with nothing to suggest
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kvctl::completion {

enum class ValueKind { kNone, kWords, kFile, kDir };

struct ValueSpec {
  ValueKind kind = ValueKind::kNone;
  std::vector<std::string> words;  // kWords only
};

// The value completion a type label asks for (see the table above).
ValueSpec ValueFromLabel(std::string_view label);

// "{a,b,c}": the label that declares a choice of words.
std::string ChoicesLabel(const std::vector<std::string>& words);

struct OptionSpec {
  std::vector<std::string> names;  // with dashes: "-o", "--output"
  std::string help;                // one line
  bool takes_value = false;
  std::string label;               // type label, e.g. "{text,json}", "DIR", "INT"
  ValueSpec value;                 // from label
};

struct PositionalSpec {
  std::string name;
  std::string help;
  std::string label;
  ValueSpec value;
};

struct CommandSpec {
  std::string name;   // "kvctl" at the root
  std::string help;   // one line
  std::string group;  // the group the parent's --help lists it under
  std::vector<OptionSpec> options;  // including inherited ones such as --config
  std::vector<PositionalSpec> positionals;
  std::vector<CommandSpec> subcommands;
};

// The first line of `help`, cut before "; " or " (env " (where a setting's
// help goes on with accepted values and names) and to at most 80
// characters: what fits beside a completion candidate.
std::string ShortHelp(std::string_view help);

// For the renderers: every command in the tree, parents before children, each
// with its path of subcommand names below the root ({} for the root itself,
// {"config", "show"} for `kvctl config show`).
struct CommandAt {
  std::vector<std::string> path;
  const CommandSpec* command = nullptr;
};
std::vector<CommandAt> AllCommands(const CommandSpec& root);

// The path's names joined by `separator`, each preceded by it: " config show".
std::string PathKey(const std::vector<std::string>& path, std::string_view separator = " ");

std::string BashScript(const CommandSpec& root);
std::string ZshScript(const CommandSpec& root);
std::string FishScript(const CommandSpec& root);
// The whole tree as one JSON document (every field above), for tools and the
// tests that check man pages against the declared flags.
std::string JsonTree(const CommandSpec& root);

}  // namespace kvctl::completion
