// A build job on an agent: the pipeline in a fresh workspace under the
// agent's work directory; records and lines to the server; the deploy asked
// of the server and followed to its end (or run here when no other agent
// takes it and this agent's token may run it).
#include <cstdio>

#include "agent/agent.h"
#include "agent/job.h"
#include "agent/lease.h"
#include "agent/log_shipper.h"
#include "build/credentials.h"
#include "build/wire.h"
#include "deploy/job_watch.h"

namespace sp {

using Doc = nlohmann::ordered_json;

namespace {

// A build job's records go to the server (the build's steps and outcome,
// through POST /v1/agent/jobs/ID/build) and its lines to the job's log,
// which the server keeps as the build's log.
class RemoteBuildSink : public BuildSink {
 public:
  RemoteBuildSink(std::function<Status(const Doc&)> post, LogShipper& shipper)
      : post_(std::move(post)), shipper_(shipper) {}
  Status Update(const BuildRecord& b) override { return post_({{"build", BuildToJson(b)}}); }
  Status PutStep(const BuildStepRecord& x) override { return post_({{"step", BuildStepToJson(x)}}); }
  Status PutConfig(const std::string& text) override { return post_({{"config", text}}); }
  void Line(int64_t, const std::string& step, bool is_err, const std::string& text) override {
    shipper_.Line(step, is_err, text);
  }
  void Flush() override { shipper_.Flush(); }

 private:
  std::function<Status(const Doc&)> post_;
  LogShipper& shipper_;
};

// The build record a job's payload carries, now running.
std::optional<BuildRecord> BuildOf(const Doc& p) {
  if (!p.is_object() || !p.contains("build") || !p["build"].is_object() || !p.contains("git_url") ||
      !p["git_url"].is_string()) {
    return std::nullopt;
  }
  const Doc& j = p["build"];
  BuildRecord b;
  b.id = p.value("build_id", int64_t{0});
  b.project = j.value("project", "");
  b.branch = j.value("branch", "");
  b.sha = j.value("sha", "");
  b.trigger = j.value("trigger", "");
  b.status = BuildStatus::kRunning;
  b.created_ms = j.value("created_ms", int64_t{0});
  b.started_ms = j.value("started_ms", int64_t{0});
  return b;
}

}  // namespace

Result<std::string> Agent::CredentialOrSecret(Job& job, const std::string& ref, const std::string& purpose) {
  const std::string name = CredentialNameOf(ref);
  if (name.empty()) {
    SP_ASSIGN_OR_RETURN(std::string value, ReadSecretRef(ref));
    job.masker.Add(value);
    return value;
  }
  Doc ask = {{"name", name}};
  if (!purpose.empty()) ask["for"] = purpose;
  SP_ASSIGN_OR_RETURN(Doc answer, job.post("/credential", ask));
  if (!answer.contains("value") || !answer["value"].is_string()) {
    return Err(ErrorCode::kInternal, "the server's answer for credential '" + name + "' has no value");
  }
  job.masker.Add(answer["value"].get_ref<const std::string&>());
  return answer["value"].get<std::string>();
}

Status Agent::RequestDeploy(Job& job, const DeployRequest& r, const LineCallback& log, const std::atomic<bool>& stop) {
  SP_ASSIGN_OR_RETURN(Doc answer, job.post("/deploy", {{"config", r.config_text}, {"release", r.release},
                                                       {"deployment", r.deployment}, {"artifact", r.artifact}}));
  const int64_t rollout_job = answer.value("job", int64_t{0});
  const std::string what = "rollout job " + std::to_string(rollout_job);
  log(false, "the server queued the deploy as " + what);
  JobWatch w;
  w.what = what;
  // Followed through the agent protocol (the build job's lease): an agent's
  // token reads no other job.
  w.poll = [&job, rollout_job]() -> Result<JobProgress> {
    SP_ASSIGN_OR_RETURN(Doc d, job.post("/watch", {{"job", rollout_job}}));
    auto state = ParseJobState(d.value("state", ""));
    if (!state) return Err(ErrorCode::kInternal, "job " + std::to_string(rollout_job) + " in an unknown state");
    return JobProgress{*state, d.value("owner", ""), d.value("result", ""), d.value("error", "")};
  };
  w.read_log = [&job, rollout_job](int64_t offset) -> Result<std::string> {
    SP_ASSIGN_OR_RETURN(Doc d, job.post("/watch", {{"job", rollout_job}, {"offset", offset}}));
    return d.value("log", "");
  };
  w.cancel = [] { return Status(Ok()); };  // Agents cannot cancel jobs; the server's claim timeout applies.
  // The network's agent takes it at once when there is one. If nobody has
  // within a second and this agent's token may run it too (one agent for
  // both), it runs it here: a build never waits on its own agent.
  w.take_over = [&] {
    const int64_t sent = o_.clock->MonotonicMs();
    auto mine = api_.Call("POST", "/v1/agent/claim?wait_ms=0&lease_ms=" + std::to_string(o_.lease_ms) +
                                      "&job=" + std::to_string(rollout_job));
    if (!mine || mine->is_null()) return;  // Not ours to run: wait for the network's agent.
    log(false, "no other agent took " + what + ": running it here");
    RunClaimedJob(*mine, sent);
  };
  return WaitForJob(w, log, stop, Millis(600'000), *o_.clock);
}

std::string Agent::RunBuildJob(Job& job) {
  Doc p = Doc::parse(job.payload, nullptr, false);
  std::optional<BuildRecord> b = BuildOf(p);
  if (!b) {
    job.shipper->Line("agent", true, "malformed build job");
    return "malformed build job";
  }
  RemoteBuildSink sink(
      [&job](const Doc& body) -> Status { return job.post("/build", body).map([](Doc) {}); }, *job.shipper);
  PipelineOptions o = o_.pipeline;
  o.clock = o_.clock;
  o.deploy = [this, &job](const DeployRequest& r, const LineCallback& log, const std::atomic<bool>& stop) {
    return RequestDeploy(job, r, log, stop);
  };
  // The server resolves a credential the commit names, for the registry
  // its recorded file names, or for a step (`for`: "branch:B", checked
  // against its own record of the build); the agent only asks.
  o.read_credential = [&job](const std::string&, const std::string& name, const std::string& host) {
    const bool step = StartsWith(host, CredentialBinding::kBranchPrefix);
    return CredentialOrSecret(job, "credential:" + name, step ? host : "");
  };
  ProjectRecord project;
  project.name = b->project;
  project.git_url = p["git_url"].get<std::string>();
  project.credential_ref = p.value("credential_ref", "");
  project.known_hosts = p.value("known_hosts", "");
  const std::string ws = o_.work_dir + "/build-" + std::to_string(b->id);
  BuildRecord out = RunPipeline(*b, project, ws, o, sink, job.lease_lost);
  return "build " + std::string(BuildStatusName(out.status)) + (out.error.empty() ? "" : ": " + out.error);
}

}  // namespace sp
