// The store's schema versions on real SQLite files: a new store records the
// binary's version, an older one (no version, a table without a later
// column) is migrated and keeps its rows, a newer one is refused.
#include <sqlite3.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "store/sqlite/sqlite_store.h"
#include "support/test_util.h"

namespace sp {
namespace {

using ::testing::HasSubstr;

void Sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST(StoreSchemaTest, ANewStoreRecordsThisBinarysVersion) {
  test::TempDir dir("sp-schema");
  auto s = SqliteStore::Open(dir / "a.db");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_GE(SqliteStore::kSchemaVersion, 1);
  EXPECT_EQ((*s)->SchemaVersion(), SqliteStore::kSchemaVersion);
}

TEST(StoreSchemaTest, AnOlderStoreIsMigratedAndKeepsItsRows) {
  test::TempDir dir("sp-schema");
  const std::string path = dir / "old.db";
  // A store from before versions: user_version 0, projects without its later columns.
  Sql(path, "CREATE TABLE projects (name TEXT PRIMARY KEY, git_url TEXT NOT NULL, webhook_secret_ref TEXT NOT NULL "
            "DEFAULT '', created_ms INTEGER NOT NULL DEFAULT 0);"
            "INSERT INTO projects (name, git_url) VALUES ('svc', 'git://example/svc.git');");
  auto s = SqliteStore::Open(path);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ((*s)->SchemaVersion(), SqliteStore::kSchemaVersion);
  auto p = (*s)->Project("svc");
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_TRUE(p->has_value());
  EXPECT_EQ((*p)->git_url, "git://example/svc.git");
  EXPECT_EQ((*p)->credential_ref, "");  // The column a migration added.
}

TEST(StoreSchemaTest, AStoreNewerThanTheBinaryIsRefusedNamingBothVersions) {
  test::TempDir dir("sp-schema");
  const std::string path = dir / "new.db";
  ASSERT_TRUE(SqliteStore::Open(path));
  const int newer = SqliteStore::kSchemaVersion + 1;
  Sql(path, "PRAGMA user_version=" + std::to_string(newer));
  auto s = SqliteStore::Open(path);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(s.error().message, HasSubstr(path));
  EXPECT_THAT(s.error().message, HasSubstr("schema version " + std::to_string(newer)));
  EXPECT_THAT(s.error().message, HasSubstr("(" + std::to_string(SqliteStore::kSchemaVersion) + ")"));
}

}  // namespace
}  // namespace sp
