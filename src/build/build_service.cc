#include "build/build_service.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "config/branch_rules.h"
#include "core/digest.h"
#include "core/text.h"

namespace sp {

namespace fs = std::filesystem;

std::string HubSignature(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 15]);
  }
  return out;
}

BuildService::BuildService(BuildStore& store, BuildOptions options) : store_(store), o_(std::move(options)) {
  SP_CHECK(o_.pipeline.clock && o_.pipeline.processes && o_.pipeline.steps && o_.pipeline.vcs);
}

BuildService::~BuildService() { Stop(); }

int64_t BuildService::Now() const { return o_.pipeline.clock->WallMs(); }

std::string BuildService::LogPath(int64_t id) const { return o_.data_dir + "/logs/" + std::to_string(id) + ".log"; }

void BuildService::Start() {
  std::error_code ec;
  fs::create_directories(o_.data_dir + "/logs", ec);
  fs::create_directories(o_.data_dir + "/work", ec);
  if (auto n = store_.RecoverInterruptedBuilds(o_.requeue_interrupted, Now()); n && *n > 0) {
    std::fprintf(stderr, "builds: %d build(s) left running by a previous process marked %s\n", *n,
                 o_.requeue_interrupted ? "queued again" : "interrupted");
  }
  for (int i = 0; i < std::max(1, o_.concurrency); ++i) workers_.emplace_back([this] { Worker(); });
  if (o_.poll_every.count() > 0) {
    poller_ = std::thread([this] {
      std::mt19937 rng(std::random_device{}());
      std::unique_lock lk(mu_);
      while (!stopping_) {
        lk.unlock();
        PollOnce();
        lk.lock();
        // Jitter: ±10 % so many servers do not poll in step.
        const int64_t base = o_.poll_every.count();
        std::uniform_int_distribution<int64_t> jitter(-base / 10, base / 10);
        cv_.wait_for(lk, std::chrono::milliseconds(base + jitter(rng)), [this] { return stopping_; });
      }
    });
  }
}

void BuildService::Stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, c] : cancels_) c->store(true);
  }
  cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  for (auto& t : workers_) t.join();
  workers_.clear();
  for (auto& t : poll_threads_) t.join();
  poll_threads_.clear();
}

Result<std::optional<BuildRecord>> BuildService::Trigger(const std::string& project, const std::string& branch,
                                                         const std::string& sha, const std::string& trigger) {
  if (!IsValidBranchName(branch)) {
    std::fprintf(stderr, "builds: %s: rejected branch '%s' (%s): invalid branch name\n", project.c_str(),
                 Printable(branch).c_str(), trigger.c_str());
    return Err(ErrorCode::kInvalidArgument, "invalid branch name '" + Printable(branch) + "'");
  }
  if (!IsCommitSha(sha)) return Err(ErrorCode::kInvalidArgument, "invalid commit '" + Printable(sha) + "'");
  SP_ASSIGN_OR_RETURN(auto p, store_.Project(project));
  if (!p) return Err(ErrorCode::kNotFound, "no project '" + Printable(project) + "'");
  BuildRecord b;
  b.project = project;
  b.branch = branch;
  b.sha = sha;
  b.trigger = trigger;
  b.created_ms = Now();
  SP_ASSIGN_OR_RETURN(auto made, store_.CreateBuild(b));
  if (made) cv_.notify_all();
  return made;
}

void BuildService::PollOnce() {
  auto projects = store_.Projects();
  if (!projects) {
    std::fprintf(stderr, "builds: poll: %s\n", projects.error().message.c_str());
    return;
  }
  std::unique_lock lk(mu_);
  if (poll_threads_.size() > 256) {
    // Bound the list. Each thread ends within git_timeout (ls-remote's
    // bound), so joining the old ones waits at most that long.
    std::vector<std::thread> old = std::move(poll_threads_);
    poll_threads_.clear();
    lk.unlock();
    for (auto& t : old) t.join();
    lk.lock();
  }
  // A different order every cycle: a remote that sheds load (git daemon's
  // connection limit) does not refuse the same projects every time.
  static thread_local std::mt19937 rng(std::random_device{}());
  std::shuffle(projects->begin(), projects->end(), rng);
  for (auto& p : *projects) {
    if (stopping_ || polling_.count(p.name)) continue;  // Still polling this one: skip, never wait.
    polling_.insert(p.name);
    poll_threads_.emplace_back([this, p] {
      auto access = GitAccessFor(p, o_.pipeline.read_secret);
      Result<std::vector<RemoteHead>> heads = Err(ErrorCode::kInternal, "not listed");
      if (!access) {
        heads = Err(access.error());
      } else {
        heads = o_.pipeline.vcs->ListHeads(p.git_url, o_.pipeline.git_timeout, *access);
        // Refused or cut off (a busy remote): twice more, after a short random pause.
        for (int attempt = 0; attempt < 2 && !heads && heads.error().code == ErrorCode::kUnavailable; ++attempt) {
          o_.pipeline.clock->Sleep(Millis(100 + static_cast<int>(rng() % 400)));
          heads = o_.pipeline.vcs->ListHeads(p.git_url, o_.pipeline.git_timeout, *access);
        }
      }
      if (!heads) {
        std::fprintf(stderr, "builds: poll %s: %s\n", p.name.c_str(), heads.error().message.c_str());
      } else {
        for (const auto& h : *heads) {
          auto t = Trigger(p.name, h.branch, h.sha, "poll");
          if (t && *t) {
            std::printf("builds: %s %s@%s: build %lld queued (poll)\n", p.name.c_str(), h.branch.c_str(),
                        h.sha.substr(0, 12).c_str(), static_cast<long long>((*t)->id));
            std::fflush(stdout);
          }
        }
      }
      std::lock_guard l(mu_);
      polling_.erase(p.name);
    });
  }
}

