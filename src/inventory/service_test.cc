// The inventory service on a real SQLite store (a temp file): apply/export,
// object writes, validation, and two connections sharing one file.
#include "inventory/service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "store/sqlite/sqlite_store.h"
#include "support/test_util.h"

namespace sp::inventory {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const char* kFile = R"(version: 1
stacks:
  shop:
    requires_bastion: true
    resources:
      db: {url: "postgres://db/shop"}
    deployments:
      prod:
        network: dc2
        bastion: {address: 10.1.0.1}
        env: {LOG_LEVEL: info}
        hosts:
          - {name: a1, address: 10.1.0.11, tags: {role: api}}
          - {name: a2, address: 10.1.0.12, tags: {role: api}}
        releases:
          api:
            select: role=api
            load_balancers: [{address: 10.1.0.2:9999, backend: api}]
      staging:
        network: dc2
        bastion: {address: 10.2.0.1}
        releases:
          api:
            hosts: [{name: s1, address: 10.2.0.11}]
            load_balancers: [{address: 10.2.0.2:9999, backend: api}]
)";

Inventory File(const std::string& text = kFile) {
  auto inv = ParseInventory(text, "inventory.yml");
  EXPECT_TRUE(inv) << inv.error().message;
  return inv ? *inv : Inventory{};
}

class InventoryServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SqliteStore::Open(dir_ / "state.db");
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
    service_ = std::make_unique<Service>(*store_);
  }
  std::string Exported() {
    auto inv = service_->Current();
    EXPECT_TRUE(inv);
    return inv ? JsonToYaml(InventoryToJson(**inv)) : "";
  }
  test::TempDir dir_{"sp-inv-test"};
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Service> service_;
};

TEST_F(InventoryServiceTest, ApplyThenExportReproducesTheFileAndApplyingTwiceChangesNothing) {
  auto first = service_->Apply(File(), false, false);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_THAT(first->changes, ElementsAre("+ stack shop"));
  EXPECT_EQ(InventoryToJson(File()).dump(), InventoryToJson(*ParseInventory(Exported(), "x.yml")).dump());

  auto rev = store_->InventoryRevision();
  auto again = service_->Apply(File(), false, false);
  ASSERT_TRUE(again);
  EXPECT_THAT(again->changes, IsEmpty());
  EXPECT_EQ(*store_->InventoryRevision(), *rev) << "a no-op apply wrote";
}

TEST_F(InventoryServiceTest, ApplyKeepsWhatTheFileOmitsUnlessPruned) {
  ASSERT_TRUE(service_->Apply(File(), false, false));
  std::string smaller = kFile;
  smaller.erase(smaller.find("      staging:"));
  // Also change one release: a different backend.
  smaller.replace(smaller.find("backend: api"), 12, "backend: api2");
  auto kept = service_->Apply(File(smaller), false, /*dry_run=*/false);
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_THAT(kept->changes, ElementsAre("~ release shop/prod/api"));
  EXPECT_TRUE(service_->Get({"stacks", "shop", "deployments", "staging"}));

  auto dry = service_->Apply(File(smaller), true, /*dry_run=*/true);
  ASSERT_TRUE(dry);
  EXPECT_THAT(dry->changes, ElementsAre("- deployment shop/staging"));
  EXPECT_TRUE(service_->Get({"stacks", "shop", "deployments", "staging"})) << "dry run wrote";

  auto pruned = service_->Apply(File(smaller), true, false);
  ASSERT_TRUE(pruned);
  EXPECT_THAT(pruned->changes, ElementsAre("- deployment shop/staging"));
  auto gone = service_->Get({"stacks", "shop", "deployments", "staging"});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);
}

TEST_F(InventoryServiceTest, AnApplyWhoseMergeWithTheStoreIsInvalidWritesNothing) {
  // The store holds a deployment with hosts and no bastion (allowed while
  // requires_bastion is false)...
  std::string loose = kFile;
  loose.replace(loose.find("requires_bastion: true"), 22, "requires_bastion: false");
  loose.erase(loose.find("        bastion: {address: 10.2.0.1}\n"), 37);
  ASSERT_TRUE(service_->Apply(File(loose), true, false));
  // ...then a valid file without that deployment turns requires_bastion on:
  // the deployment it keeps breaks the rule.
  std::string strict = kFile;
  strict.erase(strict.find("      staging:"));
  const auto before = *store_->InventoryRevision();
  auto bad = service_->Apply(File(strict), false, false);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("has hosts and no bastion"));
  EXPECT_THAT(bad.error().message, HasSubstr("merged with the store"));
  EXPECT_EQ(*store_->InventoryRevision(), before) << "a failed apply wrote";
  EXPECT_EQ(Exported().find("requires_bastion"), std::string::npos) << "the stored stack changed";
}

