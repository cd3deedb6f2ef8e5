#include "build/build_service.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "build/vcs.h"
#include "config/branch_rules.h"
#include "core/file.h"
#include "core/text.h"
#include "runner/runner.h"

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

void AppendLogLine(std::string& out, int64_t ts_ms, const std::string& step, bool is_err, const std::string& text) {
  char ts[24];
  const int n = std::snprintf(ts, sizeof ts, "%lld\t", static_cast<long long>(ts_ms));
  out.append(ts, static_cast<size_t>(n)).append(step).append(is_err ? "\terr\t" : "\tout\t").append(text).push_back('\n');
}

std::string FormatLogLine(int64_t ts_ms, const std::string& step, bool is_err, const std::string& text) {
  std::string out;
  AppendLogLine(out, ts_ms, step, is_err, text);
  return out;
}

std::optional<LogLine> ParseLogLine(const std::string& line) {
  const size_t a = line.find('\t');
  const size_t b = a == std::string::npos ? a : line.find('\t', a + 1);
  const size_t c = b == std::string::npos ? b : line.find('\t', b + 1);
  if (c == std::string::npos) return std::nullopt;
  LogLine l;
  l.ts_ms = std::atoll(line.substr(0, a).c_str());
  l.step = line.substr(a + 1, b - a - 1);
  l.is_err = line.compare(b + 1, c - b - 1, "err") == 0;
  l.text = line.substr(c + 1);
  return l;
}

Result<GitAccess> GitAccessFor(const ProjectRecord& p,
                               const std::function<Result<std::string>(const std::string& ref)>& read_secret) {
  GitAccess a;
  const bool ssh = StartsWith(p.git_url, "ssh://");
  if (ssh) a.known_hosts = p.known_hosts;
  if (p.credential_ref.empty()) return a;
  if (ssh) {
    // The deploy key is the file itself: handed to ssh by path, never read here.
    if (!StartsWith(p.credential_ref, "file:/")) {
      return Err(ErrorCode::kInvalidArgument, "project " + p.name + ": an ssh deploy key must be a file: reference");
    }
    a.ssh_key_file = p.credential_ref.substr(5);
    return a;
  }
  if (!StartsWith(p.git_url, "http://") && !StartsWith(p.git_url, "https://")) {
    return Err(ErrorCode::kInvalidArgument, "project " + p.name + ": credentials are for http(s) and ssh remotes only");
  }
  if (!read_secret) return Err(ErrorCode::kUnavailable, "project " + p.name + ": no secret reader for its token");
  auto token = read_secret(p.credential_ref);
  if (!token) return Err(token.error().Wrap("project " + p.name + "'s token"));
  a.token = Trim(*token);
  if (a.token.empty()) return Err(ErrorCode::kInvalidArgument, "project " + p.name + "'s token is empty");
  return a;
}

BuildService::BuildService(BuildStore& store, BuildOptions options) : store_(store), o_(std::move(options)) {}

BuildService::~BuildService() { Stop(); }

int64_t BuildService::Now() const { return o_.now_ms ? o_.now_ms() : RealClock::Instance().WallMs(); }

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
      auto access = GitAccessFor(p, o_.read_secret);
      Result<std::vector<RemoteHead>> heads = Err(ErrorCode::kInternal, "not listed");
      if (!access) {
        heads = Err(access.error());
      } else {
        heads = ListHeads(p.git_url, o_.git_timeout, *access);
        // Refused or cut off (a busy remote): twice more, after a short random pause.
        for (int attempt = 0; attempt < 2 && !heads && heads.error().code == ErrorCode::kUnavailable; ++attempt) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100 + static_cast<int>(rng() % 400)));
          heads = ListHeads(p.git_url, o_.git_timeout, *access);
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
  if (!p || p->webhook_secret_ref.empty() || !o_.read_secret) {
    return Err(ErrorCode::kUnauthenticated, "invalid signature");
  }
  SP_ASSIGN_OR_RETURN(std::string key, o_.read_secret(p->webhook_secret_ref));
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
  return Trigger(project, ref.substr(11), after, "webhook");
}

