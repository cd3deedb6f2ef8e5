// bench_registry_preflight: what the preflight's registry check costs
// (issue 21), against Debian's docker-registry started here: over HTTPS with
// token auth (a token server of the tests beside it on loopback), and, for
// comparison, over plain HTTP with htpasswd Basic auth (the only kind the
// previous probe spoke). For each, one client checks REPOS repositories
// (manifests that do not exist: the registry answers 404 after the same
// auth as for one that does), each twice.
//
//   bench_registry_preflight [REPOS]     (default 20)
//
// Target: after the first repository, <= 2 round trips per repository (the
// token cached per scope, the challenge remembered per registry); a
// repository asked again, 1. Needs /usr/bin/docker-registry and htpasswd.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/image_ref.h"
#include "registry/registry_client.h"
#include "support/docker_fixture.h"
#include "support/test_ca.h"
#include "support/token_server.h"

namespace sp::bench {
namespace {

double Ms(std::chrono::steady_clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Row {
  double first_ms = 0, next_ms = 0, again_ms = 0;
  int64_t first_trips = 0;
  std::vector<int64_t> next_trips, again_trips;
};

// REPOS repositories through one client: the first, the others, each again.
// nullopt (after saying why) when the registry answers anything but 404.
std::optional<Row> Measure(const std::string& registry, const RegistryClientOptions& o, bool insecure, int repos) {
  RegistryClient client(o);
  const RegistryCredential cred{"bench", "bench-password", {}};
  Row row;
  std::vector<double> next, again;
  for (int i = 0; i < repos; ++i) {
    auto ref = ParseImageRef(registry + "/bench/app" + std::to_string(i) + ":v1");
    const int64_t before = client.requests();
    auto t0 = std::chrono::steady_clock::now();
    auto r = client.ManifestDigest(*ref, cred, insecure);
    const double ms = Ms(std::chrono::steady_clock::now() - t0);
    if (r || r.error().code != ErrorCode::kNotFound) {
      std::fprintf(stderr, "unexpected answer: %s\n", r ? "found" : r.error().message.c_str());
      return std::nullopt;  // The fixtures are ended by their destructors on the way out.
    }
    const int64_t trips = client.requests() - before;
    if (i == 0) {
      row.first_ms = ms;
      row.first_trips = trips;
    } else {
      next.push_back(ms);
      row.next_trips.push_back(trips);
    }
    const int64_t b2 = client.requests();
    t0 = std::chrono::steady_clock::now();
    (void)client.ManifestDigest(*ref, cred, insecure);
    again.push_back(Ms(std::chrono::steady_clock::now() - t0));
    row.again_trips.push_back(client.requests() - b2);
  }
  row.next_ms = Median(next);
  row.again_ms = Median(again);
  return row;
}

void Print(const char* name, const Row& r) {
  const int64_t next_max = r.next_trips.empty() ? 0 : *std::max_element(r.next_trips.begin(), r.next_trips.end());
  const int64_t again_max = *std::max_element(r.again_trips.begin(), r.again_trips.end());
  std::printf("%-26s first: %lld trips %6.2f ms | next repos: max %lld trips, median %6.2f ms | again: max %lld trip, "
              "median %6.2f ms\n",
              name, static_cast<long long>(r.first_trips), r.first_ms, static_cast<long long>(next_max), r.next_ms,
              static_cast<long long>(again_max), r.again_ms);
}

int Main(int repos) {
  const test::TlsFiles& tls = test::SharedTls();
  test::TokenServer::Options to;
  to.user = "bench";
  to.password = "bench-password";
  auto tokens = test::TokenServer::Start(test::SharedCa(), tls, to);
  if (!tokens) return std::fprintf(stderr, "token server: %s\n", tokens.error().message.c_str()), 1;
  auto https = test::RegistryFixture::Start("bench", "bench-password", test::RegistryToken::With((*tokens)->realm(), tls));
  if (!https) return std::fprintf(stderr, "registry: %s\n", https.error().message.c_str()), 1;
  auto plain = test::RegistryFixture::Start("bench", "bench-password");
  if (!plain) return std::fprintf(stderr, "registry: %s\n", plain.error().message.c_str()), 1;
  test::TempDir certs("sp-bench-certs");
  std::filesystem::create_directories(certs.path() + "/" + (*https)->address());
  test::WriteFile(certs.path() + "/" + (*https)->address() + "/ca.crt", test::ReadFile(tls.ca));
  RegistryClientOptions o;
  o.trust.certs_dirs = {certs.path()};

  std::printf("docker-registry 2.8 on loopback, %d repositories, one client each\n", repos);
  const std::optional<Row> with_token = Measure((*https)->address(), o, /*insecure=*/false, repos);
  if (!with_token) return 1;
  const Row& token_row = *with_token;
  Print("HTTPS + token auth", token_row);
  const std::optional<Row> basic = Measure((*plain)->address(), o, /*insecure=*/true, repos);
  if (!basic) return 1;
  Print("plain HTTP + Basic (old)", *basic);
  const int64_t next_max =
      *std::max_element(token_row.next_trips.begin(), token_row.next_trips.end());
  const int64_t again_max = *std::max_element(token_row.again_trips.begin(), token_row.again_trips.end());
  const bool pass = next_max <= 2 && again_max <= 1;
  std::printf("target: <= 2 round trips per repository after the first (token), 1 again: %s (%lld, %lld)\n",
              pass ? "PASS" : "MISS", static_cast<long long>(next_max), static_cast<long long>(again_max));
  std::printf("token server asked %zu times for %d repositories\n", (*tokens)->requests().size(), repos);
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace sp::bench

int main(int argc, char** argv) { return sp::bench::Main(argc > 1 ? std::atoi(argv[1]) : 20); }
