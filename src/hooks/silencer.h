// The port through which a rollout holds an alert silence (SilenceSpec,
// inventory.h) while it touches hosts. The engine decides when to make,
// extend and expire it and journals each (rollout/engine_silence.cc); the
// adapter (alertmanager_silencer.h) speaks to one Alertmanager.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "inventory/inventory.h"

namespace sp {

struct Silence {
  std::string id;                         // Empty: not made yet.
  std::vector<SilenceMatcher> matchers;   // Expanded: no {placeholders} left.
  // As the Alertmanager wrote it (RFC 3339), sent back unchanged on an
  // extension so that it updates the silence in place. Empty: now.
  std::string starts_at;
  int64_t ends_at_ms = 0;                 // Unix ms.
  std::string created_by, comment;
  std::string state;                      // "active", "pending", "expired" (as listed).
};

class Silencer {
 public:
  virtual ~Silencer() = default;
  // The silences not yet expired whose comment contains `marker`.
  virtual Result<std::vector<Silence>> Find(const SilenceSpec& spec, const std::string& marker) = 0;
  // Makes `s` (s.id empty) or updates it (extends it): its id, which an
  // Alertmanager may change when it cannot update in place.
  virtual Result<std::string> Put(const SilenceSpec& spec, const Silence& s) = 0;
  // Expires silence `id` (one already expired or gone is Ok).
  virtual Status Expire(const SilenceSpec& spec, const std::string& id) = 0;
};

}  // namespace sp
