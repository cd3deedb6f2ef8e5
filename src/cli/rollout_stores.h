// Where a rollout run by this CLI reads its inventory and keeps its journal
// and scope lock: the local store, or the server of `-i URL`.
#pragma once

#include <memory>
#include <string>

#include "agent/remote_job_store.h"
#include "cli/command.h"

namespace sp::cli {

// `-i` names a server (http:// or https://).
bool InventoryFromServer(const Args& a);

// The journal and the scope lock of a rollout run here: the local store;
// or, when it read its inventory from a server (-i URL), that server
// (POST /v1/journal/STACK/RELEASE/DEPLOYMENT), so that the server's history
// shows it and its lock excludes the server's own rollouts of the scope.
struct Stores {
  std::unique_ptr<ApiClient> api;
  std::unique_ptr<RemoteJobStore> remote;
  JournalStore* journal = nullptr;
  LockStore* locks = nullptr;
};

Result<Stores> StoresFor(Context& ctx, const std::string& stack, const std::string& release,
                         const std::string& deployment);

}  // namespace sp::cli
