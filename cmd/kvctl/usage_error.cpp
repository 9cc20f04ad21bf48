#include "cmd/kvctl/usage_error.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/text.h"
#include "lib/core/closest_match.h"

namespace kvctl::cmd {
namespace {

bool StartsWith(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

// The commands chosen on the command line, outermost first: kvctl, config, show.
std::vector<const CLI::App*> Chain(const CLI::App& root) {
  std::vector<const CLI::App*> chain{&root};
  while (!chain.back()->get_subcommands().empty()) chain.push_back(chain.back()->get_subcommands().front());
  return chain;
}

// "kvctl config" for depth 1 of kvctl, config, show.
std::string CommandPath(const std::vector<const CLI::App*>& chain, size_t depth) {
  std::string path = "kvctl";
  for (size_t i = 1; i <= depth; ++i) path += " " + chain[i]->get_name();
  return path;
}

// The flags a command accepts: its own and, since CLI11 hands a flag a
// command does not know to its parent (fallthrough), its parents'.
std::vector<std::string> FlagNames(const std::vector<const CLI::App*>& chain, size_t depth) {
  std::vector<std::string> names;
  for (size_t i = depth + 1; i-- > 0;) {
    for (const CLI::Option* opt : chain[i]->get_options()) {
      if (!opt->nonpositional()) continue;
      for (const std::string& l : opt->get_lnames()) names.push_back("--" + l);
      for (const std::string& s : opt->get_snames()) names.push_back("-" + s);
    }
    if (!chain[i]->get_fallthrough()) break;
  }
  return names;
}

std::vector<std::string> CommandNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (!sub->get_name().empty()) names.push_back(sub->get_name());
  }
  return names;
}

bool Has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// What `flag` (an unknown one) probably meant, or "".
std::string SuggestFlag(const std::string& flag, const std::vector<std::string>& known) {
  // The same words spelt otherwise: --data_dir, --Data-Dir, -data-dir.
  std::string normal;
  for (char c : flag) normal += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (normal.size() > 2 && normal[1] != '-') normal = "-" + normal;
  if (Has(known, normal)) return normal;
  // One letter: the one long flag that starts with it (-v: --version).
  if (flag.size() == 2 && std::isalpha(static_cast<unsigned char>(flag[1]))) {
    std::vector<std::string> starting;
    for (const std::string& k : known) {
      if (StartsWith(k, std::string("--") + flag[1])) starting.push_back(k);
    }
    if (starting.size() == 1) return starting.front();
  }
  // What other tools call it.
  struct Synonym {
    const char* word;
    const char* needs;  // the flag the command must have
    const char* say;
  };
  static constexpr Synonym kSynonyms[] = {
      {"--port", "--listen", "--listen HOST:PORT"},  {"--port", "--addr", "--addr HOST:PORT"},
      {"--host", "--listen", "--listen HOST:PORT"},  {"--host", "--addr", "--addr HOST:PORT"},
      {"--bind", "--listen", "--listen HOST:PORT"},  {"--address", "--listen", "--listen HOST:PORT"},
      {"--address", "--addr", "--addr HOST:PORT"},   {"--server", "--addr", "--addr HOST:PORT"},
      {"--url", "--addr", "--addr URL"},             {"--endpoint", "--addr", "--addr URL"},
      {"--dir", "--data-dir", "--data-dir DIR"},     {"--data", "--data-dir", "--data-dir DIR"},
      {"--json", "--output", "-o json"},             {"--format", "--output", "-o json"},
      {"--verbose", "--log-level", "--log-level debug"}, {"--debug", "--log-level", "--log-level debug"},
  };
  for (const Synonym& s : kSynonyms) {
    if (normal == s.word && Has(known, s.needs)) return s.say;
  }
  // Two characters are too few to tell a typo from another flag.
  return normal.size() > 2 ? core::ClosestMatch(normal, known) : "";
}

// A word as a message shows it: as typed when plain, else quoted with
// escapes (a newline in it must not break the one-line rule).
std::string Shown(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("-_.=/:@+,").find(c) != std::string_view::npos;
  });
  return plain ? word : QuoteBytes(word);
}

// "a whole number" for CLI11's type name of an option.
std::string Kind(const std::string& type_name) {
  if (type_name == "REV") return "a revision, a whole number";
  if (StartsWith(type_name, "UINT")) return "a whole number, 0 or more";
  if (StartsWith(type_name, "INT")) return "a whole number";
  if (StartsWith(type_name, "FLOAT")) return "a number";
  return "a " + type_name;
}

