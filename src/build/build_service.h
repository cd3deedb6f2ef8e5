// The build server's core (issue 5): triggers (polling, signed webhooks,
// manual) become builds — one per (project, branch, commit) — and workers
// run each build's pipeline from the repository's sallyport.yml at that
// commit: checkout, command steps under the step supervisor, image, push
// (the digest is the artifact), deploy (through a hook the app provides).
// Every line a step prints goes, timestamped, to the build's log file.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "build/vcs.h"
#include "config/service_config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/subprocess.h"
#include "store/store.h"

namespace sp {

// The deploy step's request: roll `artifact` out to (cfg.stack, release,
// deployment); `config_text` is the built commit's sallyport.yml.
struct DeployRequest {
  const ServiceConfig* cfg = nullptr;
  std::string config_text;
  std::string release, deployment, artifact;
  int64_t build_id = 0;
};

struct BuildOptions {
  std::string data_dir;                 // logs/<id>.log and work/<id>/ live here.
  int concurrency = 2;                  // Builds at once.
  Millis poll_every{10'000};            // 0: no polling (webhooks and manual only).
  Millis git_timeout{60'000};
  std::string docker_bin = "/usr/bin/docker";
  std::string docker_host;              // DOCKER_HOST for image and push steps; empty: the default.
  std::string supervisor;               // The sallyport binary (step supervisor); empty: this one.
  bool requeue_interrupted = false;     // After a restart: queue running builds again.
  std::function<int64_t()> now_ms;      // Wall clock; default the real one.
  // Secret references ("file:/path", "env:NAME") -> value.
  std::function<Result<std::string>(const std::string& ref)> read_secret;
  // The deploy step. `cancel` turns true when the build is canceled.
  using Deploy = std::function<Status(const DeployRequest& request, const LineCallback& log,
                                      const std::atomic<bool>& cancel)>;
  Deploy deploy;
  // Set: builds run elsewhere (on agents, through the queue) instead of in
  // this process: called with the build (already marked running) and its
  // project's remote; it returns once the build has ended there, having
  // recorded steps, log lines and the outcome in the store. An error means
  // the build could not be run (the service marks it failed with it).
  using RunElsewhere = std::function<Status(const BuildRecord& b, const ProjectRecord& project,
                                            const std::atomic<bool>& cancel)>;
  RunElsewhere run_elsewhere;
};

// One line of a build's or job's log: "<ts ms>\t<step>\t<out|err>\t<text>\n".
// The text may hold tabs; a line never holds a newline.
struct LogLine {
  int64_t ts_ms = 0;
  std::string step;
  bool is_err = false;
  std::string text;
};
std::string FormatLogLine(int64_t ts_ms, const std::string& step, bool is_err, const std::string& text);
// The same, appended to `out` (a writer reusing one buffer allocates nothing per line).
void AppendLogLine(std::string& out, int64_t ts_ms, const std::string& step, bool is_err, const std::string& text);
// One line without its newline; nullopt when it is not of that form.
std::optional<LogLine> ParseLogLine(const std::string& line);

// Where one build's records and log lines go: the store and the log file
// (in the server), or the server through the agent protocol (on an agent).
class BuildSink {
 public:
  virtual ~BuildSink() = default;
  virtual Status Update(const BuildRecord& b) = 0;
  virtual Status PutStep(const BuildStepRecord& s) = 0;
  virtual void Line(int64_t ts_ms, const std::string& step, bool is_err, const std::string& text) = 0;
  // Every line written out: called before the build's final Update.
  virtual void Flush() = 0;
};

// Runs one build's pipeline in `workspace` (made empty first, removed at
// the end): checkout of the exact commit, then the steps of the commit's
// sallyport.yml (command steps under the step supervisor, image, push,
// deploy). Records go to `sink`; `b` ends with its final status, set
// through the sink as well. Uses `o`'s docker, supervisor, git timeout,
// secret reader, deploy and clock.
BuildRecord RunPipeline(BuildRecord b, const ProjectRecord& project, const std::string& workspace, const BuildOptions& o,
                        BuildSink& sink, const std::atomic<bool>& cancel);

// How to reach a project's remote: its credential reference read now (an
// http(s) token), or handed over as a path (an ssh deploy key, with the
// project's known_hosts). Errors name the project and the reference, never
// a value.
Result<GitAccess> GitAccessFor(const ProjectRecord& p,
                               const std::function<Result<std::string>(const std::string& ref)>& read_secret);

class BuildService {
 public:
  BuildService(BuildStore& store, BuildOptions options);
  ~BuildService();
  BuildService(const BuildService&) = delete;
  BuildService& operator=(const BuildService&) = delete;

  // Recovers builds a previous process left running, starts the workers and
  // (with poll_every) the poller.
  void Start();
  void Stop();

  // A new commit on a branch: one queued build, or nullopt when this
  // (project, branch, sha) was seen before. An invalid branch name or commit
  // is kInvalidArgument with the reason (and logged), nothing started.
  Result<std::optional<BuildRecord>> Trigger(const std::string& project, const std::string& branch,
                                             const std::string& sha, const std::string& trigger);
  // Lists every project's heads once; each remote on its own thread, so a
  // slow or dead one delays no other (one already being polled is skipped).
  void PollOnce();
  // A GitHub-format push event: the HMAC-SHA256 of `body` with the
  // project's webhook secret must equal `signature` ("sha256=<hex>",
  // compared in constant time) — kUnauthenticated otherwise, nothing
  // started. A delivery id seen before starts nothing.
  // Gitea: `signature` is X-Gitea-Signature (the bare hex HMAC-SHA256);
  // GitLab: X-Gitlab-Token (the secret itself, compared in constant time).
  enum class HookFormat { kGitHub, kGitea, kGitLab };
  // Each format's route (/hooks/<path>/PROJECT) and the headers that carry
  // its signature (or token) and its delivery id.
  struct HookSpec {
    HookFormat format;
    const char* path;
    const char* signature_header;
    const char* delivery_header;
  };
  static constexpr HookSpec kHookSpecs[] = {
      {HookFormat::kGitHub, "github", "X-Hub-Signature-256", "X-GitHub-Delivery"},
      {HookFormat::kGitea, "gitea", "X-Gitea-Signature", "X-Gitea-Delivery"},
      {HookFormat::kGitLab, "gitlab", "X-Gitlab-Token", "X-Gitlab-Event-UUID"}};
  Result<std::optional<BuildRecord>> Webhook(const std::string& project, const std::string& body,
                                             const std::string& signature, const std::string& delivery_id,
                                             HookFormat format = HookFormat::kGitHub);
  // `sallyport build start`: `sha` of `branch`, or the branch's head now.
  Result<std::optional<BuildRecord>> Manual(const std::string& project, const std::string& branch,
                                            const std::string& sha);
  // Cancels a queued or running build.
  Status Cancel(int64_t build_id);

  std::string LogPath(int64_t build_id) const;

 private:
  void Worker();
  void Execute(BuildRecord b);
  int64_t Now() const;

  BuildStore& store_;
  BuildOptions o_;
  std::vector<std::thread> workers_;
  std::thread poller_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::set<std::string> polling_;                           // Projects being polled now.
  std::map<int64_t, std::shared_ptr<std::atomic<bool>>> cancels_;  // Running builds.
  std::vector<std::thread> poll_threads_;
};

// "sha256=" + hex HMAC-SHA256 of body with key.
std::string HubSignature(const std::string& key, const std::string& body);

}  // namespace sp