TEST_F(InventoryServiceTest, ObjectsAreCreatedReplacedAndDeletedByPath) {
  ASSERT_TRUE(service_->Apply(File(), false, false));
  const std::vector<std::string> host = {"stacks", "shop", "deployments", "prod", "hosts", "a3"};
  auto created = service_->Put(host, Doc::parse(R"({"name":"a3","address":"10.1.0.13","tags":{"role":"api"}})"));
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_TRUE(*created);
  auto t = service_->Resolve("shop", "api", "prod");
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_EQ(t->hosts.size(), 3u);  // Read-your-writes: the selector sees a3 at once.
  EXPECT_EQ(t->hosts[2].name, "a3");

  auto replaced = service_->Put(host, Doc::parse(R"({"name":"a3","address":"10.1.0.23"})"));
  ASSERT_TRUE(replaced);
  EXPECT_FALSE(*replaced);
  EXPECT_EQ((*service_->Get(host))["address"], "10.1.0.23");

  // Invalid values name the field; nothing is written.
  const auto rev = *store_->InventoryRevision();
  auto bad = service_->Put(host, Doc::parse(R"({"name":"a3","address":"10.1.0.300"})"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(bad.error().message, HasSubstr("/stacks/shop/deployments/prod/hosts/2/address: invalid address"));
  auto mismatch = service_->Put(host, Doc::parse(R"({"name":"a4","address":"10.1.0.14"})"));
  ASSERT_FALSE(mismatch);
  EXPECT_THAT(mismatch.error().message, HasSubstr("/name"));
  auto no_lb = service_->Put({"stacks", "shop", "deployments", "prod", "releases", "web"},
                             Doc::parse(R"({"hosts":["a1"]})"));
  ASSERT_FALSE(no_lb);
  EXPECT_THAT(no_lb.error().message, HasSubstr("load_balancers"));
  EXPECT_EQ(*store_->InventoryRevision(), rev);

  ASSERT_TRUE(service_->Delete(host));
  auto missing = service_->Delete(host);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto unknown = service_->Get({"stacks", "nope"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(unknown.error().message, HasSubstr("stack 'nope' not found (stacks: shop)"));
}

TEST_F(InventoryServiceTest, DeletingAHostAReleaseNamesIsRefused) {
  std::string text = kFile;
  text.replace(text.find("select: role=api"), 16, "hosts: [a1]");
  ASSERT_TRUE(service_->Apply(File(text), false, false));
  auto r = service_->Delete({"stacks", "shop", "deployments", "prod", "hosts", "a1"});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("no host 'a1' in this deployment's hosts"));
  EXPECT_TRUE(service_->Get({"stacks", "shop", "deployments", "prod", "hosts", "a1"}));
}

TEST_F(InventoryServiceTest, ASecondConnectionToTheSameStoreReadsEveryWrite) {
  auto other_store = SqliteStore::Open(dir_ / "state.db");
  ASSERT_TRUE(other_store);
  Service other(**other_store);
  ASSERT_TRUE(service_->Apply(File(), false, false));
  ASSERT_TRUE(other.Resolve("shop", "api", "prod"));
  ASSERT_TRUE(service_->Delete({"stacks", "shop", "deployments", "prod", "hosts", "a2"}));
  auto t = other.Resolve("shop", "api", "prod");
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_EQ(t->hosts.size(), 1u);
  EXPECT_EQ(t->hosts[0].name, "a1");
}

const char* kWithTemplate = R"(version: 1
stacks:
  shop:
    resources:
      db: {url: "postgres://db/shop_{user}"}
    deployments:
      prod:
        network: dc2
        releases:
          api:
            hosts: [{name: p1, address: 10.1.0.11}]
            load_balancers: [{address: 10.1.0.2:9999, backend: api}]
    templates:
      personal:
        name: personal-{user}
        ttl: 1h
        resources: per-user
        deployment:
          network: dev
          hosts:
            - {name: dev1, address: 10.9.0.11}
            - {name: dev2, address: 10.9.0.12}
          releases:
            api:
              load_balancers: [{address: 10.9.0.2:9999, backend: "personal-{user}"}]
)";

TEST_F(InventoryServiceTest, ClaimsGetFreePoolHostsUntilThePoolIsExhausted) {
  ASSERT_TRUE(service_->Apply(File(kWithTemplate), false, false));
  auto ben = service_->Claim("shop", "personal", "ben", 1000);
  ASSERT_TRUE(ben) << ben.error().message;
  EXPECT_EQ(ben->deployment, "personal-ben");
  EXPECT_EQ(ben->host, "dev1");
  EXPECT_EQ(ben->expires_ms, 1000 + 3'600'000);
  auto again = service_->Claim("shop", "personal", "ben", 2000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->host, "dev1") << "the same user's claim is returned, not a second host";
  auto ann = service_->Claim("shop", "personal", "ann", 3000);
  ASSERT_TRUE(ann);
  EXPECT_EQ(ann->host, "dev2");
  auto cid = service_->Claim("shop", "personal", "cid", 4000);
  ASSERT_FALSE(cid);
  EXPECT_EQ(cid.error().code, ErrorCode::kConflict);
  EXPECT_THAT(cid.error().message, HasSubstr("no free host in the pool of template 'personal'"));

  auto t = service_->Resolve("shop", "api", "personal-ben");
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_EQ(t->hosts.size(), 1u);
  EXPECT_EQ(t->hosts[0].name, "dev1");
  EXPECT_EQ(t->network, "dev");
  EXPECT_EQ(t->load_balancers[0].backend, "personal-ben");
  EXPECT_EQ(t->load_balancers[0].add_servers, true) << "a template's pool hosts join and leave its backend";
  EXPECT_EQ(t->deployment_env.at("DB_URL"), "postgres://db/shop_ben");

  for (const char* bad : {"Ben", "-ben", "ben;rm", "", "a234567890123456789012345678901234"}) {
    auto r = service_->Claim("shop", "personal", bad, 0);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << bad;
  }
  auto no_template = service_->Claim("shop", "nope", "ben", 0);
  ASSERT_FALSE(no_template);
  EXPECT_THAT(no_template.error().message, HasSubstr("(templates: personal)"));
}

TEST_F(InventoryServiceTest, ReleaseTearsDownThenFreesTheHostAndAFailedTeardownKeepsTheClaim) {
  ASSERT_TRUE(service_->Apply(File(kWithTemplate), false, false));
  ASSERT_TRUE(service_->Claim("shop", "personal", "ben", 0));
  std::vector<std::string> torn;
  auto failing = [&](const ResolvedTarget&) -> Status { return Err(ErrorCode::kUnavailable, "host unreachable"); };
  auto r = service_->Release("shop", "personal-ben", failing);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("teardown of personal-ben"));
  EXPECT_EQ(service_->Claims()->size(), 1u);
  EXPECT_TRUE(service_->Resolve("shop", "api", "personal-ben"));

  auto ok = service_->Release("shop", "personal-ben", [&](const ResolvedTarget& t) -> Status {
    torn.push_back(t.deployment + "/" + t.release + "@" + t.hosts.at(0).name);
    return Ok();
  });
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_THAT(torn, ElementsAre("personal-ben/api@dev1"));
  EXPECT_TRUE(service_->Claims()->empty());
  EXPECT_FALSE(service_->Resolve("shop", "api", "personal-ben"));
  auto next = service_->Claim("shop", "personal", "cid", 0);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->host, "dev1") << "the released host is free again";
}

