// A rollout's credentials, whoever runs it (an agent through the server, or
// the server itself): only those its plan names, only where the plan sends
// them, only where the admin's binding allows.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "deploy/deploy_plan.h"
#include "store/sqlite/sqlite_store.h"
#include "support/test_util.h"

namespace sp {
namespace {

using ::testing::HasSubstr;

class PlanCredentialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SqliteStore::Open(dir_ / "state.db");
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->PutProject(ProjectRecord{"web", "git://127.0.0.1:9/web.git", "", 1, "", ""}));
    BuildRecord b;
    b.project = "web";
    b.branch = "main";
    b.sha = std::string(40, 'a');
    auto made = store_->CreateBuild(b);
    ASSERT_TRUE(made && *made);
    plan_.id = "r-1";
    plan_.deployment = "staging";
    plan_.build_id = (*made)->id;
    plan_.registry = RegistrySpec{"registry.example:5000", "ci", "credential:push"};
    plan_.app.env_refs = {{"DATABASE_URL", "credential:db"}};
    Bind("push", {"registry.example:5000"});
    Bind("db", {"deployment:staging"});
    Bind("prod_db", {"deployment:production"});
  }
  void Bind(const std::string& name, std::vector<std::string> to) {
    ASSERT_TRUE(store_->PutCredential(CredentialBinding{"web", name, "file:/s/" + name, std::move(to), 1}));
  }
  Result<std::string> Get(const std::string& name) {
    CredentialReader read = BoundCredentials(*store_, [](const std::string& ref) -> Result<std::string> {
      return "value of " + ref;
    });
    return PlanCredential(*store_, read, plan_, name);
  }

  test::TempDir dir_{"sp-plan-credential"};
  std::unique_ptr<SqliteStore> store_;
  RolloutPlan plan_;
};

TEST_F(PlanCredentialTest, OnlyWhatThePlanNamesGoesOnlyWhereItsBindingAllows) {
  auto push = Get("push");
  ASSERT_TRUE(push) << push.error().message;
  EXPECT_EQ(*push, "value of file:/s/push");
  auto db = Get("db");
  ASSERT_TRUE(db) << db.error().message;
  EXPECT_EQ(*db, "value of file:/s/db");

  auto unnamed = Get("prod_db");
  ASSERT_FALSE(unnamed);
  EXPECT_EQ(unnamed.error().code, ErrorCode::kPermissionDenied);
  EXPECT_THAT(unnamed.error().message, HasSubstr("does not use credential 'prod_db'"));

  // A plan for staging naming production's value: its binding refuses.
  plan_.app.env_refs["DATABASE_URL"] = "credential:prod_db";
  auto other_env = Get("prod_db");
  ASSERT_FALSE(other_env);
  EXPECT_EQ(other_env.error().code, ErrorCode::kPermissionDenied);
  EXPECT_THAT(other_env.error().message, HasSubstr("may not be sent to deployment:staging"));

  // The registry's credential used as an env value too: both destinations must be bound.
  plan_.app.env_refs["LEAK"] = "credential:push";
  auto both = Get("push");
  ASSERT_FALSE(both);
  EXPECT_THAT(both.error().message, HasSubstr("may not be sent to deployment:staging"));

  plan_.build_id = 0;
  auto no_build = Get("push");
  ASSERT_FALSE(no_build);
  EXPECT_THAT(no_build.error().message, HasSubstr("comes from no build"));
}

// A token realm on another host than the registry's gets the registry
// password only when the admin's binding lists it (--realm-host): the server
// copies those into the plan, and releases the value only for a plan whose
// realms the binding all allows.
TEST_F(PlanCredentialTest, ATokenRealmBeyondTheRegistrysHostMustBeTheBindingsToo) {
  Bind("push", {"registry.example:5000", "realm:auth.example"});
  ASSERT_TRUE(AttachRealmHosts(*store_, plan_));
  EXPECT_EQ(plan_.registry.realm_hosts, std::vector<std::string>{"auth.example"});
  auto push = Get("push");
  ASSERT_TRUE(push) << push.error().message;
  plan_.registry.realm_hosts.push_back("evil.example");  // Not the binding's.
  auto refused = Get("push");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
  EXPECT_THAT(refused.error().message, HasSubstr("may not be sent to realm:evil.example"));
  // A binding without realms adds none.
  RolloutPlan other = plan_;
  other.registry.realm_hosts.clear();
  Bind("push", {"registry.example:5000"});
  ASSERT_TRUE(AttachRealmHosts(*store_, other));
  EXPECT_TRUE(other.registry.realm_hosts.empty());
}

