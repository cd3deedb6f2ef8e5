// The build server's core (issue 5): triggers (polling, signed webhooks,
// manual) become builds — one per (project, branch, commit) — and workers
// run each build's pipeline (pipeline.h) in this process or hand it to
// agents. Every line a step prints goes, timestamped, to the build's log
// file (build_log.h).
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

#include "build/build_log.h"
#include "build/pipeline.h"
#include "build/records.h"
#include "build/vcs.h"
#include "config/service_config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/subprocess.h"

namespace sp {

struct BuildOptions {
  PipelineOptions pipeline;             // Clock, processes, steps, vcs, docker, secrets, deploy.
  std::string data_dir;                 // logs/<id>.log and work/<id>/ live here.
  int64_t log_cap_bytes = kDefaultLogCapBytes;  // Each build's log stops there, with a marker.
  int concurrency = 2;                  // Builds at once.
  Millis poll_every{10'000};            // 0: no polling (webhooks and manual only).
  bool requeue_interrupted = false;     // After a restart: queue running builds again.
  // Set: builds run elsewhere (on agents, through the queue) instead of in
  // this process: called with the build (already marked running) and its
  // project's remote; it returns once the build has ended there, having
  // recorded steps, log lines and the outcome in the store. An error means
  // the build could not be run (the service marks it failed with it).
  using RunElsewhere = std::function<Status(const BuildRecord& b, const ProjectRecord& project,
                                            const std::atomic<bool>& cancel)>;
  RunElsewhere run_elsewhere;
};

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
  // Whether `sha` is on `branch` of the project's remote (a checkout into a
  // scratch directory, removed after): kInvalidArgument when it is not.
  Status OnBranch(const ProjectRecord& p, const std::string& branch, const std::string& sha, const GitAccess& access);
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