TEST_F(InventoryServiceTest, ExpiredClaimsAreTornDownByTheClock) {
  ASSERT_TRUE(service_->Apply(File(kWithTemplate), false, false));
  ASSERT_TRUE(service_->Claim("shop", "personal", "ben", 0));
  ASSERT_TRUE(service_->Claim("shop", "personal", "ann", 1'800'000));
  int torn = 0;
  auto teardown = [&](const ResolvedTarget&) -> Status { ++torn; return Ok(); };
  auto none = service_->Expire(3'599'999, teardown);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto one = service_->Expire(3'600'000, teardown);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].user, "ben");
  EXPECT_EQ(torn, 1);
  EXPECT_EQ(service_->Claims()->size(), 1u);
}

TEST_F(InventoryServiceTest, ATemplateMaySayItsReleasesHaveNoLoadBalancer) {
  std::string text = kWithTemplate;
  const std::string lb = "load_balancers: [{address: 10.9.0.2:9999, backend: \"personal-{user}\"}]";
  text.replace(text.find(lb), lb.size(), "load_balancers: none");
  ASSERT_TRUE(service_->Apply(File(text), false, false));
  ASSERT_TRUE(service_->Claim("shop", "personal", "ben", 0));
  auto t = service_->Resolve("shop", "api", "personal-ben");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_TRUE(t->load_balancers.empty());
  auto again = service_->Apply(File(text), true, false);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_THAT(again->changes, IsEmpty()) << "'none' survives the store round trip";
}

TEST_F(InventoryServiceTest, ApplyWithPruneKeepsClaimedDeployments) {
  ASSERT_TRUE(service_->Apply(File(kWithTemplate), false, false));
  ASSERT_TRUE(service_->Claim("shop", "personal", "ben", 0));
  auto r = service_->Apply(File(kWithTemplate), true, false);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_THAT(r->changes, IsEmpty());
  EXPECT_TRUE(service_->Resolve("shop", "api", "personal-ben"));
}

}  // namespace
}  // namespace sp::inventory