Result<std::optional<BuildRecord>> BuildService::Manual(const std::string& project, const std::string& branch,
                                                        const std::string& sha) {
  if (!sha.empty()) return Trigger(project, branch, sha, "manual");
  SP_ASSIGN_OR_RETURN(auto p, store_.Project(project));
  if (!p) return Err(ErrorCode::kNotFound, "no project '" + Printable(project) + "'");
  SP_ASSIGN_OR_RETURN(GitAccess access, GitAccessFor(*p, o_.read_secret));
  SP_ASSIGN_OR_RETURN(auto heads, ListHeads(p->git_url, o_.git_timeout, access));
  for (const auto& h : heads) {
    if (h.branch == branch) return Trigger(project, branch, h.sha, "manual");
  }
  return Err(ErrorCode::kNotFound, "project " + project + " has no branch '" + Printable(branch) + "'");
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

// The build's log: one line per output line, "<ts_ms>\t<step>\t<out|err>\t<text>",
// appended through a 1 MiB buffer that is written out at least every 50 ms
// (followers read the file) and when full: a chatty step costs one write
// per megabyte, not one per line.
class BuildLog {
 public:
  explicit BuildLog(const std::string& path) : f_(std::fopen(path.c_str(), "a")) {
    if (f_) std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
    flusher_ = std::thread([this] {
      std::unique_lock l(mu_);
      while (!cv_.wait_for(l, std::chrono::milliseconds(50), [this] { return closing_; })) {
        if (dirty_ && f_) std::fflush(f_);
        dirty_ = false;
      }
    });
  }
  ~BuildLog() {
    {
      std::lock_guard l(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    flusher_.join();
    if (f_) std::fclose(f_);
  }
  void Line(int64_t ts, const std::string& step, bool is_err, const std::string& text) {
    std::lock_guard l(mu_);
    if (!f_) return;
    line_.clear();
    AppendLogLine(line_, ts, step, is_err, text);
    std::fwrite(line_.data(), 1, line_.size(), f_);
    dirty_ = true;
  }
  void Flush() {
    std::lock_guard l(mu_);
    if (f_) std::fflush(f_);
    dirty_ = false;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::FILE* f_;
  bool dirty_ = false, closing_ = false;
  std::string line_;  // Reused for every line.
  std::thread flusher_;
};

// The sink of a build run in this process: the store and the log file.
class LocalBuildSink : public BuildSink {
 public:
  LocalBuildSink(BuildStore& store, const std::string& log_path) : store_(store), log_(log_path) {}
  Status Update(const BuildRecord& b) override { return store_.UpdateBuild(b); }
  Status PutStep(const BuildStepRecord& s) override { return store_.PutBuildStep(s); }
  void Line(int64_t ts, const std::string& step, bool is_err, const std::string& text) override {
    log_.Line(ts, step, is_err, text);
  }
  void Flush() override { log_.Flush(); }

 private:
  BuildStore& store_;
  BuildLog log_;
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
    LocalBuildSink sink(store_, LogPath(b.id));
    RunPipeline(b, **project, o_.data_dir + "/work/" + std::to_string(b.id), o_, sink, *cancel);
  }
  std::lock_guard lk(mu_);
  cancels_.erase(b.id);
}

BuildRecord RunPipeline(BuildRecord b, const ProjectRecord& project, const std::string& ws, const BuildOptions& o,
                        BuildSink& sink, const std::atomic<bool>& cancel_flag) {
  const std::atomic<bool>* cancel = &cancel_flag;
  auto Now = [&o] { return o.now_ms ? o.now_ms() : RealClock::Instance().WallMs(); };
  auto logger = [&](const std::string& step) {
    return [&, step](bool is_err, const std::string& line) { sink.Line(Now(), step, is_err, line); };
  };
  std::error_code ec;
  fs::remove_all(ws, ec);
  int index = 0;
  auto finish = [&](BuildStatus st, const std::string& error) {
    sink.Line(Now(), "build", st != BuildStatus::kSucceeded, "build " + std::string(BuildStatusName(st)) +
                                                                 (error.empty() ? "" : ": " + error));
    sink.Flush();  // Whole before the build reads as finished.
    b.status = st;
    b.error = error;
    b.finished_ms = Now();
    (void)sink.Update(b);
    fs::remove_all(ws, ec);
    return b;
  };
  // Runs one recorded step; `fn` does the work.
  auto step = [&](const std::string& name, const std::string& kind, const std::function<Status()>& fn) -> Status {
    BuildStepRecord rec{b.id, index++, name, kind, "running", 0, Now(), 0};
    (void)sink.PutStep(rec);
    sink.Line(Now(), name, false, "--- step " + name + " (" + kind + ")");
    Status st = cancel->load() ? Status(Err(ErrorCode::kCancelled, "canceled")) : fn();
    rec.finished_ms = Now();
    rec.status = st ? "succeeded" : (st.error().code == ErrorCode::kCancelled ? "canceled" : "failed");
    rec.exit_code = st ? 0 : 1;
    (void)sink.PutStep(rec);
    if (!st) sink.Line(Now(), name, true, "step " + name + " " + rec.status + ": " + st.error().message);
    return st;
  };
  auto run = [&](const std::string& name, const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env, Millis timeout) -> Status {
    StepCommand c;
    c.argv = argv;
    c.cwd = ws;
    c.env = env;
    c.timeout = timeout;
    c.cancel = cancel;
    c.on_line = logger(name);
    c.supervisor = o.supervisor;
    SP_ASSIGN_OR_RETURN(ExitStatus st, RunStep(c));
    if (st.canceled) return Err(ErrorCode::kCancelled, "canceled");
    if (st.timed_out) return Err(ErrorCode::kTimeout, "timed out after " + FormatDuration(timeout));
    if (!st.ok()) return Err(ErrorCode::kUnavailable, st.Describe());
    return Ok();
  };

  Status st = step("checkout", "checkout", [&]() -> Status {
    SP_ASSIGN_OR_RETURN(GitAccess access, GitAccessFor(project, o.read_secret));
    return CheckoutCommit(project.git_url, b.branch, b.sha, ws, o.git_timeout, logger("checkout"), access);
  });
  if (!st) return finish(cancel->load() ? BuildStatus::kCanceled : BuildStatus::kFailed, st.error().message);
  if (auto c = ReadCommit(ws)) {
    b.author = c->author;
    b.message = c->subject;
    (void)sink.Update(b);
  }
  auto config_text = ReadTextFile(ws + "/sallyport.yml");
  if (!config_text) return finish(BuildStatus::kFailed, config_text.error().message);
  auto cfg = ParseServiceConfig(*config_text, ws + "/sallyport.yml");
  if (!cfg) return finish(BuildStatus::kFailed, cfg.error().message);
  auto target = MatchBranch(cfg->branches, b.branch);
  if (!target) {
    sink.Line(Now(), "build", true, "rejected: " + target.error().message);
    return finish(BuildStatus::kFailed, "rejected: " + target.error().message);
  }
  if (!*target) return finish(BuildStatus::kSkipped, "no branch rule matches '" + b.branch + "'");
  b.deployment = (*target)->deployment;
  (void)sink.Update(b);
  const std::string tag_branch = SanitizedTag(b.branch);
  const std::string image_sha = cfg->image_repository + ":" + b.sha;
  std::map<std::string, std::string> docker_env;
  if (!o.docker_host.empty()) docker_env["DOCKER_HOST"] = o.docker_host;
  std::map<std::string, std::string> base_env = {{"SALLYPORT_BRANCH", b.branch}, {"SALLYPORT_COMMIT", b.sha},
                                                 {"SALLYPORT_BUILD", std::to_string(b.id)}};
  for (const auto& s : cfg->pipeline) {
    if (!StepRunsOn(s.when, b.branch)) {
      (void)sink.PutStep(BuildStepRecord{b.id, index++, s.name, s.kind, "skipped", 0, Now(), Now()});
      continue;
    }
    if (s.kind == "command") {
      if (!s.secrets.empty()) {
        st = step(s.name, s.kind, [&]() -> Status {
          return Err(ErrorCode::kUnavailable, "secrets are not available to steps yet (" + s.secrets[0] + ")");
        });
      } else {
        auto env = base_env;
        for (const auto& [k, v] : s.env) env[k] = v;
        st = step(s.name, s.kind, [&] { return run(s.name, s.run, env, s.timeout); });
      }
    } else if (s.kind == "image") {
      st = step(s.name, s.kind, [&] {
        return run(s.name,
                   {o.docker_bin, "build", "-t", image_sha, "-t", cfg->image_repository + ":" + tag_branch, "-f",
                    ws + "/" + cfg->image_dockerfile, ws + "/" + cfg->image_context},
                   docker_env, s.timeout);
      });
    } else if (s.kind == "push") {
      st = step(s.name, s.kind, [&]() -> Status {
        // A private client config for this push: the login never lands in
        // anyone's ~/.docker, and is gone with the workspace.
        const std::string conf = ws + "/.docker-config";
        fs::create_directories(conf, ec);
        auto env = docker_env;
        env["DOCKER_CONFIG"] = conf;
        if (!cfg->registry.password_ref.empty()) {
          if (!o.read_secret) return Err(ErrorCode::kUnavailable, "no secret reader for the registry password");
          SP_ASSIGN_OR_RETURN(std::string pw, o.read_secret(cfg->registry.password_ref));
          CommandSpec login;
          login.argv = {o.docker_bin, "login", "--username", cfg->registry.username, "--password-stdin",
                        cfg->registry.address};
          login.stdin_data = pw + "\n";
          login.env = env;
          login.timeout = s.timeout;
          login.on_line = logger(s.name);
          login.capture = false;
          SP_ASSIGN_OR_RETURN(ExitStatus ls, RunCommand(login));
          if (!ls.ok()) return Err(ErrorCode::kUnauthenticated, "docker login " + cfg->registry.address + " failed");
        }
        SP_TRY(run(s.name, {o.docker_bin, "push", image_sha}, env, s.timeout));
        CommandSpec inspect;
        inspect.argv = {o.docker_bin, "image", "inspect", "--format", "{{json .RepoDigests}}", image_sha};
        inspect.env = env;
        inspect.timeout = Millis(30'000);
        SP_ASSIGN_OR_RETURN(ExitStatus is, RunCommand(inspect));
        if (!is.ok()) return Err(ErrorCode::kUnavailable, "docker image inspect: " + is.Describe());
        auto digests = nlohmann::json::parse(is.out, nullptr, false);
        for (const auto& d : digests.is_array() ? digests : nlohmann::json::array()) {
          if (d.is_string() && StartsWith(d.get<std::string>(), cfg->image_repository + "@sha256:")) b.artifact = d;
        }
        if (b.artifact.empty()) return Err(ErrorCode::kInternal, "no digest of " + cfg->image_repository + " after push");
        sink.Line(Now(), s.name, false, "artifact " + b.artifact);
        (void)sink.Update(b);
        return Ok();
      });
    } else if (s.kind == "deploy") {
      st = step(s.name, s.kind, [&]() -> Status {
        if (b.deployment.empty()) {
          sink.Line(Now(), s.name, false, "branch " + b.branch + " deploys nowhere (build only)");
          return Ok();
        }
        if (b.artifact.empty()) return Err(ErrorCode::kInvalidArgument, "nothing to deploy: no push step ran before");
        if (!o.deploy) return Err(ErrorCode::kUnavailable, "this server cannot deploy");
        DeployRequest request{&*cfg, *config_text, s.release, b.deployment, b.artifact, b.id};
        return o.deploy(request, logger(s.name), *cancel);
      });
    }
    if (!st) break;
  }
  if (!st) {
    // The rest is skipped: a failed step fails the build.
    return finish(cancel->load() ? BuildStatus::kCanceled : BuildStatus::kFailed, st.error().message);
  }
  return finish(BuildStatus::kSucceeded, "");
}

}  // namespace sp
