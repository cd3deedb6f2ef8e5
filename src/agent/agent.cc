#include "agent/agent.h"
#include "agent/job.h"

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "agent/lease.h"
#include "agent/log_shipper.h"
#include "agent/remote_job_store.h"
#include "deploy/left_rollouts.h"
#include "rollout/event_format.h"
#include "rollout/plan_check.h"

namespace sp {

using Doc = nlohmann::ordered_json;

Result<RolloutSummary> RunRolloutWithAdapters(const RolloutPlan& plan, const EngineSetup& setup, bool resume) {
  EngineWiring wiring(setup);
  auto engine = wiring.EngineFor(plan);
  return resume ? engine->Resume(plan.id) : engine->Run(plan);
}

Agent::Agent(ApiClient& api, AgentOptions options) : api_(api), o_(std::move(options)) { SP_CHECK(o_.clock); }

Result<Doc> Agent::Register() {
  SP_ASSIGN_OR_RETURN(Doc me, api_.Call("POST", "/v1/agent/register", Doc{{"labels", Doc::object()}}.dump()));
  name_ = me.value("name", "");
  return me;
}

void Agent::Run(const std::atomic<bool>& stopping) {
  stopping_ = &stopping;
  const std::string claim_path = "/v1/agent/claim?wait_ms=" + std::to_string(o_.claim_wait.count()) +
                                 "&lease_ms=" + std::to_string(o_.lease_ms);
  while (!stopping) {
    const int64_t claim_sent = o_.clock->MonotonicMs();
    auto claim = api_.Call("POST", claim_path);
    if (!claim) {
      std::fprintf(stderr, "agent: claim: %s\n", claim.error().message.c_str());
      o_.clock->Sleep(Millis(1000));
      continue;
    }
    if (claim->is_null()) continue;  // Nothing for us yet.
    RunClaimedJob(*claim, claim_sent);
  }
}

namespace {

// Renews a job's lease every quarter of it until stopped; a 409 marks it lost.
class Heartbeat {
 public:
  Heartbeat(ApiClient& api, Clock& clock, int64_t lease_ms, std::function<void(int64_t sent, Status)> on_answer,
            std::string path, int64_t epoch)
      : thread_([=, &api, &clock, this] {
          std::unique_lock lk(mu_);
          while (!cv_.wait_for(lk, std::chrono::milliseconds(lease_ms / 4), [this] { return stopped_; })) {
            lk.unlock();
            const int64_t sent = clock.MonotonicMs();
            auto hb = api.Call("POST", path, Doc{{"epoch", epoch}, {"lease_ms", lease_ms}}.dump());
            on_answer(sent, hb ? Status(Ok()) : Status(Err(hb.error())));
            lk.lock();
          }
        }) {}
  ~Heartbeat() {
    {
      std::lock_guard lk(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace

void Agent::RunClaimedJob(const Doc& claim, int64_t claim_sent) {
  Job job(claim.value("id", int64_t{0}), claim.value("epoch", int64_t{0}), o_.lease_ms, *o_.clock);
  job.lease.ConfirmedAt(claim_sent);
  job.base = "/v1/agent/jobs/" + std::to_string(job.id);
  job.kind = claim.value("kind", "");
  job.payload = claim.value("payload", "");
  job.post = [this, &job](const std::string& path, Doc body) {
    MaskJson(job.masker, body);
    body["epoch"] = job.epoch;
    return api_.Call("POST", job.base + path, body.dump());
  };
  std::printf("agent: job %lld (epoch %lld)\n", static_cast<long long>(job.id), static_cast<long long>(job.epoch));
  std::fflush(stdout);
  if (job.kind != "build" && job.kind != "rollout" && job.kind != "reconcile") {
    (void)job.post("/fail", {{"error", "agents run build, rollout and reconcile jobs, not '" + job.kind + "'"}});
    return;
  }
  bool ok = false, handed_back = false;
  std::string outcome;
  {
    Heartbeat heartbeat(api_, *o_.clock, o_.lease_ms, [&job](int64_t sent, Status st) {
      if (st) return job.lease.ConfirmedAt(sent);
      if (st.error().code == ErrorCode::kConflict) {
        job.lease.Lost();
        job.lease_lost = true;
      }
      std::fprintf(stderr, "agent: job %lld: heartbeat: %s\n", static_cast<long long>(job.id), st.error().message.c_str());
    }, job.base + "/heartbeat", job.epoch);
    // This job's lines (the rollout's events, this agent's notes) go to the
    // server's job log as well as to stdout.
    LogShipper shipper([&job](const Doc& lines) -> Status { return job.post("/log", {{"lines", lines}}).map([](Doc) {}); },
                       *o_.clock);
    job.shipper = &shipper;
    shipper.Line("agent", false, "job " + std::to_string(job.id) + " (epoch " + std::to_string(job.epoch) +
                                     ") claimed by agent " + name_);
    if (job.kind == "build") {
      outcome = RunBuildJob(job);
      ok = true;  // The build ran to its outcome: the job is done, whatever the build's status.
    } else {
      outcome = RunRolloutJob(job, &ok, &handed_back);
    }
    shipper.Line("agent", !ok && !handed_back,
                 "job " + std::to_string(job.id) + (handed_back ? " handed back: " : ok ? " succeeded: " : " failed: ") +
                     outcome);
    shipper.Close();  // The whole log is on the server before the job reads as finished.
  }
  auto reported = handed_back ? job.post("/handback", {{"error", outcome}})
                 : ok        ? job.post("/complete", {{"result", outcome}})
                             : job.post("/fail", {{"error", outcome}});
  outcome = job.masker.Mask(outcome);
  std::printf("agent: job %lld %s%s\n", static_cast<long long>(job.id),
              handed_back ? "handed back: " : ok ? "succeeded" : "failed: ", ok ? "" : outcome.c_str());
  if (!reported) {
    std::fprintf(stderr, "agent: job %lld: report: %s\n", static_cast<long long>(job.id), reported.error().message.c_str());
  }
  std::fflush(stdout);
}

std::string Agent::RunRolloutJob(Job& job, bool* ok, bool* handed_back) {
  const std::optional<std::string> plan_text = PlanTextOfJob(job.kind, job.payload);
  if (!plan_text) return "refused: job " + std::to_string(job.id) + " carries no plan";
  auto plan = PlanFromJson(*plan_text);
  if (!plan) return plan.error().message;
  // Checked again here, before anything starts: a plan is a wire's word.
  if (auto checked = CheckPlan(*plan); !checked) return "refused: " + checked.error().message;
  RemoteJobStore remote([&job](const nlohmann::json& body) -> Result<nlohmann::json> {
    SP_ASSIGN_OR_RETURN(Doc answer, job.post("/store", Doc::parse(body.dump())));
    if (answer.is_null()) return nlohmann::json::object();
    return nlohmann::json::parse(answer.dump());
  });
  EngineSetup setup;
  setup.journal = &remote;
  setup.locks = &remote;
  setup.fence = [&job] { return job.lease.Fence(); };
  setup.hand_back = [this] { return stopping_ && stopping_->load(); };  // Checked before each batch.
  setup.verify_lease_each_action = false;  // A read of the server's store per action: its renewals confirm it.
  setup.lease_ttl = Millis(o_.lease_ms);
  // A holder that died or stalled (the job's previous agent) lets the
  // scope's lock lapse within one lease of its last renewal: wait that long
  // rather than spend an attempt on the conflict.
  setup.lock_wait = Millis(o_.lease_ms);
  setup.decorate_lb = o_.decorate_lb;
  setup.read_secret = [&job](const std::string& ref) { return CredentialOrSecret(job, ref); };
  setup.on_event = [this, &job](const Event& e) {
    if (std::string line = job.masker.Mask(FormatEvent(e)); !line.empty()) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
      job.shipper->Line("rollout", e.type == EventType::kHostFailed, line);
    }
    if (o_.observe_event) o_.observe_event(e);
  };
  Result<RolloutSummary> r = Err(ErrorCode::kInternal, "not run");
  if (job.kind == "reconcile") {
    job.shipper->Line("agent", false, "reconciling the hosts of rollout " + plan->id + " (its job ran out of attempts)");
    EngineWiring wiring(setup);
    r = wiring.EngineFor(*plan)->Reconcile(plan->id, ReconcileReasonOf(job.payload));
    *ok = r && r->status != RolloutStatus::kRunning;  // Ended: reconciled now, or before.
    return r ? "reconciled: rollout " + std::string(RolloutStatusName(r->status)) + (r->error.empty() ? "" : ": " + r->error)
             : r.error().message;
  }
  auto recorded = remote.GetRollout(plan->id);
  if (recorded && recorded->status == RolloutStatus::kRunning) {
    std::printf("agent: job %lld: resuming rollout %s from the server's journal\n", static_cast<long long>(job.id),
                plan->id.c_str());
    std::fflush(stdout);
    job.shipper->Line("agent", false, "resuming rollout " + plan->id + " from the server's journal");
    r = o_.run_rollout(*plan, setup, /*resume=*/true);
  } else if (recorded) {
    // Finished under an earlier lease whose agent could not report it.
    RolloutSummary done;
    done.rollout_id = plan->id;
    done.status = recorded->status;
    done.error = recorded->error;
    r = done;
  } else if (recorded.error().code == ErrorCode::kNotFound) {
    r = o_.run_rollout(*plan, setup, /*resume=*/false);
  } else {
    r = Err(recorded.error());
  }
  *ok = r && r->status == RolloutStatus::kSucceeded;
  *handed_back = r && r->handed_back;
  return r ? std::string(RolloutStatusName(r->status)) + (r->error.empty() ? "" : ": " + r->error) : r.error().message;
}

}  // namespace sp
