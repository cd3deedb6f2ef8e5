// The inventory service: the inventory schema (docs/inventory.md) kept in the
// store, one document per stack. Every write is validated as a whole stack
// (the same rules as the file) inside one store transaction: either it all
// lands or nothing does, and a reader sees it at once (read-your-writes, also
// from another server process sharing the store).
//
// Objects are addressed by path, the same as the HTTP API:
//   {"stacks", S}
//   {"stacks", S, "deployments", D}
//   {"stacks", S, "deployments", D, "releases", R}
//   {"stacks", S, "deployments", D, "hosts", H}        (the deployment's pool)
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "inventory/inventory.h"
#include "inventory/store.h"

namespace sp::inventory {

using Doc = nlohmann::ordered_json;

struct ServiceOptions {
  HostSourceRunner run_source;  // For deployments with a dynamic `source`.
};

struct ApplyResult {
  // One line per object, "+ stack demo", "~ release demo/prod/web",
  // "- deployment demo/old"; empty when the store already matches.
  std::vector<std::string> changes;
};

class Service {
 public:
  Service(InventoryStore& store, ServiceOptions options = {});

  // The whole inventory as stored (parsed once per store revision), with
  // that revision (answers derived from it may be cached under it).
  struct Snapshot {
    int64_t revision = 0;
    std::shared_ptr<const Inventory> inventory;
  };
  Result<Snapshot> Current(int64_t* revision);
  Result<std::shared_ptr<const Inventory>> Current();

  // Makes the store match `file`: its stacks, deployments, releases and pool
  // hosts replace the stored ones; with `prune`, stored objects the file
  // omits are deleted, else they are kept. Validated as a whole before
  // anything is written. `dry_run`: the changes, nothing written.
  Result<ApplyResult> Apply(const Inventory& file, bool prune, bool dry_run);

  Result<ResolvedTarget> Resolve(const std::string& stack, const std::string& release, const std::string& deployment,
                                 const std::string& limit = "");

  // Object API. Get: kNotFound naming the missing part. Put: creates or
  // replaces (true if created); the value is the object's schema as in the
  // file (a host: its mapping; its name must match the path). Delete:
  // kNotFound if absent.
  Result<Doc> Get(const std::vector<std::string>& path);
  Result<bool> Put(const std::vector<std::string>& path, const Doc& value);
  Status Delete(const std::vector<std::string>& path);

  // Personal deployments. Claim: `user`'s deployment from `template_name`
  // (created with a free pool host, or the existing claim again); kConflict
  // when every pool host is taken. Release: runs `teardown` on the claimed
  // deployment's resolved target (stop the app, remove its LB server entry),
  // then deletes the deployment and frees the host; a failed teardown keeps
  // the claim. Expire: releases every claim whose TTL passed at `now_ms`.
  using Teardown = std::function<Status(const ResolvedTarget&)>;
  Result<ClaimRecord> Claim(const std::string& stack, const std::string& template_name, const std::string& user,
                            int64_t now_ms);
  Status Release(const std::string& stack, const std::string& deployment, const Teardown& teardown);
  Result<std::vector<ClaimRecord>> Expire(int64_t now_ms, const Teardown& teardown);
  Result<std::vector<ClaimRecord>> Claims();

 private:
  InventoryStore& store_;
  ServiceOptions options_;
  std::mutex mu_;
  int64_t cached_revision_ = -1;
  std::shared_ptr<const Inventory> cached_;
};

// Parses one stack document as the file would ("stacks.<name>..." paths in
// errors, `where` as the file name).
Result<StackSpec> ParseStackDoc(const std::string& name, const Doc& doc, const std::string& where);

}  // namespace sp::inventory
