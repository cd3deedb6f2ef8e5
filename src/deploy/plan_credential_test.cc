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

}  // namespace
}  // namespace sp
