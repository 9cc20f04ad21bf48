// kvctl completion bash|zsh|fish|json: the completion script for a shell,
// made from the subcommands and options this binary declares, so a new
// subcommand or flag is completed without anyone writing completion code.
#include <algorithm>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/command.h"
#include "cmd/kvctl/output.h"
#include "cmd/kvctl/text.h"
#include "lib/completion/command_tree.h"

namespace kvctl::cmd {
namespace {

const std::vector<std::string> kShells = {"bash", "zsh", "fish", "json"};

completion::OptionSpec DescribeOption(const CLI::Option& opt) {
  completion::OptionSpec spec;
  for (const std::string& s : opt.get_snames()) spec.names.push_back("-" + s);
  for (const std::string& l : opt.get_lnames()) spec.names.push_back("--" + l);
  spec.help = opt.get_description();
  spec.takes_value = opt.get_items_expected_max() > 0;  // flags expect 0 items
  if (spec.takes_value) {
    spec.label = opt.get_type_name();
    spec.value = completion::ValueFromLabel(spec.label);
  }
  return spec;
}

// `inherited`: the parent's options this command accepts too (CLI11 passes
// options it does not know up to the parent when fallthrough is on).
completion::CommandSpec Describe(const CLI::App& app, const std::vector<completion::OptionSpec>& inherited) {
  completion::CommandSpec spec;
  spec.name = app.get_parent() == nullptr ? "kvctl" : app.get_name();
  spec.help = app.get_description();
  spec.group = app.get_parent() == nullptr ? "" : app.get_group();
  std::vector<completion::OptionSpec> passed_down;
  for (const CLI::Option* opt : app.get_options()) {
    if (!opt->nonpositional()) {
      spec.positionals.push_back({opt->get_name(), opt->get_description(), opt->get_type_name(),
                                  completion::ValueFromLabel(opt->get_type_name())});
      continue;
    }
    spec.options.push_back(DescribeOption(*opt));
    if (opt != app.get_help_ptr() && opt != app.get_version_ptr()) passed_down.push_back(spec.options.back());
  }
  for (const completion::OptionSpec& o : inherited) {
    spec.options.push_back(o);
    passed_down.push_back(o);
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name().empty()) continue;  // option groups, not subcommands
    spec.subcommands.push_back(
        Describe(*sub, sub->get_fallthrough() ? passed_down : std::vector<completion::OptionSpec>{}));
  }
  return spec;
}

std::string Render(const std::string& shell, const completion::CommandSpec& root) {
  if (shell == "bash") return completion::BashScript(root);
  if (shell == "zsh") return completion::ZshScript(root);
  if (shell == "fish") return completion::FishScript(root);
  return completion::JsonTree(root);
}

}  // namespace

void AddCompletionCommand(CLI::App& app, CommandContext& ctx) {
  auto shell = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "completion", "Print the completion script for bash, zsh or fish (json: the command tree)");
  sub->group(kGroupTools);
  sub->add_option("shell", *shell, "bash, zsh, fish, or json for the command tree")
      ->required()
      ->type_name(completion::ChoicesLabel(kShells))
      ->check(CLI::Validator(
          [](std::string& name) -> std::string {
            if (std::find(kShells.begin(), kShells.end(), name) != kShells.end()) return {};
            return fmt::format("shell must be bash, zsh, fish or json, not {}", QuoteBytes(name));
          },
          ""));
  sub->footer(
      "To install it (the Debian package installs all three where the shells look):\n"
      "  bash, this shell:  source <(kvctl completion bash)\n"
      "  bash, every shell: add that line to ~/.bashrc\n"
      "  zsh:  kvctl completion zsh > ~/.zfunc/_kvctl, with fpath+=(~/.zfunc) before compinit in ~/.zshrc\n"
      "  fish: kvctl completion fish > ~/.config/fish/completions/kvctl.fish");
  const CLI::App* root = &app;
  sub->callback([&ctx, root, shell] {
    ctx.run = [root, shell] { return WriteStdout(Render(*shell, Describe(*root, {}))); };
  });
}

}  // namespace kvctl::cmd
