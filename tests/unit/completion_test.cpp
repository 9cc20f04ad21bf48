// Tests for lib/completion: labels, help lines, and the scripts' structure.
// The scripts are run in real shells by tests/shell/completion_test.sh.
#include "lib/completion/command_tree.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

namespace kvctl::completion {
namespace {

CommandSpec SmallTree() {
  OptionSpec output{{"-o", "--output"}, "Output format: text or json", true, "{text,json}",
                    ValueFromLabel("{text,json}")};
  OptionSpec dir{{"--data-dir"}, "directory (env X)", true, "DIR", ValueFromLabel("DIR")};
  CommandSpec show{"show", "Show it", "", {output}, {}, {}};
  CommandSpec config{"config", "Config things", "Tools", {}, {}, {show}};
  CommandSpec serve{"serve", "Run it", "Server", {dir}, {}, {}};
  return CommandSpec{"kvctl", "root", "", {{{"-h", "--help"}, "help", false, "", {}}}, {}, {serve, config}};
}

TEST_CASE("type labels say what a value completes to") {
  CHECK(ValueFromLabel("{a,b,c}").kind == ValueKind::kWords);
  CHECK(ValueFromLabel("{a,b,c}").words == std::vector<std::string>{"a", "b", "c"});
  CHECK(ValueFromLabel("FILE").kind == ValueKind::kFile);
  CHECK(ValueFromLabel("PATH").kind == ValueKind::kFile);
  CHECK(ValueFromLabel("DIR").kind == ValueKind::kDir);
  CHECK(ValueFromLabel("INT").kind == ValueKind::kNone);
  CHECK(ChoicesLabel({"x", "y"}) == "{x,y}");
  CHECK(ValueFromLabel(ChoicesLabel({"x", "y"})).words == std::vector<std::string>{"x", "y"});
}

TEST_CASE("short help stops before a remark and fits beside a candidate") {
  CHECK(ShortHelp("server to talk to (env KVCTL_CLIENT_ADDR)") == "server to talk to");
  CHECK(ShortHelp("Set KEY (or stdin)") == "Set KEY (or stdin)");
  CHECK(ShortHelp("worker threads; each open keep-alive connection holds one") == "worker threads");
  CHECK(ShortHelp(std::string(100, 'a')).size() == 80);
}

TEST_CASE("every command is visited with its path, parents first") {
  std::vector<CommandAt> all = AllCommands(SmallTree());
  REQUIRE(all.size() == 4);
  CHECK(all[0].path.empty());
  CHECK(PathKey(all[3].path) == " config show");
}

TEST_CASE("the JSON tree carries every command, option and value choice") {
  nlohmann::json j = nlohmann::json::parse(JsonTree(SmallTree()));
  CHECK(j["subcommands"][0]["name"] == "serve");
  CHECK(j["subcommands"][0]["group"] == "Server");
  CHECK(j["subcommands"][0]["options"][0]["value"]["kind"] == "dir");
  CHECK(j["subcommands"][1]["subcommands"][0]["options"][0]["value"]["words"][1] == "json");
}

TEST_CASE("each script names every subcommand path and value choice") {
  for (const std::string& script : {BashScript(SmallTree()), ZshScript(SmallTree()), FishScript(SmallTree())}) {
    CHECK(script.find("serve") != std::string::npos);
    CHECK(script.find("show") != std::string::npos);
    CHECK(script.find("text json") != std::string::npos);
    const bool data_dir = script.find("--data-dir") != std::string::npos ||
                          script.find("-l data-dir") != std::string::npos;
    CHECK(data_dir);
  }
}

}  // namespace
}  // namespace kvctl::completion
