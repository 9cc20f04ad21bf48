// What to say when CLI11 cannot parse a command line: which word it did not
// understand, where, and what was probably meant, as config keys get
// ("did you mean"). CLI11's own messages name its internals ("Check yaml
// value in {json->1,text->0} OR {1,0} FAILED"), list the leftover words in
// reverse ("17105 --port") and say "A subcommand is required" for a
// misspelt one.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
class ParseError;
}  // namespace CLI

namespace kvctl::cmd {

// "<what> (<hint>)" for the error `e` that `root.parse(args)` threw; `args`
// are the arguments after the program name. The hint names the help of the
// command the error is about (kvctl config --help).
std::string UsageErrorLine(const CLI::App& root, const std::vector<std::string>& args, const CLI::ParseError& e);

}  // namespace kvctl::cmd
