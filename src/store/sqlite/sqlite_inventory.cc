// SqliteStore: the InventoryStore methods and its transaction (SqliteStore::Txn).
#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <string>

#include "store/sqlite/sqlite_internal.h"

namespace sp {

using sqlite_internal::DbError;
using sqlite_internal::Done;
using sqlite_internal::Stmt;

class SqliteStore::Txn final : public InventoryTxn {
 public:
  explicit Txn(sqlite3* db) : db_(db) {}

  Result<std::vector<StackRecord>> Stacks() override {
    Stmt st(db_, "SELECT name, doc, revision FROM inventory_stacks ORDER BY name");
    if (!st.ok()) return Err(DbError(db_, "list stacks"));
    std::vector<StackRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(StackRecord{st.Text(0), st.Text(1), st.Int(2)});
    if (rc != SQLITE_DONE) return Err(DbError(db_, "list stacks"));
    return out;
  }
  Result<std::optional<StackRecord>> Stack(const std::string& name) override {
    Stmt st(db_, "SELECT name, doc, revision FROM inventory_stacks WHERE name=?");
    st.Bind(1, name);
    int rc = st.Step();
    if (rc == SQLITE_ROW) return std::optional<StackRecord>(StackRecord{st.Text(0), st.Text(1), st.Int(2)});
    if (rc != SQLITE_DONE) return Err(DbError(db_, "read stack"));
    return std::optional<StackRecord>();
  }
  Status PutStack(const std::string& name, const std::string& doc) override {
    SP_ASSIGN_OR_RETURN(int64_t rev, Bump());
    Stmt st(db_, "INSERT INTO inventory_stacks(name, doc, revision) VALUES(?,?,?) "
                 "ON CONFLICT(name) DO UPDATE SET doc=excluded.doc, revision=excluded.revision");
    st.Bind(1, name).Bind(2, doc).Bind(3, rev);
    return Done(st, db_, "write stack");
  }
  Status DeleteStack(const std::string& name) override {
    SP_TRY(Bump());
    Stmt st(db_, "DELETE FROM inventory_stacks WHERE name=?");
    st.Bind(1, name);
    SP_TRY(Done(st, db_, "delete stack"));
    Stmt claims(db_, "DELETE FROM inventory_claims WHERE stack=?");
    claims.Bind(1, name);
    return Done(claims, db_, "delete claims");
  }
  Result<std::vector<ClaimRecord>> Claims() override {
    Stmt st(db_, "SELECT stack, template, user, deployment, host, claimed_ms, expires_ms FROM inventory_claims "
                 "ORDER BY stack, deployment");
    if (!st.ok()) return Err(DbError(db_, "list claims"));
    std::vector<ClaimRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      out.push_back(ClaimRecord{st.Text(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4), st.Int(5), st.Int(6)});
    }
    if (rc != SQLITE_DONE) return Err(DbError(db_, "list claims"));
    return out;
  }
  Status PutClaim(const ClaimRecord& c) override {
    SP_TRY(Bump());
    Stmt st(db_, "INSERT INTO inventory_claims(stack, deployment, template, user, host, claimed_ms, expires_ms) "
                 "VALUES(?,?,?,?,?,?,?) ON CONFLICT(stack, deployment) DO UPDATE SET template=excluded.template, "
                 "user=excluded.user, host=excluded.host, claimed_ms=excluded.claimed_ms, expires_ms=excluded.expires_ms");
    st.Bind(1, c.stack).Bind(2, c.deployment).Bind(3, c.template_name).Bind(4, c.user).Bind(5, c.host);
    st.Bind(6, c.claimed_ms).Bind(7, c.expires_ms);
    return Done(st, db_, "write claim");
  }
  Status DeleteClaim(const std::string& stack, const std::string& deployment) override {
    SP_TRY(Bump());
    Stmt st(db_, "DELETE FROM inventory_claims WHERE stack=? AND deployment=?");
    st.Bind(1, stack).Bind(2, deployment);
    return Done(st, db_, "delete claim");
  }

 private:
  Result<int64_t> Bump() {
    Stmt st(db_, "UPDATE inventory_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision");
    if (!st.ok() || st.Step() != SQLITE_ROW) return Err(DbError(db_, "bump inventory revision"));
    return st.Int(0);
  }
  sqlite3* db_;
};

Result<int64_t> SqliteStore::InventoryRevision() {
  std::lock_guard l(mu_);
  Stmt st(db_, Cached("SELECT revision FROM inventory_revision WHERE id = 1"));
  if (!st.ok() || st.Step() != SQLITE_ROW) return Err(DbError(db_, "read inventory revision"));
  return st.Int(0);
}

Result<std::vector<StackRecord>> SqliteStore::InventoryStacks() {
  std::lock_guard l(mu_);
  return Txn(db_).Stacks();
}

Result<std::vector<ClaimRecord>> SqliteStore::InventoryClaims() {
  std::lock_guard l(mu_);
  return Txn(db_).Claims();
}

Status SqliteStore::InventoryWrite(const std::function<Status(InventoryTxn&)>& fn) {
  std::lock_guard l(mu_);
  // IMMEDIATE (in Transaction): the write lock is taken now, so a
  // read-modify-write of another process cannot slip in between our read and
  // our write.
  Txn txn(db_);
  return Transaction([&] { return fn(txn); });
}

}  // namespace sp
