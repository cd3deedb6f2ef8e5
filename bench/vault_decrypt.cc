// bench_vault_decrypt: how fast Ansible Vault values made by `ansible-vault`
// decrypt (issue 17). 1,000 inline values are made by the real
// `ansible-vault encrypt_string` (each with its own salt, as Ansible does),
// then decrypted by VaultDecryptMany on every core and on one. Target: the
// parallel run takes at most 1.1 x (one key derivation x 1,000 / cores),
// the one derivation measured in the same run (median of 50 decryptions).
// Then what a rollout's credentials cost the server when bound to a vault
// value (`credential set --vault`): the first read of a value (one
// derivation), and every later one (the server keeps what it opened until the
// file changes), per host of a 3-host rollout with two vault-bound env values;
// and the same two values stored on the server (versions pinned at the freeze).
//
//   bench_vault_decrypt [VALUES]   (default 1000)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "build/credentials.h"
#include "core/file.h"
#include "deploy/deploy_plan.h"
#include "core/text.h"
#include "secrets/vault.h"
#include "secrets/vault_ref.h"
#include "secrets/vault_yaml.h"
#include "store/sqlite/sqlite_store.h"
#include "support/cli_runner.h"
#include "support/test_util.h"

namespace sp::bench {
namespace {

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The same rollout with its two values stored on the server (`secrets put`):
// the plan's freeze pins their versions (one store read each), then each host
// gets them as an agent would (PlanCredential: the plan, the store's
// versions, the envelope opened once and kept).
int StoredSecrets(const test::TempDir& dir, const std::vector<std::string>& envelopes,
                  const std::vector<VaultSecret>& secrets) {
  auto store = SqliteStore::Open(dir / "state.db");
  if (!store || !(*store)->PutProject(ProjectRecord{"svc", "git://127.0.0.1:9/svc.git", "", 1, "", ""})) return 1;
  BuildRecord b;
  b.project = "svc";
  b.branch = "main";
  b.sha = std::string(40, 'b');
  auto made = (*store)->CreateBuild(b);
  if (!made || !*made) return 1;
  for (int i = 0; i < 2; ++i) {
    if (!(*store)->PutSecret({"svc", "k" + std::to_string(i), "deployment:integration", 0,
                              envelopes[static_cast<size_t>(i)], "bench", 1})) {
      return 1;
    }
  }
  RolloutPlan plan;
  plan.id = "r-bench";
  plan.deployment = "integration";
  plan.build_id = (*made)->id;
  plan.app.env_refs = {{"K0", "credential:k0"}, {"K1", "credential:k1"}};
  const auto t_pin = std::chrono::steady_clock::now();
  if (!PinSecretVersions(**store, plan)) return 1;
  const double pin = MsSince(t_pin);
  CredentialReader read = BoundCredentials(
      **store, WithVaultRefs([](const std::string&) -> Result<std::string> { return std::string(); }, secrets));
  std::vector<double> per_host;
  for (int host = 0; host < 3; ++host) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& [key, ref] : plan.app.env_refs) {
      auto v = PlanCredential(**store, read, plan, CredentialNameOf(ref));
      if (!v || v->rfind("value number ", 0) != 0) {
        std::fprintf(stderr, "stored secret failed: %s\n", v ? "wrong value" : v.error().message.c_str());
        return 1;
      }
    }
    per_host.push_back(MsSince(t0));
  }
  const double total = pin + per_host[0] + per_host[1] + per_host[2];
  std::printf("a 3-host rollout's 2 stored secrets: versions pinned %.2f ms, host 1 %.2f ms, host 2 %.3f ms, "
              "host 3 %.3f ms; %.1f ms in all; target < 20 ms: %s\n",
              pin, per_host[0], per_host[1], per_host[2], total, total < 20 ? "PASS" : "MISS");
  return 0;
}