Result<std::optional<BuildRecord>> BuildService::Webhook(const std::string& project, const std::string& body,
                                                         const std::string& signature, const std::string& delivery_id,
                                                         HookFormat format) {
  SP_ASSIGN_OR_RETURN(auto p, store_.Project(project));
  // The same answer for an unknown project as for a bad signature: nothing
  // to learn from probing.
  if (!p || p->webhook_secret_ref.empty() || !o_.pipeline.read_secret) {
    return Err(ErrorCode::kUnauthenticated, "invalid signature");
  }
  auto secret = o_.pipeline.read_secret(p->webhook_secret_ref);
  if (!secret) {
    // The admin's to know (the server's output), not the anonymous caller's:
    // the answer names no path and no reason.
    std::fprintf(stderr, "sallyport server: project %s: its webhook secret: %s\n", project.c_str(),
                 secret.error().message.c_str());
    return Err(ErrorCode::kUnauthenticated, "invalid signature");
  }
  const std::string& key = *secret;
  static_assert(kHookSpecs[1].format == HookFormat::kGitea && kHookSpecs[2].format == HookFormat::kGitLab,
                "kHookSpecs is indexed by HookFormat");
  const HookSpec& spec = kHookSpecs[static_cast<int>(format)];
  std::string want;
  switch (format) {
    case HookFormat::kGitHub: want = HubSignature(key, body); break;
    case HookFormat::kGitea: want = HubSignature(key, body).substr(7); break;  // No "sha256=".
    case HookFormat::kGitLab: want = key; break;
  }
  if (signature.size() != want.size() || CRYPTO_memcmp(signature.data(), want.data(), want.size()) != 0) {
    return Err(ErrorCode::kUnauthenticated, "invalid signature");
  }
  if (delivery_id.empty()) {
    return Err(ErrorCode::kInvalidArgument, std::string("missing delivery id (") + spec.delivery_header + ")");
  }
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("ref") || !j["ref"].is_string() || !j.contains("after") || !j["after"].is_string()) {
    return Err(ErrorCode::kInvalidArgument, "not a push event: /ref and /after required");
  }
  // Delivery ids of one format never collide with another's (GitHub's keep their bare form).
  const std::string key_of_delivery =
      format == HookFormat::kGitHub ? delivery_id : std::string(spec.path) + ":" + delivery_id;
  SP_ASSIGN_OR_RETURN(bool first, store_.FirstDelivery(key_of_delivery, Now()));
  if (!first) return std::optional<BuildRecord>();  // A replay.
  const std::string ref = j["ref"], after = j["after"];
  if (!StartsWith(ref, "refs/heads/")) return std::optional<BuildRecord>();  // Tags: not built.
  if (after == std::string(40, '0')) return std::optional<BuildRecord>();     // Branch deleted.
  // A push is built only while its commit is the branch's head: an old
  // delivery replayed under a new id (the signature is the same) starts nothing.
  SP_ASSIGN_OR_RETURN(GitAccess access, GitAccessFor(*p, o_.pipeline.read_secret));
  SP_ASSIGN_OR_RETURN(auto heads, o_.pipeline.vcs->ListHeads(p->git_url, o_.pipeline.git_timeout, access));
  const std::string branch = ref.substr(11);
  const bool head = std::any_of(heads.begin(), heads.end(),
                                [&](const RemoteHead& h) { return h.branch == branch && h.sha == after; });
  if (!head) return std::optional<BuildRecord>();
  return Trigger(project, branch, after, "webhook");
}

