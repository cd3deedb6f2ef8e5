// The agent protocol. Every route needs an agent's bearer token (a token is
// bound to labels; an agent claims with those, never with labels it
// declares). The calls on a job are fenced: only from the agent holding the
// job's lease with the body's epoch, else 409 "lease lost".
//   POST /v1/agent/register                 {labels}: 403 when it declares labels its token is not bound to
//   POST /v1/agent/claim?wait_ms=N&lease_ms=M[&job=ID]   a job for the token's labels (200; with job=ID
//                                            only that one), or 204 after waiting
//   POST /v1/agent/jobs/ID/heartbeat|complete|fail|handback   {epoch[, result | error]}: handback queues
//                                            the job again at once for any agent (its agent is stopping)
//   POST /v1/agent/jobs/ID/log              {epoch, lines: [{ts, step, err, text}]}: appended to the job's log
//   POST /v1/agent/jobs/ID/build            {epoch, build | step | config}: a build job's records
//   POST /v1/agent/jobs/ID/deploy           {epoch, config, release, deployment, artifact}: the server freezes
//                                            the plan and queues the rollout job; answers {job}
//   POST /v1/agent/jobs/ID/store            {epoch, call, ...}: the rollout's journal and lock on the server
//                                            (server/job_store_calls.h)
//   POST /v1/agent/jobs/ID/credential       {epoch, name}: {value} of the credential the job's build file or
//                                            plan names, when its binding allows that registry
//   POST /v1/agent/jobs/ID/watch            {epoch, job[, offset]}: the state (and log from offset) of the
//                                            rollout job build job ID's deploy queued, and of no other
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "build/build_log.h"
#include "deploy/deploy_plan.h"
#include "deploy/left_rollouts.h"
#include "core/file.h"
#include "core/text.h"
#include "queue/wire.h"
#include "rollout/plan.h"
#include "server/api_server.h"
#include "server/job_store_calls.h"
#include "server/log_files.h"

