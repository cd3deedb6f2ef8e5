// API tokens, revocation and the audit trail on a real SQLite file, with a
// second connection as a second server process would have.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "core/digest.h"
#include "store/sqlite/sqlite_store.h"
#include "support/test_util.h"

namespace sp {
namespace {

using ::testing::HasSubstr;

class AuthStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SqliteStore::Open(path_);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }
  // Raw SQL on the same file, as anyone holding it could try.
  int RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return rc;
  }
  test::TempDir dir_{"sp-auth-store"};
  const std::string path_ = dir_ / "state.db";
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(AuthStoreTest, TheAuditTrailIsAppendOnly) {
  auth::AuditRecord r;
  r.who = "token:x";
  r.method = "POST";
  r.path = "/v1/jobs";
  r.status = 403;
  ASSERT_TRUE(store_->AppendAudit(r));
  EXPECT_NE(RawExec("UPDATE audit SET who='nobody'"), SQLITE_OK);
  EXPECT_NE(RawExec("DELETE FROM audit"), SQLITE_OK);
  auto rows = store_->AuditTrail(10);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().who, "token:x");
  EXPECT_EQ(rows->front().status, 403);
}

TEST_F(AuthStoreTest, ARevocationIsSeenAtOnceThroughAnotherConnection) {
  auto other = SqliteStore::Open(path_);
  ASSERT_TRUE(other);
  auth::ApiToken t;
  t.name = "ci";
  t.scopes = {"read", "build:web"};
  ASSERT_TRUE(store_->PutApiToken(Sha256Hex("secret"), t));
  auto seen = (*other)->ApiTokenFor(Sha256Hex("secret"));
  ASSERT_TRUE(seen && *seen);
  EXPECT_EQ((*seen)->scopes, t.scopes);
  EXPECT_TRUE(auth::Live(**seen, 1000));
  ASSERT_TRUE(store_->RevokeToken("ci", 5000));
  seen = (*other)->ApiTokenFor(Sha256Hex("secret"));
  ASSERT_TRUE(seen && *seen);
  EXPECT_FALSE(auth::Live(**seen, 6000));
  EXPECT_EQ(store_->RevokeToken("ci", 7000).error().code, ErrorCode::kNotFound) << "revoked once";
}

TEST_F(AuthStoreTest, NamesAreUniqueAcrossApiAndAgentTokensAndAgentsCanBeRevoked) {
  ASSERT_TRUE(store_->PutAgentToken(Sha256Hex("a"), QueueStore::AgentToken{"dc1", {{"network", "dev"}}}));
  auth::ApiToken t;
  t.name = "dc1";
  t.scopes = {"read"};
  auto dup = store_->PutApiToken(Sha256Hex("b"), t);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  auto all = store_->Tokens();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().kind, "agent");
  EXPECT_EQ(all->front().labels.at("network"), "dev");
  ASSERT_TRUE(store_->RevokeToken("dc1", 1));
  EXPECT_FALSE(*store_->AgentTokenFor(Sha256Hex("a"))) << "a revoked agent token is not found";
}

TEST_F(AuthStoreTest, ANewStateFileIsPrivate) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(store_->AppendAudit(auth::AuditRecord{}));  // The WAL exists once written.
  ASSERT_EQ(::stat((path_ + "-wal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace sp
