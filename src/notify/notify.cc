#include "notify/notify.h"

#include <algorithm>
#include <cctype>

#include "config/service_config.h"
#include "core/text.h"
#include "rollout/plan.h"

namespace sp {

using nlohmann::json;
using nlohmann::ordered_json;

const std::vector<std::string> kNotifyEventNames = {
    "build.started",   "build.succeeded",       "build.failed",        "rollout.started",
    "rollout.succeeded", "rollout.failed",      "rollout.rolled_back", "rollout.interrupted",
    "rollout.host_restored", "rollout.restore_failed", "rollout.lock_taken_over", "rollout.silence_failed",
    "rollout.hook_failed"};

namespace {

const std::map<std::string, std::string> kDefaultTemplates = {
    {"build.started", "Build {build} of {project} {branch} started{change}"},
    {"build.succeeded", "Build {build} of {project} {branch} succeeded in {duration}: {artifact}"},
    {"build.failed", "Build {build} of {project} {branch} FAILED after {duration}: {error}{change}"},
    {"rollout.started", "Rollout {rollout}: {service} {version} to {release}/{deployment} started{change}"},
    {"rollout.succeeded",
     "Rollout {rollout}: {service} {version} is live on {release}/{deployment} in {duration}{change}"},
    {"rollout.failed", "Rollout {rollout} of {service} {version} to {release}/{deployment} FAILED after {duration}: {error}"},
    {"rollout.rolled_back", "Rollback {rollout}: {release}/{deployment} is back on {version} ({duration})"},
    {"rollout.interrupted", "Rollout {rollout} of {version} to {release}/{deployment} was interrupted: {error}"},
    {"rollout.host_restored",
     "Rollout {rollout}: host {host} of {release}/{deployment} failed and was restored to its previous version"},
    {"rollout.lock_taken_over",
     "Rollout {rollout} of {version} to {release}/{deployment} took the lock over from {holder}, which died"},
    {"rollout.hook_failed",
     "Rollout {rollout} of {version} to {release}/{deployment}: its {point} hook {hook} failed: {cause}"},
    {"rollout.silence_failed",
     "Rollout {rollout} of {version} to {release}/{deployment}: its hosts' alerts could not be silenced: {cause}"},
    {"rollout.restore_failed",
     "Rollout {rollout}: host {host} of {release}/{deployment} could not be restored and may be out of rotation: "
     "{cause}"},
};

bool IsChannelName(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-';
  });
}

// A reference the server reads itself: file:/path or env:NAME (config/service_config.h).
bool IsRef(const std::string& ref) {
  return (StartsWith(ref, "file:") || StartsWith(ref, "env:")) && IsValidSecretRef(ref);
}

bool EventMatches(const std::string& pattern, const std::string& name) {
  if (pattern == "*" || pattern == name) return true;
  return pattern.size() > 2 && pattern.compare(pattern.size() - 2, 2, ".*") == 0 &&
         name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
}

std::string Duration(int64_t from, int64_t to) { return from > 0 && to >= from ? FormatDuration(Millis(to - from)) : ""; }

void AddBuild(NotifyEvent& e, const std::optional<BuildRecord>& b) {
  if (!b) return;
  e.project = b->project;
  e.fields["project"] = b->project;
  e.fields["branch"] = b->branch;
  e.fields["commit"] = b->sha.substr(0, 12);
  e.fields["author"] = b->author;
  e.fields["message"] = b->message.substr(0, b->message.find('\n'));
  e.fields["build"] = std::to_string(b->id);
  // " (<commit> by <author>: <message>)": what the default messages say of the change.
  e.fields["change"] = " (" + e.fields["commit"] + " by " + b->author +
                       (e.fields["message"].empty() ? "" : ": " + e.fields["message"]) + ")";
}

NotifyEvent RolloutEvent(const RolloutRecord& r, const std::optional<BuildRecord>& build) {
  NotifyEvent e;
  e.subject = r.id;
  e.deployment = r.deployment;
  e.fields = {{"rollout", r.id}, {"stack", r.stack}, {"release", r.release}, {"deployment", r.deployment},
              {"kind", std::string(Name(r.kind))}};
  if (auto plan = PlanFromJson(r.plan_json); plan) {
    e.fields["service"] = plan->service;
    e.fields["version"] = plan->app.version;
    e.fields["artifact"] = plan->app.artifact;
  }
  AddBuild(e, build);
  return e;
}

}  // namespace