namespace sp {

using namespace http::routes;

namespace {

// The lease of a write must have this much left (a write cannot land after a reclaim).
constexpr int64_t kFenceMarginMs = 250;

struct Held {
  Doc body;
  Job job;
};

// A fenced call on job ID (args[0]): from the agent holding the job's lease
// with the body's epoch (a canceled job's last holder too, where
// `canceled_too`), else 400/404/409.
Result<Held> HeldJob(QueueStore& q, const Request& req, bool canceled_too) {
  SP_ASSIGN_OR_RETURN(Doc body, req.Json());
  if (!body.contains("epoch") || !body["epoch"].is_number_integer()) {
    return Err(ErrorCode::kInvalidArgument, "/epoch: required (an integer: the lease's epoch)");
  }
  const int64_t epoch = body["epoch"].get<int64_t>();
  const int64_t id = std::stoll(req.args[0]);
  SP_ASSIGN_OR_RETURN(Job job, q.GetJob(id));
  const bool state_ok = job.state == JobState::kLeased || (canceled_too && job.state == JobState::kCanceled);
  if (!state_ok || job.epoch != epoch || job.lease_owner != req.agent->name) {
    return Err(ErrorCode::kConflict, "job " + std::to_string(id) + ": lease lost");
  }
  return Held{std::move(body), std::move(job)};
}

// Bookkeeping for `agent list`: never fails a request.
void Seen(ServerContext& ctx, QueueStore& q, const Request& req, std::optional<int64_t> job) {
  (void)q.TouchAgent(*req.agent, ctx.Now(), job);
}

void Register(ServerContext& ctx, QueueStore& q, const Request& req, Response& res) {
  Seen(ctx, q, req, std::nullopt);
  auto body = req.Json();
  if (!body) return res.Error(body.error());
  if (body->contains("labels") && !(*body)["labels"].is_object()) {
    return res.Error({ErrorCode::kInvalidArgument, "/labels: expected an object of strings"});
  }
  const Doc declared = body->value("labels", Doc::object());
  for (const auto& [k, v] : declared.items()) {
    auto it = req.agent->labels.find(k);
    if (!v.is_string()) return res.Error({ErrorCode::kInvalidArgument, "/labels/" + k + ": expected a string"});
    if (it == req.agent->labels.end() || it->second != v.get<std::string>()) {
      return res.Error({ErrorCode::kPermissionDenied, "token of agent '" + req.agent->name +
                                                          "' is not bound to label " + k + "=" + v.get<std::string>()});
    }
  }
  res.Json(200, {{"name", req.agent->name}, {"labels", LabelsToJson(req.agent->labels)}});
}

void Claim(ServerContext& ctx, QueueStore& q, const Request& req, Response& res) {
  Seen(ctx, q, req, std::nullopt);
  const int64_t wait_ms = std::clamp<int64_t>(req.IntParam("wait_ms", 0), 0, 30'000);
  const int64_t lease_ms = std::clamp<int64_t>(req.IntParam("lease_ms", 30'000), 1'000, 600'000);
  // ?job=ID: that job or nothing (an agent taking its own build's rollout).
  const int64_t only_job = std::max<int64_t>(0, req.IntParam("job", 0));
  const int64_t deadline = ctx.options.clock->MonotonicMs() + wait_ms;
  while (true) {
    int64_t enqueued_before;
    {
      std::lock_guard lk(ctx.jobs_mu);
      enqueued_before = ctx.jobs_enqueued;
    }
    // The token's labels, never what the agent declares.
    auto c = q.Claim(req.agent->name, req.agent->labels, ctx.Now(), lease_ms, only_job);
    if (!c) return res.Error(c.error());
    if (*c) {
      Seen(ctx, q, req, (*c)->id);
      return res.Json(200, JobToJson(**c));
    }
    const int64_t left = deadline - ctx.options.clock->MonotonicMs();
    if (left <= 0) break;
    // Woken at once by an enqueue here; polls for other processes' jobs
    // and for leases that expire.
    std::unique_lock lk(ctx.jobs_mu);
    ctx.jobs_cv.wait_for(lk, std::chrono::milliseconds(std::min<int64_t>(left, 200)),
                         [&] { return ctx.jobs_enqueued != enqueued_before; });
  }
  res.status = 204;
}

void LeaseCall(ServerContext& ctx, QueueStore& q, const Request& req, Response& res) {
  auto body = req.Json();
  if (!body) return res.Error(body.error());
  if (!body->contains("epoch") || !(*body)["epoch"].is_number_integer()) {
    return res.Error({ErrorCode::kInvalidArgument, "/epoch: required (an integer: the lease's epoch)"});
  }
  const int64_t epoch = (*body)["epoch"].get<int64_t>();
  const int64_t id = std::stoll(req.args[0]);
  const std::string& what = req.args[1];
  const std::string& owner = req.agent->name;
  Status st = Ok();
  if (what == "heartbeat") {
    const int64_t lease_ms = std::clamp<int64_t>(body->value("lease_ms", int64_t{30'000}), 1'000, 600'000);
    st = q.Heartbeat(id, epoch, owner, ctx.Now(), lease_ms);
  } else if (what == "complete") {
    if (body->contains("result") && !(*body)["result"].is_string()) {
      return res.Error({ErrorCode::kInvalidArgument, "/result: expected a string"});
    }
    st = q.Complete(id, epoch, owner, body->value("result", ""), ctx.Now());
  } else {
    if (!body->contains("error") || !(*body)["error"].is_string()) {
      return res.Error({ErrorCode::kInvalidArgument, "/error: required (a string)"});
    }
    const std::string error = (*body)["error"].get<std::string>();
    st = what == "fail" ? q.Fail(id, epoch, owner, error, ctx.Now()) : q.HandBack(id, epoch, owner, error, ctx.Now());
    if (st && what == "handback") ctx.JobsEnqueued();  // Wakes the other agents' claims.
  }
  if (!st) return res.Error(st.error());
  Seen(ctx, q, req, what == "heartbeat" ? std::optional<int64_t>(id) : std::optional<int64_t>(0));
  auto j = q.GetJob(id);
  if (!j) return res.Error(j.error());
  res.Json(200, JobToJson(*j));
}

// The lines of a batch as log text; a malformed batch is refused whole.
Result<std::string> LogText(const Doc& body) {
  if (!body.contains("lines") || !body["lines"].is_array()) {
    return Err(ErrorCode::kInvalidArgument, "/lines: required (an array of {ts, step, err, text})");
  }
  auto flat = [](std::string t) {
    for (char& ch : t) {
      if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
    }
    return t;
  };
  std::string text;
  size_t i = 0;
  for (const auto& l : body["lines"]) {
    const std::string at = "/lines/" + std::to_string(i++);
    if (!l.is_object() || !l.contains("text") || !l["text"].is_string()) {
      return Err(ErrorCode::kInvalidArgument, at + "/text: required (a string)");
    }
    if ((l.contains("ts") && !l["ts"].is_number_integer()) || (l.contains("step") && !l["step"].is_string()) ||
        (l.contains("err") && !l["err"].is_boolean())) {
      return Err(ErrorCode::kInvalidArgument, at + ": ts must be an integer, step a string, err a boolean");
    }
    AppendLogLine(text, l.value("ts", int64_t{0}), flat(l.value("step", std::string("agent"))), l.value("err", false),
                  flat(l["text"].get<std::string>()));
  }
  return text;
}

// The agent's lines of a job, appended to its log; a canceled job's last
// holder may still send what it had (lines are not actions, and a
// reclaimed job's stale holder has the wrong epoch).
void AppendLog(ServerContext& ctx, QueueStore& q, const Request& req, Response& res) {
  auto h = HeldJob(q, req, /*canceled_too=*/true);
  if (!h) return res.Error(h.error());
  auto text = LogText(h->body);
  if (!text) return res.Error(text.error());
  const std::string path = LogPathOf(ctx, h->job);
  if (path.empty()) return res.Error({ErrorCode::kNotFound, "this server keeps no job logs"});
  const std::string cannot = "cannot append to job " + std::to_string(h->job.id) + "'s log";
  std::lock_guard lk(ctx.log_mu);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::FILE* f = OpenForAppend(path);
  if (!f) return res.Error({ErrorCode::kInternal, cannot});
  struct stat st {};
  const int64_t size = ::fstat(::fileno(f), &st) == 0 ? st.st_size : 0;
  // Past its cap a log takes nothing more (204 all the same: the agent's
  // step goes on, and its lines are not retried).
  const std::string kept = LogEndsCapped(path)
                               ? std::string()
                               : CappedLogAppend(*text, size, ctx.options.log_cap_bytes, ctx.Now());
  const bool written = std::fwrite(kept.data(), 1, kept.size(), f) == kept.size();
  if (std::fclose(f) != 0 || !written) return res.Error({ErrorCode::kInternal, cannot});
  res.status = 204;
}

void StoreCall(ServerContext& ctx, QueueStore& q, const Request& req, Response& res) {
  if (!ctx.options.journal || !ctx.options.locks) return res.Error({ErrorCode::kNotFound, "this server keeps no journal"});
  auto h = HeldJob(q, req, /*canceled_too=*/false);
  if (!h) return res.Error(h.error());
  if (!h->body.contains("call") || !h->body["call"].is_string()) {
    return res.Error({ErrorCode::kInvalidArgument, "/call: required (a string)"});
  }
  const Job& job = h->job;
  const int64_t t = ctx.Now();
  if (job.lease_expires_ms <= t + kFenceMarginMs) {
    return res.Error({ErrorCode::kConflict, "job " + std::to_string(job.id) + ": lease lost"});
  }
  const std::optional<std::string> plan_text = PlanTextOfJob(job.spec.kind, job.spec.payload);
  Doc plan = plan_text ? Doc::parse(*plan_text, nullptr, false) : Doc();
  if (!plan.is_object() || !plan.contains("stack")) {
    return res.Error({ErrorCode::kInvalidArgument, "job " + std::to_string(job.id) + " is not a rollout"});
  }
  const std::string scope = plan.value("stack", "") + "/" + plan.value("release", "") + "/" + plan.value("deployment", "");
  auto answer = ServeJobStoreCall(*ctx.options.journal, *ctx.options.locks, job, scope, t,
                                  nlohmann::json::parse(h->body.dump()));
  if (!answer) return res.Error(answer.error());
  res.Json(200, Doc::parse(answer->dump()));
}

// A build job's agent follows the rollout its deploy queued (the plan names
// the build): its state and its log from `offset`.
void WatchDeploy(ServerContext& ctx, QueueStore& q, const Request& req, Response& res) {
  auto h = HeldJob(q, req, /*canceled_too=*/false);
  if (!h) return res.Error(h.error());
  auto build = BuildIdOf(h->job);
  const int64_t id = h->body.value("job", int64_t{0});
  auto watched = q.GetJob(id);
  if (!watched) return res.Error(watched.error());
  Doc plan = Doc::parse(watched->spec.payload, nullptr, false);
  if (!build || watched->spec.kind != "rollout" || !plan.is_object() || plan.value("build_id", int64_t{0}) != *build) {
    return res.Error({ErrorCode::kPermissionDenied, "job " + std::to_string(id) + " is not this build's deploy"});
  }
  Doc out = JobToJson(*watched);
  const std::string path = LogPathOf(ctx, *watched);
  std::string text;
  if (!path.empty() && h->body.contains("offset")) {
    const int64_t offset = std::max<int64_t>(0, h->body.value("offset", int64_t{0}));
    text = ReadLogFrom(path, offset);
  }
  out["log"] = text;
  res.Json(200, out);
}

// The credential a held job may use: a build job's is the registry password
// its build recorded; a rollout job's are those its frozen plan names, each
// sent where the plan sends it (PlanCredential) — both the server's own
// records, never the agent's word.
Result<std::string> JobCredentialValue(const ApiServerOptions& o, const Job& job, const std::string& name,
                                       const std::string& purpose) {
  BuildStore& store = *o.build_store;
  if (auto b = BuildIdOf(job)) {
    SP_ASSIGN_OR_RETURN(std::string text, store.BuildConfig(*b));
    SP_ASSIGN_OR_RETURN(ServiceConfig cfg, ParseServiceConfig(text, "sallyport.yml of build " + std::to_string(*b)));
    if (StartsWith(purpose, CredentialBinding::kBranchPrefix)) {
      // A step's secret: named by a step of the recorded file, given as the
      // binding allows the builds of the build's own branch (the server's record).
      SP_ASSIGN_OR_RETURN(BuildRecord build, store.GetBuild(*b));
      const bool named = std::any_of(cfg.pipeline.begin(), cfg.pipeline.end(), [&](const PipelineStep& s) {
        return std::find(s.secrets.begin(), s.secrets.end(), name) != s.secrets.end();
      });
      if (!named || purpose != CredentialBinding::kBranchPrefix + build.branch) {
        return Err(ErrorCode::kPermissionDenied, "job " + std::to_string(job.id) + " has no step using secret '" +
                                                     Printable(name) + "' on its branch");
      }
      return o.read_credential(build.project, name, purpose);
    }
    if (CredentialNameOf(cfg.registry.password_ref) != name) {
      return Err(ErrorCode::kPermissionDenied,
                 "job " + std::to_string(job.id) + " does not use credential '" + Printable(name) + "'");
    }
    SP_ASSIGN_OR_RETURN(BuildRecord build, store.GetBuild(*b));
    return o.read_credential(build.project, name, cfg.registry.address);
  }
  const std::optional<std::string> plan_text = PlanTextOfJob(job.spec.kind, job.spec.payload);
  if (!plan_text) {
    return Err(ErrorCode::kPermissionDenied, "job " + std::to_string(job.id) + " comes from no build: no credential");
  }
  SP_ASSIGN_OR_RETURN(RolloutPlan plan, PlanFromJson(*plan_text));
  return PlanCredential(store, o.read_credential, plan, name);
}

// POST /v1/agent/jobs/ID/credential {name}: the value of a credential the
// job's build or plan names, if its binding allows where it goes.
void JobCredential(ServerContext& ctx, QueueStore& q, const Request& req, Response& res) {
  if (!ctx.options.build_store || !ctx.options.read_credential) {
    return res.Error({ErrorCode::kNotFound, "this server binds no credentials"});
  }
  // Only to the agent holding the job: any other agent (another network's,
  // or one whose lease went to another) is refused outright.
  if (auto job = q.GetJob(std::stoll(req.args[0])); job && job->lease_owner != req.agent->name) {
    return res.Error({ErrorCode::kPermissionDenied, "job " + std::to_string(job->id) + " is not held by agent " +
                                                        req.agent->name + ": its credentials go only to its holder"});
  }
  auto h = HeldJob(q, req, /*canceled_too=*/false);
  if (!h) return res.Error(h.error());
  if (!h->body.contains("name") || !h->body["name"].is_string()) {
    return res.Error({ErrorCode::kInvalidArgument, "/name: required (a string)"});
  }
  const std::string purpose = h->body.contains("for") && h->body["for"].is_string() ? h->body["for"].get<std::string>() : "";
  auto value = JobCredentialValue(ctx.options, h->job, h->body["name"].get<std::string>(), purpose);
  if (!value) return res.Error(value.error());
  res.Json(200, {{"value", *value}});
}

}  // namespace

void BuildJobRecord(ServerContext& ctx, const Request& req, Response& res, const Doc& body, int64_t build_id);
void BuildJobDeploy(ServerContext& ctx, const Request& req, Response& res, const Doc& body, int64_t build_id);

std::vector<http::Route> AgentRoutes(ServerContext& ctx) {
  if (!ctx.options.queue) return {};
  QueueStore& q = *ctx.options.queue;
  // A build job's records and deploy, from the agent running it: only the
  // lease holder, only for the build its job carries.
  auto build_job = [&ctx, &q](void (*fn)(ServerContext&, const Request&, Response&, const Doc&, int64_t)) {
    return [&ctx, &q, fn](const Request& req, Response& res) {
      auto h = HeldJob(q, req, /*canceled_too=*/false);
      if (!h) return res.Error(h.error());
      auto build = BuildIdOf(h->job);
      if (!build) return res.Error({ErrorCode::kInvalidArgument, "job " + std::to_string(h->job.id) + " is not a build"});
      fn(ctx, req, res, h->body, *build);
    };
  };
  return {
      {Method::kPost, "/v1/agent/register", Access::Agent(),
       [&ctx, &q](const Request& req, Response& res) { Register(ctx, q, req, res); }},
      {Method::kPost, "/v1/agent/claim", Access::Agent(),
       [&ctx, &q](const Request& req, Response& res) { Claim(ctx, q, req, res); }, http::Lane::kPoll},
      {Method::kPost, R"(/v1/agent/jobs/(\d+)/(heartbeat|complete|fail|handback))", Access::Agent(),
       [&ctx, &q](const Request& req, Response& res) { LeaseCall(ctx, q, req, res); }},
      {Method::kPost, R"(/v1/agent/jobs/(\d+)/log)", Access::Agent(),
       [&ctx, &q](const Request& req, Response& res) { AppendLog(ctx, q, req, res); }, http::Lane::kQuick,
       kLogBatchBodyBytes},
      {Method::kPost, R"(/v1/agent/jobs/(\d+)/build)", Access::Agent(), build_job(BuildJobRecord)},
      {Method::kPost, R"(/v1/agent/jobs/(\d+)/deploy)", Access::Agent(), build_job(BuildJobDeploy)},
      {Method::kPost, R"(/v1/agent/jobs/(\d+)/watch)", Access::Agent(),
       [&ctx, &q](const Request& req, Response& res) { WatchDeploy(ctx, q, req, res); }},
      {Method::kPost, R"(/v1/agent/jobs/(\d+)/credential)", Access::Agent(),
       [&ctx, &q](const Request& req, Response& res) { JobCredential(ctx, q, req, res); }},
      {Method::kPost, R"(/v1/agent/jobs/(\d+)/store)", Access::Agent(),
       [&ctx, &q](const Request& req, Response& res) { StoreCall(ctx, q, req, res); }},
  };
}

}  // namespace sp
