#include "support/server_process.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>

#include "core/text.h"
#include "store/sqlite/sqlite_store.h"
#include "support/cli_runner.h"
#include "support/test_ca.h"

namespace sp::test {

ServerProcess::ServerProcess(const TempDir& dir, const std::string& store, const std::string& name,
                             const std::vector<std::string>& extra_args, Transport transport,
                             const std::string& binary, const std::map<std::string, std::string>& env)
    : tls_(transport == Transport::kTls) {
  log_ = dir / (name + ".log");
  if (AdminToken(store).empty()) return;
  std::vector<std::string> argv{binary.empty() ? BuildBinary("sallyport") : binary, "server", "--store", store, "--listen", "127.0.0.1:0"};
  if (tls_) {
    const TlsFiles& tls = SharedTls();
    if (tls.cert.empty()) return;
    argv.insert(argv.end(), {"--tls-cert", tls.cert, "--tls-key", tls.key});
  }
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  daemon_ = Daemon(argv, log_, env);
  const std::string marker = tls_ ? "listening on https://127.0.0.1:" : "listening on http://127.0.0.1:";
  if (WaitForStart(daemon_, [&] { return ReadFile(log_).find(marker) != std::string::npos; },
                   std::chrono::seconds(10)) != StartWait::kReady) {
    return;
  }
  const std::string log = ReadFile(log_);
  port_ = std::atoi(log.c_str() + log.find(marker) + marker.size());
}

httplib::Client ServerProcess::Client() const {
  httplib::Client c(url());
  if (tls_) {
    c.set_ca_cert_path(SharedTls().ca.c_str());
    c.enable_server_certificate_verification(true);
  }
  return c;
}

std::string AdminToken(const std::string& store) {
  const std::string file = store + ".admin-token";
  std::string token = Trim(ReadFile(file));
  if (token.empty()) {
    auto r = RunSallyport({"token", "create", "--name", "test-admin", "--scope", "admin", "--store", store, "--local"});
    if (r.exit_code != 0) return "";
    token = Trim(r.out);
    WriteFile(file, token + "\n", 0600);
  }
  ::setenv("SALLYPORT_TOKEN", token.c_str(), 1);
  return token;
}

std::string Bearer() {
  const char* t = std::getenv("SALLYPORT_TOKEN");
  return std::string("Bearer ") + (t ? t : "");
}

std::string CreateAgentToken(const TempDir& dir, const std::string& store, const std::string& name,
                             const std::string& label) {
  auto r = RunSallyport({"token", "create", "--name", name, "--label", label, "--store", store, "--local"});
  if (r.exit_code != 0) return "";
  const std::string path = dir / (name + ".token");
  WriteFile(path, Trim(r.out) + "\n", 0600);
  return path;
}

std::string CreateApiToken(const std::string& store, const std::string& name, const std::vector<std::string>& scopes) {
  std::vector<std::string> args{"token", "create", "--name", name, "--store", store, "--local"};
  for (const auto& s : scopes) args.insert(args.end(), {"--scope", s});
  auto r = RunSallyport(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? Trim(r.out) : "";
}

std::vector<RouteLine> PrintedRoutes(const std::string& store) {
  auto printed = RunSallyport({"server", "--routes", "--store", store});
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  std::vector<RouteLine> routes;
  for (const auto& line : Split(Trim(printed.out), '\n')) {
    std::vector<std::string> f;
    for (const auto& w : Split(line, ' ')) {
      if (!w.empty()) f.push_back(w);
    }
    EXPECT_EQ(f.size(), 3u) << line;
    if (f.size() == 3) routes.push_back({f[0], f[1], f[2]});
  }
  return routes;
}

int64_t RecordBuild(const std::string& store, const std::string& project, char sha_fill, BuildStatus status,
                    const std::string& artifact, const std::string& config) {
  auto s = SqliteStore::Open(store);
  EXPECT_TRUE(s) << s.error().message;
  if (!s) return 0;
  BuildRecord b;
  b.project = project;
  b.branch = "main";
  b.sha = std::string(40, sha_fill);
  b.trigger = "manual";
  auto made = (*s)->CreateBuild(b);
  EXPECT_TRUE(made && *made);
  if (!made || !*made) return 0;
  b = **made;
  b.status = status;
  b.artifact = artifact;
  EXPECT_TRUE((*s)->UpdateBuild(b));
  if (!config.empty()) {
    EXPECT_TRUE((*s)->PutBuildConfig(b.id, config));
  }
  return b.id;
}

nlohmann::json WaitForEndedBuild(const ServerProcess& server, const std::function<bool(const nlohmann::json&)>& which,
                                 std::chrono::seconds timeout) {
  nlohmann::json found;
  WaitFor(
      [&] {
        httplib::Client c = server.Client();
        c.set_default_headers({{"Authorization", Bearer()}});
        auto r = c.Get("/v1/builds");
        if (!r) return false;
        const nlohmann::json all = nlohmann::json::parse(r->body, nullptr, false);
        if (!all.is_object() || !all.contains("builds")) return false;
        for (const auto& b : all["builds"]) {
          const std::string s = b.value("status", "");
          if (s != "queued" && s != "running" && which(b)) {
            found = b;
            return true;
          }
        }
        return false;
      },
      timeout, std::chrono::milliseconds(50));
  return found;
}

}  // namespace sp::test