Status CheckChannel(const NotifyChannel& c) {
  auto bad = [&](const std::string& what) { return Err(ErrorCode::kInvalidArgument, "channel '" + c.name + "': " + what); };
  if (!IsChannelName(c.name)) return bad("a name is [a-z0-9-], at most 64");
  if (c.kind != "slack" && c.kind != "webhook") return bad("kind is slack or webhook");
  if (!IsRef(c.url_ref)) return bad("the URL is a reference: file:/abs/path or env:NAME (it is a credential)");
  if (c.kind == "webhook" && !IsRef(c.secret_ref)) return bad("a webhook needs its signing secret (file:/abs/path or env:NAME)");
  if (c.kind == "slack" && !c.secret_ref.empty()) return bad("a slack channel has no signing secret");
  for (const auto& ev : c.events) {
    const bool known = std::any_of(kNotifyEventNames.begin(), kNotifyEventNames.end(),
                                   [&](const std::string& n) { return EventMatches(ev, n); });
    if (!known) return bad("no event is named '" + ev + "'");
  }
  for (const auto& [ev, text] : c.templates) {
    if (std::find(kNotifyEventNames.begin(), kNotifyEventNames.end(), ev) == kNotifyEventNames.end()) {
      return bad("a template for '" + ev + "', which is no event");
    }
    if (text.empty() || text.size() > 2000) return bad("the template for '" + ev + "' is empty or too long");
  }
  if (!c.project.empty() && !IsValidName(c.project)) return bad("invalid project name");
  if (!c.deployment.empty() && !IsSafeValue(c.deployment)) return bad("invalid deployment name");
  return Ok();
}

std::vector<NotifyEvent> RolloutEvents(const RolloutRecord& r, const std::optional<BuildRecord>& build) {
  std::vector<NotifyEvent> out;
  NotifyEvent started = RolloutEvent(r, build);
  started.key = r.id + "/started";
  started.name = "rollout.started";
  started.at_ms = r.created_ms;
  out.push_back(started);
  if (r.status == RolloutStatus::kRunning) return out;
  NotifyEvent end = RolloutEvent(r, build);
  end.key = r.id + "/" + std::string(RolloutStatusName(r.status));
  end.at_ms = r.updated_ms;
  end.fields["status"] = std::string(RolloutStatusName(r.status));
  end.fields["error"] = r.error;
  end.fields["duration"] = Duration(r.created_ms, r.updated_ms);
  switch (r.status) {
    case RolloutStatus::kSucceeded:
      end.name = r.kind == PlanKind::kRollback ? "rollout.rolled_back" : "rollout.succeeded";
      break;
    case RolloutStatus::kRolledBack:
      end.name = "rollout.rolled_back";
      break;
    case RolloutStatus::kInterrupted:
      end.name = "rollout.interrupted";
      break;
    default:
      end.name = "rollout.failed";
      // "host app2 failed at health: HTTP 500": the failing host, its step and the cause.
      if (const size_t at = r.error.find("host "); at != std::string::npos) {
        const size_t failed = r.error.find(" failed at ", at);
        const size_t colon = failed == std::string::npos ? failed : r.error.find(": ", failed);
        if (colon != std::string::npos) {
          end.fields["host"] = r.error.substr(at + 5, failed - at - 5);
          end.fields["step"] = r.error.substr(failed + 11, colon - failed - 11);
          end.fields["cause"] = r.error.substr(colon + 2);
        }
      }
      // The server's automatic resume (the job's attempts) gave up: a human must look.
      end.urgent = r.error.find("ran out of attempts") != std::string::npos;
  }
  out.push_back(end);
  return out;
}

std::optional<NotifyEvent> StepEvent(const StepRecord& s, const RolloutRecord& r) {
  if (s.phase != StepPhase::kEnd && s.phase != StepPhase::kFail) return std::nullopt;
  const json detail = json::parse(s.detail.empty() ? "{}" : s.detail, nullptr, false);
  if (!detail.is_object()) return std::nullopt;
  NotifyEvent e = RolloutEvent(r, std::nullopt);
  e.at_ms = s.ts_ms;
  e.fields["cause"] = detail.value("error", std::string());
  if (s.step == Step::kRestore) {
    e.key = r.id + "/restore/" + s.host + "/" + std::to_string(s.seq);
    e.name = s.phase == StepPhase::kEnd ? "rollout.host_restored" : "rollout.restore_failed";
    e.urgent = s.phase == StepPhase::kFail;
    e.fields["host"] = s.host;
  } else if (s.step == Step::kLock && detail.contains("taken_over_from")) {
    e.key = r.id + "/lock_taken_over";
    e.name = "rollout.lock_taken_over";
    e.fields["holder"] = detail.value("taken_over_from", std::string());
  } else if (s.phase == StepPhase::kFail && (s.step == Step::kPreRollout || s.step == Step::kPreHost ||
                                              s.step == Step::kPostHost || s.step == Step::kOnFailure ||
                                              s.step == Step::kPostRollout)) {
    // A hook that failed: told whether its policy stopped the rollout or let it go on.
    e.key = r.id + "/hook_failed/" + std::to_string(s.seq);
    e.name = "rollout.hook_failed";
    e.fields["hook"] = detail.value("hook", std::string());
    e.fields["point"] = Name(s.step);
    e.fields["host"] = s.host;
  } else if (s.step == Step::kSilence && s.phase == StepPhase::kFail) {
    e.key = r.id + "/silence_failed/" + std::to_string(s.seq);
    e.name = "rollout.silence_failed";
  } else {
    return std::nullopt;
  }
  return e;
}

