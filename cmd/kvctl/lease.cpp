// kvctl lease grant TTL | keepalive ID [--once] | revoke ID | show ID | list
// (SPEC §6 "Leases"): the HTTP lease routes, one request each, except
// keepalive without --once, which renews every TTL/3 until Ctrl-C.
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/client_setup.h"
#include "cmd/kvctl/lease_args.h"
#include "cmd/kvctl/output.h"
#include "cmd/kvctl/text.h"

namespace kvctl::cmd {
namespace {

using nlohmann::json;

struct LeaseArgs {
  std::string ttl;
  std::string id;
  bool once = false;
  OutputFormat output = OutputFormat::kText;
};

std::string IdTtlJson(const core::LeaseInfo& lease) {
  return JsonLine(json{{"id", lease.id}, {"ttl", lease.ttl}});
}

core::Status RunGrant(const CommandContext& ctx, const LeaseArgs& args) {
  auto ttl = ParseLeaseTtl(args.ttl, "TTL");
  if (!ttl) return ttl.error();
  auto client = MakeClient(ctx);
  if (!client) return client.error();
  auto lease = (*client)->LeaseGrant(*ttl);
  if (!lease) return lease.error();
  if (args.output == OutputFormat::kJson) return WriteStdout(IdTtlJson(*lease));
  return WriteStdout(fmt::format("{}\n", lease->id));
}

core::Status PrintRenewed(const core::LeaseInfo& lease, OutputFormat output) {
  if (output == OutputFormat::kJson) return WriteStdout(IdTtlJson(lease));
  return WriteStdout(fmt::format("lease {} kept alive for {}s\n", lease.id, lease.ttl));
}

core::Status LeaseGone(uint64_t id, const core::Status& why) {
  return core::Status::NotFound(fmt::format("lease {} is gone: it expired or was revoked ({})", id, why.message()));
}

// Renews every TTL/3 until SIGINT or SIGTERM (exit 0) or the lease is gone
// (exit 1). Both signals are blocked and waited for between renewals, so
// one that comes during a request ends the loop right after it. A server
// that cannot be reached is retried each second until a whole TTL has
// passed since the last renewal: by then the lease has expired (unless the
// server restarted, which starts every TTL again; then it is found again).
core::Status KeepAliveLoop(client::KvClient& client, uint64_t id, OutputFormat output) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  using Clock = std::chrono::steady_clock;
  Clock::time_point renewed = Clock::now();
  std::chrono::milliseconds ttl{0};
  bool outage = false;
  for (;;) {
    auto lease = client.LeaseKeepAlive(id);
    std::chrono::milliseconds pause{1000};
    if (lease) {
      if (outage) std::fprintf(stderr, "kvctl: lease %llu: the server answers again\n", static_cast<unsigned long long>(id));
      outage = false;
      renewed = Clock::now();
      ttl = std::chrono::seconds(lease->ttl);
      if (core::Status s = PrintRenewed(*lease, output); !s.ok()) return s;
      pause = std::max<std::chrono::milliseconds>(ttl / 3, std::chrono::milliseconds(200));
    } else if (lease.error().IsNotFound()) {
      return LeaseGone(id, lease.error());
    } else if (!lease.error().IsUnavailable() || ttl.count() == 0 || Clock::now() - renewed > ttl) {
      return lease.error();
    } else if (!outage) {
      outage = true;
      std::fprintf(stderr, "kvctl: lease %llu: cannot renew, retrying: %s\n", static_cast<unsigned long long>(id),
                   lease.error().message().c_str());
    }
    const timespec wait{static_cast<time_t>(pause.count() / 1000), static_cast<long>(pause.count() % 1000) * 1000000};
    if (sigtimedwait(&stop, nullptr, &wait) > 0) return core::Status::Ok();
  }
}

core::Status RunKeepAlive(const CommandContext& ctx, const LeaseArgs& args) {
  auto id = ParseLeaseId(args.id);
  if (!id) return id.error();
  auto client = MakeClient(ctx);
  if (!client) return client.error();
  if (!args.once) return KeepAliveLoop(**client, *id, args.output);
  auto lease = (*client)->LeaseKeepAlive(*id);
  if (!lease) return lease.error();
  return PrintRenewed(*lease, args.output);
}

core::Status RunRevoke(const CommandContext& ctx, const LeaseArgs& args) {
  auto id = ParseLeaseId(args.id);
  if (!id) return id.error();
  auto client = MakeClient(ctx);
  if (!client) return client.error();
  auto revision = (*client)->LeaseRevoke(*id);
  if (!revision) return revision.error();
  if (args.output == OutputFormat::kJson) return WriteStdout(JsonLine(json{{"id", *id}, {"revision", *revision}}));
  return core::Status::Ok();
}

core::Status RunShow(const CommandContext& ctx, const LeaseArgs& args) {
  auto id = ParseLeaseId(args.id);
  if (!id) return id.error();
  auto client = MakeClient(ctx);
  if (!client) return client.error();
  auto lease = (*client)->LeaseShow(*id);
  if (!lease) return lease.error();
  if (args.output == OutputFormat::kJson) {
    json keys = json::array();
    for (const std::string& key : lease->keys) {
      json k = json::object();
      SetJsonKey(k, key);
      keys.push_back(std::move(k));
    }
    return WriteStdout(JsonLine(
        json{{"id", lease->id}, {"ttl", lease->ttl}, {"remaining", lease->remaining}, {"keys", std::move(keys)}}));
  }
  std::string out = fmt::format("id {}\nttl {}\nremaining {}\n", lease->id, lease->ttl, lease->remaining);
  const bool terminal = StdoutIsTerminal();
  for (const std::string& key : lease->keys) {
    out += fmt::format("key {}\n", terminal && !IsPrintableText(key) ? QuoteBytes(key) : key);
  }
  return WriteStdout(out);
}

core::Status RunList(const CommandContext& ctx, const LeaseArgs& args) {
  auto client = MakeClient(ctx);
  if (!client) return client.error();
  auto leases = (*client)->Leases();
  if (!leases) return leases.error();
  if (args.output == OutputFormat::kJson) {
    json all = json::array();
    for (const core::LeaseInfo& l : *leases) {
      all.push_back(json{{"id", l.id}, {"ttl", l.ttl}, {"remaining", l.remaining}});
    }
    return WriteStdout(JsonLine(json{{"leases", std::move(all)}}));
  }
  std::string out;
  for (const core::LeaseInfo& l : *leases) out += fmt::format("{} ttl {} remaining {}\n", l.id, l.ttl, l.remaining);
  return WriteStdout(out);
}

}  // namespace

void AddLeaseCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<LeaseArgs>();
  CLI::App* lease = app.add_subcommand(
      "lease", "Grant, renew, revoke and show leases: keys put with a lease are deleted when it ends");
  lease->group(kGroupClient);
  lease->require_subcommand(1, 1);
  AddOutputOption(*lease, args->output);
  config::AddSettingFlags(*lease, config::Scope::kClient, ctx.flags);
  lease->footer("A lease not kept alive expires after its TTL; its keys are then deleted in one revision.\n"
                "An id that is not alive exits 1, like a key not found.");

  CLI::App* grant = lease->add_subcommand("grant", "Grant a lease of TTL and print its id");
  grant->add_option("ttl", args->ttl, "Seconds, or a duration: 30s, 5m, 1h (1s to 1 year)")
      ->required()
      ->type_name("TTL");
  grant->fallthrough();
  grant->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunGrant(ctx, *args); }; });

  CLI::App* keepalive = lease->add_subcommand(
      "keepalive", "Renew lease ID every TTL/3 until Ctrl-C (exit 0) or until it is gone (exit 1)");
  keepalive->add_option("id", args->id, "The lease id")->required()->type_name("ID");
  keepalive->add_flag("--once", args->once, "Renew once and exit");
  keepalive->fallthrough();
  keepalive->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunKeepAlive(ctx, *args); }; });

  CLI::App* revoke = lease->add_subcommand("revoke", "End lease ID now, deleting its keys in one revision");
  revoke->add_option("id", args->id, "The lease id")->required()->type_name("ID");
  revoke->fallthrough();
  revoke->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunRevoke(ctx, *args); }; });

  CLI::App* show = lease->add_subcommand("show", "Print lease ID's TTL, the seconds it has left, and its keys");
  show->add_option("id", args->id, "The lease id")->required()->type_name("ID");
  show->fallthrough();
  show->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunShow(ctx, *args); }; });

  CLI::App* list = lease->add_subcommand("list", "Print every lease alive: id, TTL, seconds left");
  list->fallthrough();
  list->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunList(ctx, *args); }; });
}

}  // namespace kvctl::cmd
