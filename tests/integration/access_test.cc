// Who may call what, attacked from outside: a real `sallyport server`
// process, its route table as the server itself prints it (`server
// --routes`), every route called over HTTP anonymous, with a bad token,
// with scopes that do not grant it and with one that does; the attacks of
// issue 14 that a scope stops, each leaving its marker file uncreated; a
// revocation seen by a second server process on the same store.
#include <httplib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "store/sqlite/sqlite_store.h"
#include "support/cli_runner.h"
#include "support/route_paths.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

class AccessIT : public ::testing::Test {
 protected:
  void SetUp() override {
    // Objects the routes name: build 1 of project web, rollout job 1 in demo/dev.
    {
      auto store = SqliteStore::Open(db_);
      ASSERT_TRUE(store);
      BuildRecord b;
      b.project = "web";
      b.branch = "main";
      b.sha = std::string(40, 'a');
      b.trigger = "manual";
      ASSERT_TRUE((*store)->CreateBuild(b));
      ASSERT_TRUE((*store)->PutBuildConfig(1, "version: 1\nservice: web\nstack: demo\nreleases:\n  web:\n"
                                               "    runtime: process\n    port: 8080\n"));
      JobSpec spec;
      spec.kind = "rollout";
      spec.payload = R"({"stack":"demo","release":"web","deployment":"dev"})";
      spec.labels = {{"network", "dev"}};
      ASSERT_TRUE((*store)->Enqueue(spec, 1));
    }
    server_ = std::make_unique<ServerProcess>(dir_, db_, "server", std::vector<std::string>{"--poll-every", "0"});
    ASSERT_TRUE(server_->ready()) << server_->Log();
    routes_ = PrintedRoutes(db_);
    ASSERT_FALSE(routes_.empty());
  }
  std::string Token(const std::string& name, const std::vector<std::string>& scopes) {
    return CreateApiToken(db_, name, scopes);
  }
  httplib::Result Call(const RouteLine& r, const std::string& token, const ServerProcess* server = nullptr) {
    httplib::Client c = (server ? *server : *server_).Client();
    c.set_read_timeout(10, 0);
    if (!token.empty()) c.set_default_headers({{"Authorization", "Bearer " + token}});
    const std::string path = PathFor(r.pattern);
    const std::string body =
        R"({"project": "web", "user": "ben", "build": 1, "stack": "demo", "release": "web", "deployment": "dev"})";
    if (r.method == "GET") return c.Get(path);
    if (r.method == "PUT") return c.Put(path, body, "application/json");
    if (r.method == "DELETE") return c.Delete(path);
    return c.Post(path, body, "application/json");
  }
  int Status(const RouteLine& r, const std::string& token) {
    auto res = Call(r, token);
    return res ? res->status : -1;
  }
  TempDir dir_{"sp-access-it"};
  const std::string db_ = dir_ / "state.db";
  std::unique_ptr<ServerProcess> server_;
  std::vector<RouteLine> routes_;
};

TEST_F(AccessIT, EveryRouteOfTheTableIs401Anonymous403WithAWrongScopeAndServedWithTheRightOne) {
  // The least scope each need is granted by, on the objects SetUp made.
  const std::map<std::string, std::string> right = {{"read", "read"},
                                                    {"build", "build:web"},
                                                    {"deploy", "deploy:demo/dev"},
                                                    {"inventory:write", "inventory:write"},
                                                    {"secrets", "secrets:*"},
                                                    {"admin", "admin"}};
  const std::map<std::string, std::vector<std::string>> wrong = {
      {"read", {"inventory:write", "read:other"}},
      {"build", {"read", "build:other"}},
      {"deploy", {"read", "inventory:write", "deploy:demo/prod"}},
      {"inventory:write", {"read", "deploy:*/*"}},
      {"secrets", {"read", "build:*", "inventory:write", "secrets:other"}},
      {"admin", {"read", "inventory:write", "build:*", "deploy:*/*"}}};
  std::map<std::string, std::string> tokens;
  auto token = [&](const std::string& scope) {
    if (!tokens.count(scope)) tokens[scope] = Token("t" + std::to_string(tokens.size()), {scope});
    return tokens[scope];
  };
  int walked = 0;
  for (const auto& r : routes_) {
    const std::string what = r.method + " " + r.pattern;
    if (r.need == "public" || r.need == "agent") {
      EXPECT_TRUE(r.pattern == "/v1/health" || r.pattern == "/v1/login" || StartsWith(r.pattern, "/hooks/") ||
                  StartsWith(r.pattern, "/v1/agent/"))
          << what << " is open to " << r.need;
      if (r.need == "agent") {
        EXPECT_EQ(Status(r, ""), 401) << what;
      }
      continue;
    }
    ASSERT_TRUE(right.count(r.need)) << what << ": a route without a known scope (" << r.need << ")";
    ++walked;
    EXPECT_EQ(Status(r, ""), 401) << what;
    EXPECT_EQ(Status(r, "spt_" + std::string(64, '0')), 401) << what;
    for (const auto& w : wrong.at(r.need)) EXPECT_EQ(Status(r, token(w)), 403) << what << " with " << w;
    const int ok = Status(r, token(right.at(r.need)));
    EXPECT_TRUE(ok != 401 && ok != 403 && ok > 0) << what << " with " << right.at(r.need) << ": " << ok;
  }
  EXPECT_GE(walked, 30);
}