// Secrets kept in the store: one name with a value per deployment (and per
// branch pattern for steps), each put a new version; a plan pins the
// version it was frozen with, so a resume gets the value it started with.
TEST_F(PlanCredentialTest, AStoredSecretHasAValuePerScopeAndAPlanKeepsTheVersionItWasFrozenWith) {
  auto put = [&](const std::string& name, const std::string& scope, const std::string& envelope) {
    auto v = store_->PutSecret(StoredSecret{"web", name, scope, 0, envelope, "token:ops", 1});
    EXPECT_TRUE(v) << v.error().message;
    return v ? *v : 0;
  };
  EXPECT_EQ(put("api", "deployment:staging", "staging-1"), 1);
  EXPECT_EQ(put("api", "deployment:production", "production-1"), 1);
  EXPECT_EQ(put("api", "branch:**", "any-branch"), 1);
  EXPECT_EQ(put("api", "branch:integration", "integration"), 1);
  plan_.app.env_refs = {{"API_KEY", "credential:api"}, {"DATABASE_URL", "credential:db"}};
  ASSERT_TRUE(PinSecretVersions(*store_, plan_));
  EXPECT_EQ(plan_.app.env_refs["API_KEY"], "credential:api@1");
  EXPECT_EQ(plan_.app.env_refs["DATABASE_URL"], "credential:db");  // A binding: not versioned.
  EXPECT_TRUE(IsValidSecretRef(plan_.app.env_refs["API_KEY"]));

  // The reader is handed the envelope (WithVaultRefs opens it).
  CredentialReader read = BoundCredentials(*store_, [](const std::string& ref) -> Result<std::string> {
    return ref.starts_with(kVaultTextRef) ? "opened " + ref.substr(11) : "value of " + ref;
  });
  EXPECT_EQ(PlanCredential(*store_, read, plan_, "api@1").value_or("?"), "opened staging-1");
  EXPECT_EQ(PlanCredential(*store_, read, plan_, "db").value_or("?"), "value of file:/s/db");
  // A rotation after the plan was frozen: the plan keeps version 1, a new plan gets 2.
  EXPECT_EQ(put("api", "deployment:staging", "staging-2"), 2);
  EXPECT_EQ(PlanCredential(*store_, read, plan_, "api@1").value_or("?"), "opened staging-1");
  RolloutPlan next = plan_;
  next.app.env_refs["API_KEY"] = "credential:api";
  ASSERT_TRUE(PinSecretVersions(*store_, next));
  EXPECT_EQ(next.app.env_refs["API_KEY"], "credential:api@2");
  EXPECT_EQ(PlanCredential(*store_, read, next, "api@2").value_or("?"), "opened staging-2");
  // Another deployment's plan gets its own value.
  next.deployment = "production";
  next.app.env_refs["API_KEY"] = "credential:api";
  ASSERT_TRUE(PinSecretVersions(*store_, next));
  EXPECT_EQ(PlanCredential(*store_, read, next, "api@1").value_or("?"), "opened production-1");
  // A plan cannot name another version than its deployment has: staging's v2 is not production's.
  next.app.env_refs["API_KEY"] = "credential:api@2";
  auto other = PlanCredential(*store_, read, next, "api@2");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(other.error().message, HasSubstr("no version 2 of secret 'api'"));
  // A deployment with no value of its own is refused, naming the scopes there are.
  next.deployment = "qa";
  next.app.env_refs["API_KEY"] = "credential:api";
  ASSERT_TRUE(PinSecretVersions(*store_, next));
  EXPECT_EQ(next.app.env_refs["API_KEY"], "credential:api");
  auto none = PlanCredential(*store_, read, next, "api");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kPermissionDenied);
  EXPECT_THAT(none.error().message, HasSubstr("may not be sent to deployment:qa (stored for branch:**, "
                                              "branch:integration, deployment:production, deployment:staging)"));
  // Steps: the longest matching branch pattern wins; deleting a scope removes every version.
  EXPECT_EQ(read("web", "api", "branch:integration").value_or("?"), "opened integration");
  EXPECT_EQ(read("web", "api", "branch:remote-run/ben/x").value_or("?"), "opened any-branch");
  ASSERT_TRUE(store_->DeleteSecret("web", "api", "deployment:staging"));
  auto gone = PlanCredential(*store_, read, plan_, "api@1");
  ASSERT_FALSE(gone);
  EXPECT_THAT(gone.error().message, HasSubstr("deleted since the plan was made?"));
  auto listed = store_->Secrets("web");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 3u);
  for (const auto& x : *listed) EXPECT_TRUE(x.vault.empty()) << x.scope;  // Listings carry no envelope.
}

TEST(SecretScopeTest, DeploymentsAndBranchPatternsOnly) {
  EXPECT_TRUE(CheckSecretScope("deployment:production"));
  EXPECT_TRUE(CheckSecretScope("branch:remote-run/*"));
  EXPECT_TRUE(CheckSecretScope("branch:main"));
  for (const char* bad : {"production", "deployment:", "deployment:a b", "registry:x", "branch:", ""}) {
    EXPECT_FALSE(CheckSecretScope(bad)) << bad;
  }
}

}  // namespace
}  // namespace sp