int Main(int argc, char** argv) {
  const int n = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1000;
  test::TempDir dir("sp-bench-vault");
  if (!WriteNewFile(dir / "pw", "bench password\n", 0600)) return 1;
  std::vector<std::string> args = {"ansible-vault", "encrypt_string", "--vault-password-file", dir / "pw"};
  // Every --name first, then the values in the same order (argparse takes
  // the positional values as one group).
  for (int i = 0; i < n; ++i) args.insert(args.end(), {"--name", "k" + std::to_string(i)});
  for (int i = 0; i < n; ++i) args.push_back("value number " + std::to_string(i));
  std::printf("making %d values with ansible-vault encrypt_string ...\n", n);
  const auto t_make = std::chrono::steady_clock::now();
  auto made = test::RunProgram(args, 600);
  if (made.exit_code != 0) {
    std::fprintf(stderr, "ansible-vault failed: %s\n", made.err.c_str());
    return 1;
  }
  std::printf("ansible-vault made them in %.0f ms\n", MsSince(t_make));
  auto found = FindInlineVaults(made.out);
  if (!found || found->size() != static_cast<size_t>(n)) {
    std::fprintf(stderr, "expected %d values in ansible-vault's output\n", n);
    return 1;
  }
  std::vector<std::string> envelopes;
  for (const auto& v : *found) envelopes.push_back(v.envelope);
  const std::vector<VaultSecret> secrets = {{"", "bench password"}};
  std::vector<double> one;
  for (int i = 0; i < 20; ++i) {  // Warm-up: the first derivations of a process run slower.
    if (!VaultDecrypt(envelopes[static_cast<size_t>(i) % envelopes.size()], secrets)) return 1;
  }
  for (int i = 0; i < 50; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!VaultDecrypt(envelopes[static_cast<size_t>(i) % envelopes.size()], secrets)) return 1;
    one.push_back(MsSince(t0));
  }
  std::sort(one.begin(), one.end());
  const double derivation = one[one.size() / 2];
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  auto timed = [&](unsigned threads) {
    const auto t0 = std::chrono::steady_clock::now();
    auto plain = VaultDecryptMany(envelopes, secrets, threads);
    const double ms = MsSince(t0);
    if (!plain || (*plain)[static_cast<size_t>(n) - 1] != "value number " + std::to_string(n - 1)) {
      std::fprintf(stderr, "decryption failed\n");
      std::exit(1);
    }
    return ms;
  };
  const double serial = timed(1);
  std::vector<double> parallel;
  for (int r = 0; r < 3; ++r) parallel.push_back(timed(cores));
  std::sort(parallel.begin(), parallel.end());
  // One derivation: the smaller of the median single decryption and the
  // serial run's mean (the stricter target).
  const double per_value = std::min(derivation, serial / n);
  const double bound = 1.1 * per_value * n / cores;
  std::printf("one decryption (median of 50, after 20 to warm up): %.2f ms\n", derivation);
  std::printf("%d values, 1 thread: %.0f ms (%.2f ms each)\n", n, serial, serial / n);
  std::printf("%d values, %u threads (median of 3): %.0f ms; target <= 1.1 x %.2f x %d / %u = %.0f ms: %s\n", n, cores,
              parallel[1], per_value, n, cores, bound, parallel[1] <= bound ? "PASS" : "MISS");
  // A rollout's credentials through the server's reader: 3 hosts, each
  // starting its app with two vault-bound values.
  if (!WriteNewFile(dir / "vars.yml", made.out.substr(0, made.out.find("k2: !vault")), 0600)) return 1;
  auto read = WithVaultRefs([](const std::string&) -> Result<std::string> { return std::string(); }, secrets);
  std::vector<double> per_host;
  for (int host = 0; host < 3; ++host) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const char* key : {"#k0", "#k1"}) {
      if (!read("vault:" + dir / "vars.yml" + key)) {
        std::fprintf(stderr, "vault reference failed\n");
        return 1;
      }
    }
    per_host.push_back(MsSince(t0));
  }
  const double total = per_host[0] + per_host[1] + per_host[2];
  std::printf("a 3-host rollout's 2 vault-bound values: host 1 %.2f ms, host 2 %.3f ms, host 3 %.3f ms; "
              "%.1f ms in all; target < 20 ms: %s\n",
              per_host[0], per_host[1], per_host[2], total, total < 20 ? "PASS" : "MISS");
  return StoredSecrets(dir, envelopes, secrets);
}

}  // namespace
}  // namespace sp::bench

int main(int argc, char** argv) { return sp::bench::Main(argc, argv); }
