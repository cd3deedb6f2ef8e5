#include "rollout/lock.h"

#include "core/text.h"

namespace sp {

std::string LockReason(std::string_view kind, std::string_view rollout_id, std::string_view version) {
  return std::string(kind) + " " + std::string(rollout_id) + " " + std::string(version);
}

std::string RolloutIdInLockReason(std::string_view reason) {
  const size_t first = reason.find(' ');
  if (first == std::string_view::npos) return "";
  const size_t second = reason.find(' ', first + 1);
  return std::string(reason.substr(first + 1, second == std::string_view::npos ? std::string_view::npos : second - first - 1));
}

Status OperatorRelease(LockStore& locks, const std::string& key, bool force, int64_t now_ms,
                       const std::function<std::optional<bool>(const Lease&)>& holder_alive) {
  SP_ASSIGN_OR_RETURN(std::optional<Lease> held, locks.Get(key));
  if (!held) return Err(ErrorCode::kNotFound, "no lock " + Printable(key));
  const std::optional<bool> running = holder_alive ? holder_alive(*held) : std::nullopt;
  const bool alive = running.value_or(false);
  if (!force && running.value_or(held->expires_ms > now_ms)) {
    return Err(ErrorCode::kConflict,
               "lock " + key + " is held by " + held->holder + " (" + held->reason + "), " +
                   (alive ? "a process that is still running"
                          : "its lease renewed until " + std::to_string((held->expires_ms - now_ms) / 1000) +
                                " s from now") +
                   ". Releasing it lets another rollout act on the same hosts while this one still does: more "
                   "hosts out of rotation than the batch allows, or a fleet left on the wrong version. Stop that "
                   "rollout (Ctrl-C) or wait for its lease to lapse; --force releases it anyway, and the holder "
                   "stops acting once it notices");
  }
  return locks.ForceRelease(key);
}

}  // namespace sp