std::vector<NotifyEvent> BuildEvents(const BuildRecord& b) {
  std::vector<NotifyEvent> out;
  if (b.started_ms <= 0) return out;
  NotifyEvent e;
  e.subject = "build/" + std::to_string(b.id);
  e.deployment = b.deployment;
  AddBuild(e, b);
  e.fields["deployment"] = b.deployment;
  NotifyEvent started = e;
  started.key = e.subject + "/started";
  started.name = "build.started";
  started.at_ms = b.started_ms;
  out.push_back(started);
  if (b.status != BuildStatus::kSucceeded && b.status != BuildStatus::kFailed) return out;
  NotifyEvent end = e;
  end.name = b.status == BuildStatus::kSucceeded ? "build.succeeded" : "build.failed";
  end.key = e.subject + "/" + std::string(BuildStatusName(b.status));
  end.at_ms = b.finished_ms;
  end.fields["artifact"] = b.artifact;
  end.fields["error"] = b.error;
  end.fields["duration"] = Duration(b.started_ms, b.finished_ms);
  out.push_back(end);
  return out;
}

bool ChannelTakes(const NotifyChannel& c, const NotifyEvent& e) {
  if (!c.project.empty() && c.project != e.project) return false;
  if (!c.deployment.empty() && c.deployment != e.deployment) return false;
  if (c.events.empty()) return true;
  return std::any_of(c.events.begin(), c.events.end(), [&](const std::string& p) { return EventMatches(p, e.name); });
}

std::string NotificationText(const NotifyChannel& c, const NotifyEvent& e, const std::string& link) {
  auto t = c.templates.find(e.name);
  const std::string& tmpl = t != c.templates.end() ? t->second : kDefaultTemplates.at(e.name);
  std::string out = e.urgent ? "URGENT: " : "";
  for (size_t i = 0; i < tmpl.size();) {
    const size_t close = tmpl[i] == '{' ? tmpl.find('}', i + 1) : std::string::npos;
    if (close != std::string::npos) {
      const std::string name = tmpl.substr(i + 1, close - i - 1);
      if (name == "link") {
        out += link;
        i = close + 1;
        continue;
      }
      if (!name.empty() && std::all_of(name.begin(), name.end(), [](char ch) { return std::islower(ch) || ch == '_'; })) {
        auto f = e.fields.find(name);
        if (f != e.fields.end()) out += f->second;
        i = close + 1;
        continue;
      }
    }
    out += tmpl[i++];
  }
  if (!link.empty() && tmpl.find("{link}") == std::string::npos) out += " " + link;
  return out;
}

std::string SlackEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

std::string NotificationBody(const NotifyChannel& c, const NotifyEvent& e, const std::string& link) {
  const std::string text = NotificationText(c, e, link);
  if (c.kind == "slack") return ordered_json{{"text", SlackEscape(text)}}.dump();
  ordered_json fields = ordered_json::object();
  for (const auto& [k, v] : e.fields) fields[k] = v;
  if (!link.empty()) fields["link"] = link;
  return ordered_json{{"event", e.name}, {"urgent", e.urgent}, {"subject", e.subject}, {"text", text},
                      {"fields", fields},  {"delivery", c.name + ":" + e.key}, {"at_ms", e.at_ms}}
      .dump();
}

ordered_json ChannelsJson(const std::vector<NotifyChannel>& channels) {
  ordered_json out = ordered_json::array();
  for (const auto& c : channels) {
    out.push_back({{"name", c.name}, {"kind", c.kind}, {"url", c.url_ref}, {"secret", c.secret_ref},
                   {"project", c.project}, {"deployment", c.deployment}, {"events", c.events},
                   {"templates", c.templates}});
  }
  return ordered_json{{"channels", out}};
}

ordered_json NotificationsJson(const std::vector<NotificationRecord>& records) {
  ordered_json out = ordered_json::array();
  for (const auto& n : records) {
    ordered_json j = {{"channel", n.channel}, {"event", n.event}, {"urgent", n.urgent},
                      {"state", std::string(NameIn(kDeliveryStateNames, n.state))},
                      {"attempts", n.attempts}, {"created_ms", n.created_ms}, {"updated_ms", n.updated_ms}};
    if (n.delivered_ms) j["delivered_ms"] = n.delivered_ms;
    if (n.state == DeliveryState::kRetrying) j["next_ms"] = n.next_ms;
    if (!n.last_error.empty()) j["last_error"] = n.last_error;
    out.push_back(j);
  }
  return out;
}

}  // namespace sp
