// Jobs in the durable queue, their logs, and the agents the server has seen:
//   POST   /v1/jobs                 enqueue {kind, payload, labels, priority, idempotency_key, max_attempts}
//   GET    /v1/jobs[?limit=N], /v1/jobs/ID
//   POST   /v1/jobs/ID/retry        a dead or canceled job queued again
//   POST   /v1/jobs/ID/cancel       a queued or leased job canceled
//   GET    /v1/jobs/ID/log[?offset=N|follow=1]   the job's log (a build job's: its build's)
//   GET    /v1/agents               name, labels, last seen, current job
#include "deploy/left_rollouts.h"
#include "queue/wire.h"
#include "server/api_server.h"
#include "server/log_files.h"

namespace sp {

using namespace http::routes;

namespace {

Result<std::map<std::string, std::string>> LabelsOf(const Doc& body) {
  std::map<std::string, std::string> out;
  if (!body.contains("labels")) return out;
  if (!body["labels"].is_object()) return Err(ErrorCode::kInvalidArgument, "/labels: expected an object of strings");
  for (const auto& [k, v] : body["labels"].items()) {
    if (!v.is_string()) return Err(ErrorCode::kInvalidArgument, "/labels/" + k + ": expected a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

void Enqueue(ServerContext& ctx, QueueStore& q, const Request& req, Response& res) {
  auto body = req.Json();
  if (!body) return res.Error(body.error());
  auto labels = LabelsOf(*body);
  if (!labels) return res.Error(labels.error());
  JobSpec spec;
  spec.kind = body->value("kind", "");
  if (spec.kind != "build" && spec.kind != "rollout" && spec.kind != "hook") {
    return res.Error({ErrorCode::kInvalidArgument, "/kind: expected build, rollout or hook"});
  }
  spec.payload = body->value("payload", "");
  spec.labels = *labels;
  spec.priority = body->value("priority", 0);
  spec.idempotency_key = body->value("idempotency_key", "");
  spec.max_attempts = body->value("max_attempts", 3);
  auto job = q.Enqueue(spec, ctx.Now());
  if (!job) return res.Error(job.error());
  ctx.JobsEnqueued();
  res.Json(201, JobToJson(*job));
}

void ServeJobLog(ServerContext& ctx, QueueStore& q, const Request& req, Response& res) {
  const int64_t id = std::stoll(req.args[0]);
  auto job = q.GetJob(id);
  if (!job) return res.Error(job.error());
  const std::string path = LogPathOf(ctx, *job);
  if (path.empty()) return res.Error({ErrorCode::kNotFound, "this server keeps no job logs"});
  ServeLogFile(req, res, path, [&q, id]() -> std::optional<std::string> {
    auto j = q.GetJob(id);
    if (!j) return "gone";
    if (!JobEnded(j->state)) return std::nullopt;
    return std::string(JobStateName(j->state));
  });
}

// Retrying or canceling a job is an act on what it does: a rollout job needs
// deploy on its plan's stack/deployment, a build job build on its project,
// anything else admin.
Access OfJob(QueueStore& q) {
  return Access::Of(Need::kDeploy, [&q](const Request& req) -> Result<Target> {
    SP_ASSIGN_OR_RETURN(Job job, q.GetJob(std::stoll(req.args[0])));
    const Doc payload = Doc::parse(job.spec.payload, nullptr, false);
    const std::optional<std::string> plan_text = PlanTextOfJob(job.spec.kind, job.spec.payload);
    const Doc plan = plan_text ? Doc::parse(*plan_text, nullptr, false) : Doc();
    if (plan.is_object() && plan.contains("stack") && plan.contains("deployment")) {
      return Target{Need::kDeploy, plan.value("stack", "") + "/" + plan.value("deployment", "")};
    }
    if (payload.is_object() && job.spec.kind == "build" && payload.contains("build") && payload["build"].is_object()) {
      return Target{Need::kBuild, payload["build"].value("project", "")};
    }
    return Target{Need::kAdmin, ""};
  });
}

}  // namespace

std::vector<http::Route> JobRoutes(ServerContext& ctx) {
  if (!ctx.options.queue) return {};
  QueueStore& q = *ctx.options.queue;
  return {
      // A job's payload is what an agent executes: only an admin queues one
      // by hand (deploys and builds are queued by the server itself).
      {Method::kPost, "/v1/jobs", Access::Admin(),
       [&ctx, &q](const Request& req, Response& res) { Enqueue(ctx, q, req, res); }, http::Lane::kQuick,
       kDocumentBodyBytes},
      {Method::kGet, "/v1/jobs", Access::Read(),
       [&q](const Request& req, Response& res) {
         const int limit = static_cast<int>(std::clamp<int64_t>(req.IntParam("limit", 200), 1, 1000));
         http::JsonList(res, q.ListJobs(limit), "jobs", JobToJson);
       }},
      {Method::kGet, R"(/v1/jobs/(\d+))", Access::Read(),
       [&q](const Request& req, Response& res) {
         auto j = q.GetJob(std::stoll(req.args[0]));
         if (!j) return res.Error(j.error());
         res.Json(200, JobToJson(*j));
       }},
      {Method::kPost, R"(/v1/jobs/(\d+)/(retry|cancel))", OfJob(q),
       [&ctx, &q](const Request& req, Response& res) {
         const int64_t id = std::stoll(req.args[0]);
         Status st = req.args[1] == "retry" ? q.Retry(id, ctx.Now()) : q.Cancel(id, ctx.Now());
         if (!st) return res.Error(st.error());
         if (req.args[1] == "retry") ctx.JobsEnqueued();
         auto j = q.GetJob(id);
         if (!j) return res.Error(j.error());
         res.Json(200, JobToJson(*j));
       }},
      {Method::kGet, R"(/v1/jobs/(\d+)/log)", Access::Read(),
       [&ctx, &q](const Request& req, Response& res) { ServeJobLog(ctx, q, req, res); }, http::Lane::kStream},
      {Method::kGet, "/v1/agents", Access::Read(),
       [&q](const Request&, Response& res) { http::JsonList(res, q.Agents(), "agents", AgentSeenToJson); }},
  };
}

}  // namespace sp
