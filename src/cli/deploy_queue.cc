#include "cli/deploy_queue.h"

#include <chrono>
#include <thread>

#include "core/clock.h"
#include "core/text.h"

namespace sp::cli {

Result<RolloutPlan> DeployPlan(inventory::Service& inventory, const DeployRequest& r, const LineCallback& log) {
  const ServiceConfig& cfg = *r.cfg;
  auto target = inventory.Resolve(cfg.stack, r.release, r.deployment, "");
  if (!target && target.error().code == ErrorCode::kNotFound) {
    auto cur = inventory.Current();
    const Inventory* inv = cur ? cur->get() : nullptr;
    if (inv && inv->stacks.count(cfg.stack)) {
      for (const auto& [tname, t] : inv->stacks.at(cfg.stack).templates) {
        const size_t at = t.name_pattern.find("{user}");
        const std::string pre = t.name_pattern.substr(0, at), post = t.name_pattern.substr(at + 6);
        const std::string& d = r.deployment;
        if (d.size() <= pre.size() + post.size() || d.rfind(pre, 0) != 0 ||
            d.compare(d.size() - post.size(), post.size(), post) != 0) {
          continue;
        }
        const std::string user = d.substr(pre.size(), d.size() - pre.size() - post.size());
        auto claim = inventory.Claim(cfg.stack, tname, user, RealClock::Instance().WallMs());
        if (!claim) return Err(claim.error().Wrap("claiming " + d));
        log(false, "claimed " + d + " (host " + claim->host + ") from template " + tname);
        target = inventory.Resolve(cfg.stack, r.release, d, "");
        break;
      }
    }
  }
  if (!target) return Err(target.error());
  PlanInput in;
  in.id = NewRolloutId();
  in.artifact = r.artifact;
  in.now_ms = RealClock::Instance().WallMs();
  return BuildPlan(cfg, *target, in);
}

JobSpec RolloutJobSpec(const RolloutPlan& plan) {
  JobSpec spec;
  spec.kind = "rollout";
  spec.payload = PlanToJson(plan);
  spec.labels = {{"network", plan.network}};
  spec.idempotency_key = plan.id;
  return spec;
}

Status WaitForJob(const JobWatch& w, const LineCallback& log, const std::atomic<bool>& cancel, Millis claim_timeout) {
  auto queued_since = std::chrono::steady_clock::now();  // Since it was last (re)queued.
  std::string last_state = "queued";
  int64_t offset = 0;
  std::string pending;
  bool noted_cancel = false, took_over = false;
  auto copy_log = [&] {
    auto bytes = w.read_log(offset);
    if (!bytes) return;
    offset += static_cast<int64_t>(bytes->size());
    pending += *bytes;
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (auto l = ParseLogLine(pending.substr(start, nl - start))) log(l->is_err, l->text);
    }
    pending.erase(0, start);
  };
  for (;;) {
    auto p = w.poll();
    copy_log();
    if (!p) return Err(p.error().Wrap(w.what));
    if (p->state == "queued" && last_state != "queued") queued_since = std::chrono::steady_clock::now();
    last_state = p->state;
    if (p->state == "succeeded") {
      log(false, w.what + " succeeded by " + p->owner + (p->result.empty() ? "" : ": " + p->result));
      return Ok();
    }
    if (p->state == "dead" || p->state == "canceled") {
      return Err(ErrorCode::kUnavailable, w.what + " " + p->state + (p->error.empty() ? "" : ": " + p->error));
    }
    if (p->state == "queued" && cancel.load()) {
      (void)w.cancel();
      return Err(ErrorCode::kCancelled, "canceled (" + w.what + " canceled before an agent took it)");
    }
    if (p->state == "queued" && w.take_over && !took_over &&
        std::chrono::steady_clock::now() - queued_since >= w.take_over_after) {
      took_over = true;
      w.take_over();
      continue;
    }
    if (p->state == "queued" && std::chrono::steady_clock::now() - queued_since > claim_timeout) {
      (void)w.cancel();
      return Err(ErrorCode::kTimeout, "no agent took " + w.what + " within " + FormatDuration(claim_timeout) +
                                          ": run `sallyport agent run` with a token bound to its labels");
    }
    if (p->state == "leased" && cancel.load() && !noted_cancel) {
      noted_cancel = true;
      if (w.cancel_running) {
        log(true, "cancel requested: canceling " + w.what + " on " + p->owner);
        if (auto st = w.cancel(); !st) log(true, "canceling " + w.what + ": " + st.error().message);
      } else {
        log(true, "cancel requested: " + w.what + " is running on " + p->owner + " and is left to finish");
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace sp::cli
