// hosts trust: scan the bastion (from here) and every host of the deployment
// (from the bastion, whose key must be trusted first), print the
// fingerprints, append new keys; a changed key is refused, never replaced.
#include <cstdio>
#include <cstdlib>
#include <set>

#include "cli/command.h"
#include "config/service_config.h"
#include "inventory/inventory.h"
#include "transport/ssh/host_keys.h"

namespace sp::cli {

namespace {

// Prints and records the keys one endpoint offers; false after an error.
class KeyRecorder {
 public:
  explicit KeyRecorder(std::string known_hosts) : kh_(std::move(known_hosts)) {}
  bool Handle(const std::string& who, Result<std::vector<ssh::OfferedKey>> keys) {
    if (!keys) {
      std::fprintf(stderr, "error: %s: %s\n", who.c_str(), keys.error().message.c_str());
      return false;
    }
    ssh::CompareWithKnownHosts(kh_, &*keys);
    std::vector<ssh::OfferedKey> fresh;
    for (const auto& k : *keys) {
      const char* state = k.state == ssh::OfferedKey::kKnown ? "known  "
                          : k.state == ssh::OfferedKey::kNew ? "added  "
                                                             : "CHANGED";
      std::printf("%s %-10s %-22s %s %s\n", state, who.c_str(), k.name.c_str(), k.type.c_str(), k.fingerprint.c_str());
      if (k.state == ssh::OfferedKey::kNew) fresh.push_back(k);
      if (k.state == ssh::OfferedKey::kChanged) ++changed;
    }
    if (auto s = ssh::AppendKnownHosts(kh_, fresh); !s) {
      std::fprintf(stderr, "error: %s\n", s.error().message.c_str());
      return false;
    }
    added += static_cast<int>(fresh.size());
    return true;
  }
  int changed = 0, added = 0;

 private:
  std::string kh_;
};

}  // namespace

int HostsTrust(Context& ctx) {
  const Args& a = ctx.a;
  auto inv = LoadInventory(a.inventory);
  if (!inv) return Fail(inv.error());
  std::string stack = a.stack;
  if (stack.empty()) {
    auto svc = LoadServiceConfig(a.config);
    if (!svc) return Fail({ErrorCode::kInvalidArgument, "--stack is required (" + svc.error().message + ")"});
    stack = svc->stack;
  }
  auto st = inv->stacks.find(stack);
  if (st == inv->stacks.end()) return Fail({ErrorCode::kNotFound, "stack '" + stack + "' not in " + a.inventory});
  auto dep = st->second.deployments.find(a.deployment);
  if (dep == st->second.deployments.end()) {
    return Fail({ErrorCode::kNotFound, "deployment '" + a.deployment + "' not in stack '" + stack + "'"});
  }
  const DeploymentSpec& d = dep->second;
  std::string kh = a.known_hosts.empty() ? d.ssh.known_hosts : a.known_hosts;
  if (kh.empty()) {
    const char* home = std::getenv("HOME");
    kh = std::string(home ? home : "/root") + "/.ssh/known_hosts";
  }
  KeyRecorder rec(kh);
  bool ok = true;
  std::unique_ptr<SshTransport> via;
  if (d.bastion) {
    ok &= rec.Handle("bastion", ssh::ScanHostKeys(d.bastion->address, d.bastion->port, nullptr));
    SshOptions o = SshOptionsFor(d.bastion, d.ssh);
    o.known_hosts = kh;
    via = std::make_unique<SshTransport>(o);
  }
  std::set<std::string> seen;
  for (const auto& [rname, rel] : d.releases) {
    if (!a.release.empty() && rname != a.release) continue;
    for (const HostSpec& h : rel.hosts) {
      if (!seen.insert(h.address + ":" + std::to_string(h.ssh_port)).second) continue;
      ok &= rec.Handle(h.name, ssh::ScanHostKeys(h.address, h.ssh_port, via.get()));
    }
  }
  std::printf("%d key(s) added to %s\n", rec.added, kh.c_str());
  if (rec.changed) {
    std::fprintf(stderr,
                 "error: %d host key(s) CHANGED: nothing was replaced. If the change is expected, remove the old "
                 "entries (ssh-keygen -R <name> -f %s) and run `sallyport hosts trust` again\n",
                 rec.changed, kh.c_str());
    return kExitFailed;
  }
  return ok ? kExitOk : kExitFailed;
}

}  // namespace sp::cli
