#include "rollout/event_format.h"

#include <cstdio>

#include "core/text.h"

namespace sp {

namespace {

// The step's own duration (detail.step_ms), not the host's time so far.
std::string StepLine(const Event& e) {
  if (e.phase == StepPhase::kBegin) return "";
  const int64_t ms = e.detail.is_object() ? e.detail.value("step_ms", e.elapsed_ms) : e.elapsed_ms;
  char buf[1024];
  std::snprintf(buf, sizeof buf, "  %-12s %-14s %-5s %8s", e.host.empty() ? "(rollout)" : e.host.c_str(),
                Name(e.step).c_str(), e.phase == StepPhase::kEnd ? "ok" : "FAIL", FormatDuration(Millis(ms)).c_str());
  std::string line = buf;
  // A hook's step names the hook (several may run at one point).
  if (e.detail.is_object() && e.detail.contains("hook")) line += "  hook " + e.detail.value("hook", std::string());
  // A silence's names its id (and whether a resume adopted it).
  if (e.detail.is_object() && e.detail.contains("silence")) {
    line += "  silence " + e.detail.value("silence", std::string()) + (e.detail.value("adopted", false) ? " (adopted)" : "");
  }
  return line;
}

}  // namespace

std::string FormatEvent(const Event& e) {
  auto s = [&e](const char* k) { return e.detail.value(k, std::string()); };
  char buf[1024];
  buf[0] = 0;
  switch (e.type) {
    case EventType::kStep:
      return StepLine(e);
    case EventType::kRolloutStarted:
      std::snprintf(buf, sizeof buf, "rollout %s: %s to %s/%s (%d hosts)%s", e.rollout_id.c_str(), s("version").c_str(),
                    s("release").c_str(), s("deployment").c_str(), e.detail.value("hosts", 0),
                    e.detail.value("resumed", false) ? " [resumed]" : "");
      break;
    case EventType::kHostDone:
      std::snprintf(buf, sizeof buf, "  %-12s done, out of rotation %s", e.host.c_str(),
                    FormatDuration(Millis(e.detail.value("out_of_rotation_ms", int64_t{0}))).c_str());
      break;
    case EventType::kHostFailed:
      std::snprintf(buf, sizeof buf, "  %-12s FAILED: %s", e.host.c_str(), s("error").c_str());
      break;
    case EventType::kReconcile:
      std::snprintf(buf, sizeof buf, "  %-12s reconciled: %s", e.host.c_str(), s("decision").c_str());
      break;
    case EventType::kServerAdded:
      std::snprintf(buf, sizeof buf, "  %-12s added to %s backend %s as %s (%s)", e.host.c_str(), s("lb").c_str(),
                    s("backend").c_str(), s("server").c_str(), s("address").c_str());
      break;
    case EventType::kTeardownStarted:
      std::snprintf(buf, sizeof buf, "teardown %s: %s/%s (%d hosts)", e.rollout_id.c_str(), s("release").c_str(),
                    s("deployment").c_str(), e.detail.value("hosts", 0));
      break;
    case EventType::kTeardownFinished:
      std::snprintf(buf, sizeof buf, "teardown %s %s in %s", e.rollout_id.c_str(), s("status").c_str(),
                    FormatDuration(Millis(e.elapsed_ms)).c_str());
      break;
    case EventType::kWarning:
      std::snprintf(buf, sizeof buf, "  warning: %s", s("message").c_str());
      break;
    case EventType::kRolloutFinished:
      break;
  }
  return buf;
}

}  // namespace sp
