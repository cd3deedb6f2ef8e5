// One build's pipeline, from the repository's sallyport.yml at the built
// commit: checkout, command steps (through a StepRunner), image, push (the
// digest is the artifact) and deploy (through a hook the app provides).
// Records and log lines go to a BuildSink: the store and a log file in the
// server, or the server's API on an agent.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "build/credentials.h"
#include "build/records.h"
#include "build/step_runner.h"
#include "build/vcs.h"
#include "config/service_config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/subprocess.h"

namespace sp {

// The deploy step's request: roll `artifact` out to (cfg.stack, release,
// deployment); `config_text` is the built commit's sallyport.yml.
struct DeployRequest {
  const ServiceConfig* cfg = nullptr;
  std::string config_text;
  std::string release, deployment, artifact;
  int64_t build_id = 0;
  // An operator's rollout of a build's artifact (POST /v1/rollouts) may
  // also set these; a build's own deploy leaves them empty.
  std::string version, limit;
  std::optional<CountOrPercent> batch, max_failures;
  std::string requested_by;  // Default: "build N".
};

inline DeployRequest DeployOf(const ServiceConfig& cfg, std::string config_text, std::string release,
                              std::string deployment, std::string artifact, int64_t build_id) {
  DeployRequest r;
  r.cfg = &cfg;
  r.config_text = std::move(config_text);
  r.release = std::move(release);
  r.deployment = std::move(deployment);
  r.artifact = std::move(artifact);
  r.build_id = build_id;
  return r;
}

// Where one build's records and log lines go.
class BuildSink {
 public:
  virtual ~BuildSink() = default;
  virtual Status Update(const BuildRecord& b) = 0;
  virtual Status PutStep(const BuildStepRecord& s) = 0;
  // The built commit's sallyport.yml, once it parsed (kept with the build:
  // the server makes later rollouts of its artifact from it).
  virtual Status PutConfig(const std::string& text) = 0;
  virtual void Line(int64_t ts_ms, const std::string& step, bool is_err, const std::string& text) = 0;
  // Every line written out: called before the build's final Update.
  virtual void Flush() = 0;
};

// What a pipeline runs with. clock, processes (docker login and inspect),
// steps (command, image and push steps) and vcs must be set.
struct PipelineOptions {
  Clock* clock = nullptr;
  ProcessRunner* processes = nullptr;
  StepRunner* steps = nullptr;
  Vcs* vcs = nullptr;
  Millis git_timeout{60'000};
  std::string docker_bin = "/usr/bin/docker";
  std::string docker_host;  // DOCKER_HOST for image and push steps; empty: the default.
  // Who the commit's command steps run as (the checkout is given to them);
  // nullopt: this process's own user.
  std::optional<StepUser> step_user;
  // Secret references ("file:/path", "env:NAME") -> value: the server's or
  // agent's own (a project's git token, a webhook secret).
  std::function<Result<std::string>(const std::string& ref)> read_secret;
  // A credential a commit names (registry.password: {credential: NAME}),
  // for sending to `host`: the server resolves its admin's binding (an
  // agent asks the server). Empty: commits name no credentials here.
  CredentialReader read_credential;
  // Before a push hands the password to docker: the registry speaks HTTPS
  // with a certificate this machine trusts (plain HTTP only as the
  // preflight allows it) and takes the credentials (`password` empty: none).
  // Empty: no check.
  std::function<Status(const RegistrySpec& registry, const std::string& address, const std::string& password)>
      check_registry;
  // The deploy step. `cancel` turns true when the build is canceled.
  using Deploy = std::function<Status(const DeployRequest& request, const LineCallback& log,
                                      const std::atomic<bool>& cancel)>;
  Deploy deploy;
};

// Runs one build's pipeline in `workspace` (made empty first, removed at
// the end): checkout of the exact commit, then the steps of the commit's
// sallyport.yml. A failed step fails the build and skips the rest; a cancel
// ends the running step and cancels the build. Records go to `sink`; the
// returned record carries the final status, set through the sink as well.
BuildRecord RunPipeline(BuildRecord b, const ProjectRecord& project, const std::string& workspace,
                        const PipelineOptions& o, BuildSink& sink, const std::atomic<bool>& cancel);

// A credential goes to an ssh:// or https:// remote, or to an http:// one on
// a loopback address; never in clear across a network (kInvalidArgument).
Status CheckRemoteCredential(const ProjectRecord& p);

// How to reach a project's remote: its credential reference read now (an
// http(s) token), or handed over as a path (an ssh deploy key, with the
// project's known_hosts). Errors name the project and the reference, never
// a value.
Result<GitAccess> GitAccessFor(const ProjectRecord& p,
                               const std::function<Result<std::string>(const std::string& ref)>& read_secret);

}  // namespace sp
