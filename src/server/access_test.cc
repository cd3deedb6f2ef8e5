// Who may call what, through the router without sockets: every route of the
// tables, anonymous, with a wrong scope and with the right one; scopes
// checked on the object a request names; one audit record per mutating
// request, refusals included. (tests/integration/access_test.cc attacks a
// real server process the same way.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include "core/text.h"
#include "support/route_paths.h"
#include "unit/server_harness.h"

namespace sp {
namespace {

using ::testing::HasSubstr;
using auth::Need;
using http::Method;
using test::PathFor;

// The least scope that grants `t`, and one of another kind or object that does not.
std::string RightScope(const http::Target& t) {
  switch (t.need) {
    case Need::kRead: return t.object.empty() ? "read" : "read:" + t.object;
    case Need::kBuild: return "build:" + t.object;
    case Need::kDeploy: return "deploy:" + t.object;
    case Need::kInventoryWrite: return "inventory:write";
    case Need::kSecrets: return "secrets:" + t.object;
    default: return "admin";
  }
}
std::vector<std::string> WrongScopes(const http::Target& t) {
  switch (t.need) {
    case Need::kRead: return {"inventory:write", t.object.empty() ? "read:web" : "read:other"};
    case Need::kBuild: return {"read", "build:other"};
    case Need::kDeploy: return {"read", "inventory:write", "deploy:other/other"};
    case Need::kInventoryWrite: return {"read", "deploy:demo/dev"};
    case Need::kSecrets: return {"read", "build:" + t.object, "secrets:other", "inventory:write"};
    default: return {"read", "inventory:write", "build:*", "deploy:*/*"};
  }
}

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    JobSpec spec;
    spec.kind = "rollout";
    spec.payload = R"({"stack":"demo","release":"web","deployment":"dev"})";
    spec.labels = {{"network", "dev"}};
    ASSERT_TRUE(h_.store->Enqueue(spec, h_.clock.WallMs()));
  }
  http::Request Req(const http::Route& r, const std::string& token) {
    http::Request req;
    req.method = r.method;
    req.path = PathFor(r.pattern);
    req.body = R"({"project": "web", "user": "ben", "stack": "demo", "release": "web", "deployment": "dev"})";
    req.peer = "192.0.2.7";
    if (!token.empty()) req.headers["authorization"] = "Bearer " + token;
    return req;
  }
  int Send(const http::Route& r, const std::string& token) { return h_.server->router().Handle(Req(r, token)).status; }
  // The need and object the route finds in its sample request.
  http::Target TargetOf(const http::Route& r) {
    http::Request req = Req(r, "");
    std::smatch m;
    EXPECT_TRUE(std::regex_match(req.path, m, std::regex(r.pattern))) << req.path << " ~ " << r.pattern;
    for (size_t k = 1; k < m.size(); ++k) req.args.push_back(m[k].str());
    auto t = r.access.TargetFor(req);
    EXPECT_TRUE(t.has_value()) << r.pattern << ": " << t.error().message;
    return t ? *t : http::Target{};
  }
  size_t AuditRows() { return h_.store->AuditTrail(100000)->size(); }
  test::ServerHarness h_;
};

TEST_F(AccessTest, EveryRouteIs401AnonymousAnd403WithAWrongScopeAndServedWithTheRightOne) {
  int checked = 0;
  for (const http::Route& r : h_.server->router().routes()) {
    const Need need = r.access.need();
    const std::string what = std::string(http::MethodName(r.method)) + " " + r.pattern;
    if (need == Need::kPublic || need == Need::kAgent) continue;  // Their own tests.
    ++checked;
    EXPECT_EQ(Send(r, ""), 401) << what;
    EXPECT_EQ(Send(r, "spt_0000000000000000000000000000000000000000000000000000000000000000"), 401) << what;
    const http::Target t = TargetOf(r);
    int n = 0;
    for (const auto& wrong : WrongScopes(t)) {
      const std::string token = h_.Token("wrong-" + std::to_string(checked) + "-" + std::to_string(n++), {wrong});
      EXPECT_EQ(Send(r, token), 403) << what << " with " << wrong;
    }
    const std::string right = h_.Token("right-" + std::to_string(checked), {RightScope(t)});
    const int status = Send(r, right);
    EXPECT_NE(status, 401) << what << " with " << RightScope(t);
    EXPECT_NE(status, 403) << what << " with " << RightScope(t);
  }
  EXPECT_GE(checked, 20);
}

TEST_F(AccessTest, AnAgentsTokenServesTheAgentProtocolOnly) {
  const std::string agent = h_.AgentToken("dc1", {{"network", "dev"}});
  for (const http::Route& r : h_.server->router().routes()) {
    if (r.access.need() == Need::kPublic || r.access.need() == Need::kAgent) continue;
    EXPECT_EQ(Send(r, agent), 403) << r.pattern;
  }
}

