// Where the inventory service keeps its documents: one per stack, and
// personal-deployment claims.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/enum_names.h"
#include "core/error.h"

namespace sp {

// The inventory: one document per stack (the inventory schema's JSON for
// that stack, see docs/inventory.md), and personal-deployment claims. Every
// write runs in one exclusive transaction, so two server processes sharing
// the store never interleave; a write that fails changes nothing.
struct StackRecord {
  std::string name;
  std::string doc;        // JSON.
  int64_t revision = 0;   // Store-wide revision of its last write.
};

struct ClaimRecord {
  std::string stack, template_name, user, deployment, host;
  int64_t claimed_ms = 0, expires_ms = 0;  // expires_ms 0: no TTL.
};

class InventoryTxn {
 public:
  virtual ~InventoryTxn() = default;
  virtual Result<std::vector<StackRecord>> Stacks() = 0;
  virtual Result<std::optional<StackRecord>> Stack(const std::string& name) = 0;
  virtual Status PutStack(const std::string& name, const std::string& doc) = 0;
  virtual Status DeleteStack(const std::string& name) = 0;
  virtual Result<std::vector<ClaimRecord>> Claims() = 0;
  virtual Status PutClaim(const ClaimRecord& c) = 0;
  virtual Status DeleteClaim(const std::string& stack, const std::string& deployment) = 0;
};

class InventoryStore {
 public:
  virtual ~InventoryStore() = default;
  // Changes with every committed inventory write (cheap: for caches).
  virtual Result<int64_t> InventoryRevision() = 0;
  virtual Result<std::vector<StackRecord>> InventoryStacks() = 0;
  virtual Result<std::vector<ClaimRecord>> InventoryClaims() = 0;
  // Runs `fn` in one write transaction: committed if it returns Ok, rolled
  // back (nothing written) if it returns an error or throws.
  virtual Status InventoryWrite(const std::function<Status(InventoryTxn&)>& fn) = 0;
};

}  // namespace sp
