// bench_token_check: what checking a bearer token costs a request (issue 14).
// The router, in this process, on a SQLite file store holding `tokens` API
// tokens, answers a trivial route two ways, alternating in rounds: public
// (no token) and read (the token hashed, looked up in the store, its scopes
// checked). The difference per request is the token check.
//
//   build/bin/bench_token_check [requests=200000] [tokens=1000]
//
// Target: <= 50 us per request. Both the server's TokenCache and the
// uncached store read (what the cache saves), in the same run.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/digest.h"
#include "server/api_server.h"
#include "store/sqlite/sqlite_store.h"
#include "support/test_util.h"

using namespace sp;

int Measure(http::Router::Authenticate authenticate, const char* mode, int requests, int count);

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::atoi(argv[1]) : 200000;
  const int count = argc > 2 ? std::atoi(argv[2]) : 1000;
  test::TempDir dir("sp-bench-token");
  auto store = SqliteStore::Open(dir / "state.db");
  if (!store) return 2;
  for (int i = 0; i < count; ++i) {
    auth::ApiToken t;
    t.name = "t" + std::to_string(i);
    t.scopes = {"read", "deploy:demo/dev"};
    if (!(*store)->PutApiToken(Sha256Hex("secret-" + std::to_string(i)), t)) return 2;
  }
  ApiServerOptions o;
  o.clock = &RealClock::Instance();
  o.auth = store->get();
  o.queue = store->get();
  TokenCache cache(o);
  // The server's cached check, then the store read at every request.
  for (const bool cached : {true, false}) {
    if (int rc = Measure(cached ? cache.Authenticator() : MakeAuthenticator(o), cached ? "cached  " : "uncached",
                         requests, count)) {
      return rc;
    }
  }
  return 0;
}

int Measure(http::Router::Authenticate authenticate, const char* mode, int requests, int count) {
  http::Router router(std::move(authenticate));
  auto ok = [](const http::Request&, http::Response& res) { res.status = 204; };
  router.Add({{http::Method::kGet, "/open", http::Access::Public(), ok},
              {http::Method::kGet, "/read", http::Access::Read(), ok}});
  http::Request open, read;
  open.path = "/open";
  read.path = "/read";
  read.headers["authorization"] = "Bearer secret-" + std::to_string(count / 2);
  double open_s = 0, read_s = 0;
  const int rounds = 10, per = requests / rounds;
  for (int r = 0; r < rounds; ++r) {
    for (auto [req, total] : {std::pair{&open, &open_s}, std::pair{&read, &read_s}}) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < per; ++i) {
        if (router.Handle(*req).status != 204) {
          std::fprintf(stderr, "refused\n");
          return 1;
        }
      }
      *total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  }
  const double n = static_cast<double>(per) * rounds;
  const double open_us = open_s / n * 1e6, read_us = read_s / n * 1e6, check_us = read_us - open_us;
  std::printf("%s %d requests each, %d tokens in the store\n", mode, per * rounds, count);
  std::printf("%s public route: %.2f us/request; with a token: %.2f us/request\n", mode, open_us, read_us);
  std::printf("%s token check: %.2f us/request %s (target <= 50 us)\n", mode, check_us, check_us <= 50 ? "PASS" : "MISS");
  return 0;
}