TEST_F(AccessTest, RevokedAndExpiredTokensStopAtOnce) {
  auto admin = h_.Admin();
  // Revoked through this server: refused at the next request.
  auto client = h_.Client(h_.Token("ci", {"read"}));
  EXPECT_TRUE(client->Call("GET", "/v1/jobs", ""));
  ASSERT_TRUE(admin->Call("DELETE", "/v1/tokens/ci", ""));
  auto after = client->Call("GET", "/v1/jobs", "");
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, ErrorCode::kUnauthenticated);
  // Revoked by another process sharing the store: refused once the token
  // cache's 500 ms have passed (the check is cached, not the verdict forever).
  auto other = h_.Client(h_.Token("ci-2", {"read"}));
  EXPECT_TRUE(other->Call("GET", "/v1/jobs", ""));
  ASSERT_TRUE(h_.store->RevokeToken("ci-2", h_.clock.WallMs()));
  h_.clock.Advance(Millis(500));
  EXPECT_FALSE(other->Call("GET", "/v1/jobs", ""));

  auto made = admin->Call("POST", "/v1/tokens", R"({"name": "short", "scopes": ["read"], "expires_in_s": 60})");
  ASSERT_TRUE(made) << made.error().message;
  auto brief = h_.Client((*made)["token"].get<std::string>());
  EXPECT_TRUE(brief->Call("GET", "/v1/jobs", ""));
  h_.clock.Advance(Millis(60'000));
  EXPECT_FALSE(brief->Call("GET", "/v1/jobs", ""));
  // An agent's token too.
  const std::string agent = h_.AgentToken("dc1", {{"network", "dev"}});
  ASSERT_TRUE(admin->Call("DELETE", "/v1/tokens/dc1", ""));
  http::Request req;
  req.method = Method::kPost;
  req.path = "/v1/agent/claim";
  req.headers["authorization"] = "Bearer " + agent;
  EXPECT_EQ(h_.server->router().Handle(req).status, 401);
}

TEST_F(AccessTest, TokensAreShownOnceAndListedWithoutSecretOrHash) {
  auto admin = h_.Admin();
  auto made = admin->Call("POST", "/v1/tokens", R"({"name": "deployer", "scopes": ["deploy:demo/dev", "read"]})");
  ASSERT_TRUE(made) << made.error().message;
  const std::string secret = (*made)["token"];
  EXPECT_EQ(secret.rfind("spt_", 0), 0u);
  auto list = admin->Call("GET", "/v1/tokens", "");
  ASSERT_TRUE(list);
  EXPECT_THAT(list->dump(), HasSubstr("\"deployer\""));
  EXPECT_THAT(list->dump(), HasSubstr("deploy:demo/dev"));
  EXPECT_THAT(list->dump(), ::testing::Not(HasSubstr(secret)));
  EXPECT_THAT(list->dump(), ::testing::Not(HasSubstr(Sha256Hex(secret))));
  EXPECT_FALSE(admin->Call("POST", "/v1/tokens", R"({"name": "deployer", "scopes": ["read"]})")) << "a name twice";
  auto bad = admin->Call("POST", "/v1/tokens", R"({"name": "x", "scopes": ["root"]})");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("'root'"));
}

// What runs on the server (a dynamic source's command) is an admin's to set.
TEST_F(AccessTest, AnInventoryWriterCannotSetACommandButAnAdminCan) {
  auto writer = h_.Client(h_.Token("editor", {"inventory:write"}));
  ASSERT_TRUE(writer->Call("PUT", "/v1/stacks/demo", "{}")) << "plain edits are an inventory writer's";
  const std::string with_source = R"({"network": "dev", "releases": {}, "source": {"command": ["touch", "/tmp/sp-access-marker"]}})";
  auto refused = writer->Call("PUT", "/v1/stacks/demo/deployments/dev", with_source);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
  EXPECT_THAT(refused.error().message, HasSubstr("admin"));
  const std::string yaml =
      "version: 1\nstacks:\n  demo:\n    deployments:\n      dev:\n        network: dev\n"
      "        source: {command: [touch, /tmp/sp-access-marker]}\n        releases: {}\n";
  auto applied = writer->Call("POST", "/v1/inventory/apply", yaml);
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code, ErrorCode::kPermissionDenied) << applied.error().message;
  auto admin = h_.Admin()->Call("PUT", "/v1/stacks/demo/deployments/dev", with_source);
  EXPECT_TRUE(admin) << admin.error().message;
}

TEST_F(AccessTest, EveryMutatingRequestWritesExactlyOneAuditRowRefusalsToo) {
  const std::string reader = h_.Token("reader", {"read"});
  const std::string admin = h_.Token("boss", {"admin"});
  for (const http::Route& r : h_.server->router().routes()) {
    const bool mutating = r.method != Method::kGet;
    const bool audited = mutating && r.access.need() != Need::kAgent;
    for (const std::string& token : {std::string(), reader, admin}) {
      const size_t before = AuditRows();
      const int status = Send(r, token);
      EXPECT_EQ(AuditRows() - before, audited ? 1u : 0u) << http::MethodName(r.method) << " " << r.pattern;
      if (!audited) continue;
      const auto row = h_.store->AuditTrail(1)->front();
      EXPECT_EQ(row.status, status);
      EXPECT_EQ(row.path, PathFor(r.pattern));
      EXPECT_EQ(row.from, "192.0.2.7");
      // A public route reads no token (a login's or a webhook's caller is "public").
      EXPECT_EQ(row.who, r.access.need() == Need::kPublic ? "public"
                         : token.empty()                  ? "anonymous"
                         : token == reader                ? "token:reader"
                                                          : "token:boss");
    }
  }
}

}  // namespace
}  // namespace sp
