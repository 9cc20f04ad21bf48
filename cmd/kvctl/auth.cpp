// kvctl auth hash-token: the SHA-256 of a token, as [[auth.tokens]] wants it.
// The token is read from standard input, never from the command line,
// where other users could see it in ps.
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/command.h"
#include "cmd/kvctl/output.h"
#include "cmd/kvctl/standard_streams.h"
#include "lib/server/auth.h"

namespace kvctl::cmd {
namespace {

// Reads all of stdin; on a terminal, one line with echo off.
core::Result<std::string> ReadToken() {
  if (StandardStreamWasClosed(STDIN_FILENO)) {
    return core::Status::InvalidArgument(
        "cannot read the token from standard input: it is closed (pipe it in: kvctl auth hash-token < token)");
  }
  const bool tty = isatty(STDIN_FILENO) != 0;
  termios saved{};
  if (tty) {
    std::fprintf(stderr, "token (not echoed): ");
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  // A token is a line of text: a few KiB is already far more than one.
  constexpr size_t kMaxToken = 4096;
  std::string token;
  int c = 0;
  while ((c = std::fgetc(stdin)) != EOF && token.size() <= kMaxToken) {
    if (tty && c == '\n') break;
    token.push_back(static_cast<char>(c));
  }
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::fprintf(stderr, "\n");
  }
  if (token.size() > kMaxToken) {
    return core::Status::InvalidArgument(fmt::format(
        "the token on standard input is over {} bytes (give the token itself, e.g. openssl rand "
        "-hex 32)",
        kMaxToken));
  }
  if (std::ferror(stdin)) {
    // Local input: a usage error (exit 2), as with kvctl put.
    return core::Status::InvalidArgument(fmt::format(
        "cannot read the token from standard input: {} (pipe it in: kvctl auth hash-token < token)",
        std::strerror(errno)));
  }
  // `echo TOKEN | kvctl auth hash-token` hashes TOKEN, not TOKEN + newline.
  if (token.ends_with("\r\n")) {
    token.resize(token.size() - 2);
  } else if (token.ends_with('\n')) {
    token.pop_back();
  }
  if (token.empty()) {
    return core::Status::InvalidArgument("no token on standard input (e.g. openssl rand -hex 32 | tee token | kvctl auth hash-token)");
  }
  return token;
}

core::Status RunHashToken() {
  auto token = ReadToken();
  if (!token) return token.error();
  return WriteStdout(server::Sha256Hex(*token) + "\n");
}

}  // namespace

void AddAuthCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* sub = app.add_subcommand("auth", "Helpers for the server's auth settings");
  sub->group(kGroupTools);
  sub->require_subcommand(1, 1);
  CLI::App* hash = sub->add_subcommand(
      "hash-token",
      "Print the SHA-256 of the token on standard input (one trailing newline is ignored), "
      "for sha256 in [[auth.tokens]]");
  hash->callback([&ctx] { ctx.run = [] { return RunHashToken(); }; });
}

}  // namespace kvctl::cmd
