// What runs where (`sallyport status`, GET /v1/status): for every release of
// every deployment in the inventory, its current version — the scope's last
// successful rollout: version, artifact, kind, who asked, when it finished,
// and the build it came from (commit, author, branch) — a rollout running
// there with its hosts' progress, and the scope lock's holder.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "build/records.h"
#include "core/error.h"
#include "inventory/inventory.h"
#include "rollout/journal.h"
#include "rollout/lock.h"

namespace sp {

struct StatusSources {
  const Inventory* inventory = nullptr;  // Required.
  JournalStore* journal = nullptr;       // Required.
  LockStore* locks = nullptr;            // May be null: no lock column.
  BuildStore* builds = nullptr;          // May be null: no commit column.
};

// {"releases": [{stack, release, deployment, network, current, running,
// lock}]} in inventory order (docs/schemas/status.schema.json); `current`,
// `running`, `lock` and `current.build` are null when there is none.
Result<nlohmann::ordered_json> DeliveryStatusJson(const StatusSources& in, int64_t now_ms);

}  // namespace sp