Result<std::optional<BuildRecord>> BuildService::Manual(const std::string& project, const std::string& branch,
                                                        const std::string& sha) {
  SP_ASSIGN_OR_RETURN(auto p, store_.Project(project));
  if (!p) return Err(ErrorCode::kNotFound, "no project '" + Printable(project) + "'");
  if (!IsValidBranchName(branch)) return Err(ErrorCode::kInvalidArgument, "invalid branch '" + Printable(branch) + "'");
  SP_ASSIGN_OR_RETURN(GitAccess access, GitAccessFor(*p, o_.pipeline.read_secret));
  SP_ASSIGN_OR_RETURN(auto heads, o_.pipeline.vcs->ListHeads(p->git_url, o_.pipeline.git_timeout, access));
  for (const auto& h : heads) {
    if (h.branch != branch) continue;
    if (sha.empty() || sha == h.sha) return Trigger(project, branch, h.sha, "manual");
    // An older commit: only one the branch's history holds (checked with git).
    if (auto on = OnBranch(*p, branch, sha, access); !on) return Err(on.error());
    return Trigger(project, branch, sha, "manual");
  }
  return Err(ErrorCode::kNotFound, "project " + project + " has no branch '" + Printable(branch) + "'");
}

Status BuildService::OnBranch(const ProjectRecord& p, const std::string& branch, const std::string& sha,
                              const GitAccess& access) {
  SP_ASSIGN_OR_RETURN(std::string name, RandomHex(8));
  const std::string dir = o_.data_dir + "/verify/" + name;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Err(ErrorCode::kInternal, "cannot create " + dir + ": " + ec.message());
  Status on = o_.pipeline.vcs->Checkout(p.git_url, branch, sha, dir, o_.pipeline.git_timeout,
                                        [](bool, const std::string&) {}, access);
  std::filesystem::remove_all(dir, ec);
  return on;
}

Status BuildService::Cancel(int64_t build_id) {
  SP_ASSIGN_OR_RETURN(BuildRecord b, store_.GetBuild(build_id));
  std::lock_guard lk(mu_);
  if (auto it = cancels_.find(build_id); it != cancels_.end()) {
    it->second->store(true);
    return Ok();
  }
  if (b.status != BuildStatus::kQueued) {
    return Err(ErrorCode::kConflict, "build " + std::to_string(build_id) + " is " + std::string(BuildStatusName(b.status)));
  }
  b.status = BuildStatus::kCanceled;
  b.finished_ms = Now();
  b.error = "canceled before it started";
  return store_.UpdateBuild(b);
}

void BuildService::Worker() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    lk.unlock();
    auto next = store_.StartNextBuild(Now());
    lk.lock();
    if (next && *next && !stopping_) {
      lk.unlock();
      Execute(**next);
      lk.lock();
      continue;
    }
    // Woken by a trigger here; other processes' triggers are found within 500 ms.
    cv_.wait_for(lk, std::chrono::milliseconds(500));
  }
}

namespace {

// The sink of a build run in this process: the store and the log file.
class LocalBuildSink : public BuildSink {
 public:
  LocalBuildSink(BuildStore& store, int64_t id, const std::string& log_path, int64_t log_cap)
      : store_(store), id_(id), log_(log_path, log_cap) {}
  Status Update(const BuildRecord& b) override { return store_.UpdateBuild(b); }
  Status PutStep(const BuildStepRecord& s) override { return store_.PutBuildStep(s); }
  Status PutConfig(const std::string& text) override { return store_.PutBuildConfig(id_, text); }
  void Line(int64_t ts, const std::string& step, bool is_err, const std::string& text) override {
    log_.Line(ts, step, is_err, text);
  }
  void Flush() override { log_.Flush(); }

 private:
  BuildStore& store_;
  int64_t id_;
  LogFileWriter log_;
};

}  // namespace

void BuildService::Execute(BuildRecord b) {
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard lk(mu_);
    cancels_[b.id] = cancel;
  }
  auto project = store_.Project(b.project);
  if (!project || !*project) {
    b.status = BuildStatus::kFailed;
    b.error = "project " + b.project + " is gone";
    b.finished_ms = Now();
    (void)store_.UpdateBuild(b);
  } else if (o_.run_elsewhere) {
    Status st = o_.run_elsewhere(b, **project, *cancel);
    // Whatever happened there, the build does not stay "running".
    auto now = store_.GetBuild(b.id);
    if (now && (now->status == BuildStatus::kQueued || now->status == BuildStatus::kRunning)) {
      now->status = cancel->load() ? BuildStatus::kCanceled : BuildStatus::kFailed;
      now->error = st ? "ended without an outcome" : st.error().message;
      now->finished_ms = Now();
      (void)store_.UpdateBuild(*now);
    }
  } else {
    LocalBuildSink sink(store_, b.id, LogPath(b.id), o_.log_cap_bytes);
    RunPipeline(b, **project, o_.data_dir + "/work/" + std::to_string(b.id), o_.pipeline, sink, *cancel);
  }
  std::lock_guard lk(mu_);
  cancels_.erase(b.id);
}

}  // namespace sp