// The first argument CLI11 left over, in the order given, and how many
// commands deep it came (kvctl config shwo: "shwo", 1).
std::optional<std::pair<std::string, size_t>> FirstLeftOver(const std::vector<const CLI::App*>& chain,
                                                            const std::vector<std::string>& args,
                                                            std::vector<std::string> left) {
  size_t depth = 0;
  bool options_ended = false;
  for (const std::string& arg : args) {
    if (auto it = std::find(left.begin(), left.end(), arg); it != left.end()) {
      return std::pair{arg, depth};
    }
    // CLI11 keeps "--name=value" apart as "--name" and "value".
    if (!options_ended && StartsWith(arg, "--") && arg.find('=') != std::string::npos) {
      const std::string name = arg.substr(0, arg.find('='));
      if (std::find(left.begin(), left.end(), name) != left.end()) return std::pair{name, depth};
    }
    if (arg == "--") options_ended = true;
    if (depth + 1 < chain.size() && arg == chain[depth + 1]->get_name()) ++depth;
  }
  return std::nullopt;
}

}  // namespace

std::string UsageErrorLine(const CLI::App& root, const std::vector<std::string>& args, const CLI::ParseError& e) {
  const std::vector<const CLI::App*> chain = Chain(root);
  const std::string message = e.what();

  // A word CLI11 did not take: an unknown flag or command, or one too many.
  if (auto left = FirstLeftOver(chain, args, root.remaining(true))) {
    const auto& [word, depth] = *left;
    const std::string where = CommandPath(chain, depth);
    const bool is_flag = word.size() > 1 && word[0] == '-' && !std::isdigit(static_cast<unsigned char>(word[1]));
    if (is_flag) {
      const std::string flag = word.substr(0, word.find('='));  // --data_dir=x
      const std::string guess = SuggestFlag(flag, FlagNames(chain, depth));
      return fmt::format("unknown flag {} for {} ({}{} --help lists its flags)", Shown(flag), where,
                         guess.empty() ? "" : "did you mean " + guess + "? ", where);
    }
    const std::vector<std::string> commands = CommandNames(*chain[depth]);
    if (!commands.empty()) {
      const std::string unknown =
          fmt::format("unknown command {}{}", QuoteBytes(word), depth == 0 ? "" : " for " + where);
      if (word == "help") {
        return fmt::format("{} ({} --help lists the commands, and {} COMMAND --help describes one)", unknown, where,
                           where);
      }
      const std::string guess = core::ClosestMatch(word, commands);
      return fmt::format("{} ({}{} --help lists its commands)", unknown,
                         guess.empty() ? "" : "did you mean " + guess + "? ", where);
    }
    return fmt::format("unexpected argument {} for {} (see {} --help; quote an argument that holds spaces)",
                       QuoteBytes(word), where, where);
  }

  const size_t depth = chain.size() - 1;
  const std::string where = CommandPath(chain, depth);
  const std::string help = fmt::format("see {} --help", where);
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
    if (StartsWith(message, "A subcommand")) {
      const std::vector<std::string> commands = CommandNames(*chain[depth]);
      if (depth == 0) return fmt::format("no command given ({} lists the commands)", where + " --help");
      return fmt::format("{} needs a command: {} ({})", where, fmt::join(commands, ", "), help);
    }
    if (const size_t end = message.find(" is required"); end != std::string::npos) {
      std::string name = message.substr(0, end);
      if (!StartsWith(name, "-")) std::transform(name.begin(), name.end(), name.begin(), ::toupper);
      return fmt::format("{} needs {} ({})", where, name, help);
    }
  }
  if (dynamic_cast<const CLI::ConversionError*>(&e) != nullptr && StartsWith(message, "Could not convert: ")) {
    // "Could not convert: --if-match = abc"
    const std::string rest = message.substr(std::string_view("Could not convert: ").size());
    const size_t eq = rest.find(" = ");
    if (eq != std::string::npos) {
      const std::string name = rest.substr(0, eq);
      const CLI::Option* opt = chain[depth]->get_option_no_throw(name);
      const std::string kind = opt != nullptr ? Kind(opt->get_type_name()) : "another value";
      return fmt::format("{} takes {}, not {} ({})", name, kind, QuoteBytes(rest.substr(eq + 3)), help);
    }
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr && message.ends_with(" missing")) {
    // "--addr: 1 required TEXT missing"
    return fmt::format("{} needs a value ({})", message.substr(0, message.find(':')), help);
  }
  std::string what = message;
  // A validator's "N: N must be ...": the name once is enough.
  if (const size_t colon = what.find(": "); colon != std::string::npos && colon > 0 &&
      StartsWith(std::string_view(what).substr(colon + 2), what.substr(0, colon) + " ")) {
    what = what.substr(colon + 2);
  }
  for (char& c : what) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return fmt::format("{} ({})", what, help);
}

}  // namespace kvctl::cmd