// The attacks an open server allowed, each stopped by a scope before any
// handler; the markers they aim to create stay absent.
TEST_F(AccessIT, SubmittedPlansSourceCommandsAndHooksNeedAdminAndLeaveNoMarker) {
  const std::string marker = dir_ / "pwned";
  const std::string deployer = Token("deployer", {"deploy:*/*", "read"});
  const std::string editor = Token("editor", {"inventory:write"});
  httplib::Client c = server_->Client();
  // A job whose payload an agent would execute.
  c.set_default_headers({{"Authorization", "Bearer " + deployer}});
  auto job = c.Post("/v1/jobs", json{{"kind", "hook"}, {"payload", "touch " + marker}}.dump(), "application/json");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->status, 403) << job->body;
  // A dynamic source whose command the server would run at the next resolve.
  c.set_default_headers({{"Authorization", "Bearer " + editor}});
  const std::string yaml = "version: 1\nstacks:\n  demo:\n    deployments:\n      dev:\n        network: dev\n"
                           "        source: {command: [touch, " + marker + "]}\n        releases: {}\n";
  auto applied = c.Post("/v1/inventory/apply", yaml, "text/yaml");
  ASSERT_TRUE(applied);
  EXPECT_EQ(applied->status, 403) << applied->body;
  EXPECT_THAT(applied->body, HasSubstr("admin"));
  auto put = c.Put("/v1/stacks/demo/deployments/dev",
                   json{{"network", "dev"}, {"releases", json::object()}, {"source", {{"command", {"touch", marker}}}}}.dump(),
                   "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 403) << put->body;
  // Hooks: commands and calls an agent would make inside its network.
  const json hook = {{"name", "x"}, {"command", {"touch", marker}}};
  auto hooked = c.Put("/v1/stacks/demo/deployments/dev",
                      json{{"network", "dev"}, {"releases", json::object()}, {"hooks", {{"pre_rollout", {hook}}}}}.dump(),
                      "application/json");
  ASSERT_TRUE(hooked);
  EXPECT_EQ(hooked->status, 403) << hooked->body;
  auto hooked_apply = c.Post("/v1/inventory/apply",
                             "version: 1\nstacks:\n  demo:\n    deployments:\n      dev:\n        network: dev\n"
                             "        hooks: {post_host: [{name: x, command: [touch, " + marker + "]}]}\n"
                             "        releases: {}\n", "text/yaml");
  ASSERT_TRUE(hooked_apply);
  EXPECT_EQ(hooked_apply->status, 403) << hooked_apply->body;
  EXPECT_THAT(hooked_apply->body, HasSubstr("admin"));
  // A resolve (by a holder of read) would run a source, had one been set.
  c.set_default_headers({{"Authorization", "Bearer " + deployer}});
  auto resolve = c.Get("/v1/resolve?stack=demo&release=web&deployment=dev");
  ASSERT_TRUE(resolve);
  EXPECT_NE(resolve->status, 401);
  EXPECT_NE(resolve->status, 403);
  EXPECT_FALSE(FileExists(marker));
  // The audit trail has each refusal, with who and from where.
  auto audit = RunSallyport({"audit", "list", "--store", db_, "--local", "--output", "json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  auto rows = json::parse(audit.out)["audit"];
  int refused = 0;
  for (const auto& row : rows) {
    if (row["status"] == 403 && row["from"] == "127.0.0.1") ++refused;
  }
  EXPECT_EQ(refused, 5) << audit.out;
}

TEST_F(AccessIT, ARevokedTokenStopsAtOnceAlsoOnASecondServerSharingTheStore) {
  ServerProcess second(dir_, db_, "second", {"--poll-every", "0"});
  ASSERT_TRUE(second.ready()) << second.Log();
  const std::string reader = Token("reader", {"read"});
  const RouteLine jobs{"GET", "/v1/jobs", "read"};
  EXPECT_EQ(Call(jobs, reader)->status, 200);
  EXPECT_EQ(Call(jobs, reader, &second)->status, 200);
  // Revoked through the first server, by an admin over HTTP.
  auto revoked = RunSallyport({"token", "revoke", "reader", "--server", server_->url()});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_EQ(Call(jobs, reader)->status, 401);
  // The second server asks the store again within its cache's TTL (500 ms): refused within 1 s.
  const auto revoked_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitFor([&] { return Call(jobs, reader, &second)->status == 401; }, std::chrono::seconds(2)))
      << "the second server still accepts a revoked token";
  EXPECT_LT(std::chrono::steady_clock::now() - revoked_at, std::chrono::seconds(1));
  auto listed = RunSallyport({"token", "list", "--server", second.url()});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("reader"));
  EXPECT_THAT(listed.out, HasSubstr("revoked"));
  EXPECT_THAT(listed.out, ::testing::Not(HasSubstr(reader)));
}

}  // namespace
}  // namespace sp::test
