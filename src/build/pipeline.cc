#include "build/pipeline.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "build/credentials.h"
#include "config/branch_rules.h"
#include "core/file.h"
#include "core/text.h"
#include "secrets/masker.h"

namespace sp {

namespace fs = std::filesystem;

Status CheckRemoteCredential(const ProjectRecord& p) {
  if (p.credential_ref.empty() || StartsWith(p.git_url, "ssh://") || StartsWith(p.git_url, "https://")) return Ok();
  if (!StartsWith(p.git_url, "http://")) {
    return Err(ErrorCode::kInvalidArgument, "project " + p.name + ": credentials are for http(s) and ssh remotes only");
  }
  if (!IsLoopbackHost(UrlHost(p.git_url))) {
    return Err(ErrorCode::kInvalidArgument, "project " + p.name + ": its token would travel in clear to " +
                                                UrlHost(p.git_url) + "; use an https:// remote (plain http:// only to "
                                                "a loopback address)");
  }
  return Ok();
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
  SP_TRY(CheckRemoteCredential(p));
  if (!read_secret) return Err(ErrorCode::kUnavailable, "project " + p.name + ": no secret reader for its token");
  auto token = read_secret(p.credential_ref);
  if (!token) return Err(token.error().Wrap("project " + p.name + "'s token"));
  a.token = Trim(*token);
  if (a.token.empty()) return Err(ErrorCode::kInvalidArgument, "project " + p.name + "'s token is empty");
  return a;
}

namespace {

// The build's records with every secret value it was handed masked: what a
// step prints, and the errors of the build and its steps.
class MaskedSink final : public BuildSink {
 public:
  MaskedSink(BuildSink& inner, const Masker& m) : inner_(inner), m_(m) {}
  Status Update(const BuildRecord& b) override {
    BuildRecord masked = b;
    masked.error = m_.Mask(b.error);
    return inner_.Update(masked);
  }
  Status PutStep(const BuildStepRecord& s) override { return inner_.PutStep(s); }
  Status PutConfig(const std::string& text) override { return inner_.PutConfig(text); }
  void Line(int64_t ts_ms, const std::string& step, bool is_err, const std::string& text) override {
    inner_.Line(ts_ms, step, is_err, m_.Mask(text));
  }
  void Flush() override { inner_.Flush(); }

 private:
  BuildSink& inner_;
  const Masker& m_;
};

// One run of a build's pipeline; see RunPipeline.
class Pipeline {
 public:
  Pipeline(BuildRecord b, const ProjectRecord& project, std::string ws, const PipelineOptions& o, BuildSink& sink,
           const std::atomic<bool>& cancel)
      : b_(std::move(b)), project_(project), ws_(std::move(ws)), o_(o), masked_(sink, masker_), sink_(masked_),
        cancel_(cancel) {}

  BuildRecord Run() {
    std::error_code ec;
    fs::remove_all(ws_, ec);
    fs::remove_all(ws_ + ".home", ec);
    Status st = Step("checkout", "checkout", [this] { return Checkout(); });
    if (!st) return Finish(Canceled() ? BuildStatus::kCanceled : BuildStatus::kFailed, st.error().message);
    if (auto c = o_.vcs->ReadCommit(ws_)) {
      b_.author = c->author;
      b_.message = c->subject;
      (void)sink_.Update(b_);
    }
    if (auto ended = Configure()) return *ended;
    for (const auto& s : cfg_.pipeline) {
      if (!StepRunsOn(s.when, b_.branch)) {
        (void)sink_.PutStep(BuildStepRecord{b_.id, index_++, s.name, s.kind, "skipped", 0, Now(), Now()});
        continue;
      }
      st = Step(s.name, s.kind, [this, &s] { return RunStep(s); });
      // The rest is skipped: a failed step fails the build.
      if (!st) return Finish(Canceled() ? BuildStatus::kCanceled : BuildStatus::kFailed, st.error().message);
    }
    return Finish(BuildStatus::kSucceeded, "");
  }

 private:
  int64_t Now() { return o_.clock->WallMs(); }
  bool Canceled() const { return cancel_.load(); }
  LineCallback Logger(const std::string& step) {
    return [this, step](bool is_err, const std::string& line) { sink_.Line(Now(), step, is_err, line); };
  }

  BuildRecord Finish(BuildStatus st, const std::string& error) {
    sink_.Line(Now(), "build", st != BuildStatus::kSucceeded,
               "build " + std::string(BuildStatusName(st)) + (error.empty() ? "" : ": " + error));
    sink_.Flush();  // Whole before the build reads as finished.
    b_.status = st;
    b_.error = error;
    b_.finished_ms = Now();
    (void)sink_.Update(b_);
    std::error_code ec;
    fs::remove_all(ws_, ec);
    fs::remove_all(ws_ + ".home", ec);
    return b_;
  }

  // Runs one recorded step; `fn` does the work.
  Status Step(const std::string& name, const std::string& kind, const std::function<Status()>& fn) {
    BuildStepRecord rec{b_.id, index_++, name, kind, "running", 0, Now(), 0};
    (void)sink_.PutStep(rec);
    sink_.Line(Now(), name, false, "--- step " + name + " (" + kind + ")");
    Status st = Canceled() ? Status(Err(ErrorCode::kCancelled, "canceled")) : fn();
    rec.finished_ms = Now();
    rec.status = st ? "succeeded" : (st.error().code == ErrorCode::kCancelled ? "canceled" : "failed");
    rec.exit_code = st ? 0 : 1;
    (void)sink_.PutStep(rec);
    if (!st) sink_.Line(Now(), name, true, "step " + name + " " + rec.status + ": " + st.error().message);
    return st;
  }

  Status RunArgv(const std::string& name, const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env, Millis timeout, bool inherit_env = true,
                 std::optional<StepUser> run_as = std::nullopt) {
    StepCommand c;
    c.run_as = std::move(run_as);
    c.argv = argv;
    c.cwd = ws_;
    c.env = env;
    c.inherit_env = inherit_env;
    c.timeout = timeout;
    c.cancel = &cancel_;
    c.on_line = Logger(name);
    SP_ASSIGN_OR_RETURN(ExitStatus st, o_.steps->Run(c));
    if (st.canceled) return Err(ErrorCode::kCancelled, "canceled");
    if (st.timed_out) return Err(ErrorCode::kTimeout, "timed out after " + FormatDuration(timeout));
    if (!st.ok()) return Err(ErrorCode::kUnavailable, st.Describe());
    return Ok();
  }

  Status Checkout() {
    SP_ASSIGN_OR_RETURN(GitAccess access, GitAccessFor(project_, o_.read_secret));
    return o_.vcs->Checkout(project_.git_url, b_.branch, b_.sha, ws_, o_.git_timeout, Logger("checkout"), access);
  }

  // Reads the commit's sallyport.yml and the branch's rule; a build that
  // ends here (bad file, rejected or unmatched branch) is returned.
  std::optional<BuildRecord> Configure() {
    auto text = ReadTextFile(ws_ + "/sallyport.yml");
    if (!text) return Finish(BuildStatus::kFailed, text.error().message);
    config_text_ = *text;
    auto cfg = ParseServiceConfig(config_text_, ws_ + "/sallyport.yml");
    if (!cfg) return Finish(BuildStatus::kFailed, cfg.error().message);
    cfg_ = std::move(*cfg);
    if (auto refused = CheckCommitSecrets(cfg_); !refused) {
      sink_.Line(Now(), "build", true, refused.error().message);
      return Finish(BuildStatus::kFailed, refused.error().message);
    }
    if (auto kept = sink_.PutConfig(config_text_); !kept) {
      return Finish(BuildStatus::kFailed, kept.error().Wrap("keeping sallyport.yml").message);
    }
    // The registry credential is resolved before any of the commit's steps
    // runs: a binding that may not go to the file's registry fails the build here.
    if (!cfg_.registry.password_ref.empty()) {
      auto pw = RegistryPassword();
      if (!pw) {
        sink_.Line(Now(), "build", true, pw.error().message);
        return Finish(BuildStatus::kFailed, pw.error().message);
      }
      registry_password_ = std::move(*pw);
      masker_.Add(registry_password_);
    }
    auto target = MatchBranch(cfg_.branches, b_.branch);
    if (!target) {
      sink_.Line(Now(), "build", true, "rejected: " + target.error().message);
      return Finish(BuildStatus::kFailed, "rejected: " + target.error().message);
    }
    if (!*target) return Finish(BuildStatus::kSkipped, "no branch rule matches '" + b_.branch + "'");
    b_.deployment = (*target)->deployment;
    (void)sink_.Update(b_);
    if (!o_.docker_host.empty()) docker_env_["DOCKER_HOST"] = o_.docker_host;
    return std::nullopt;
  }

  std::string ImageBySha() const { return cfg_.image_repository + ":" + b_.sha; }

  Status RunStep(const PipelineStep& s) {
    if (s.kind == "command") return CommandStep(s);
    if (s.kind == "image") {
      return RunArgv(s.name,
                     {o_.docker_bin, "build", "-t", ImageBySha(), "-t", cfg_.image_repository + ":" + SanitizedTag(b_.branch),
                      "-f", ws_ + "/" + cfg_.image_dockerfile, ws_ + "/" + cfg_.image_context},
                     docker_env_, s.timeout);
    }
    if (s.kind == "push") return PushStep(s);
    if (s.kind == "deploy") return DeployStep(s);
    return Err(ErrorCode::kInvalidArgument, "unknown step kind '" + s.kind + "'");
  }

  // A step's `secrets:`: each the credential of that name, if the admin's
  // binding lets the steps of this branch's builds have it (checked by
  // whoever holds the bindings, on the build's own branch).
  Result<std::map<std::string, std::string>> StepSecrets(const PipelineStep& s) {
    std::map<std::string, std::string> out;
    for (const auto& name : s.secrets) {
      if (!o_.read_credential) {
        return Err(ErrorCode::kUnavailable, "secret " + name + ": this build runs where no credentials are bound");
      }
      auto value = o_.read_credential(b_.project, name, CredentialBinding::kBranchPrefix + b_.branch);
      if (!value) return Err(value.error().Wrap("secret " + name));
      masker_.Add(*value);
      out[name] = std::move(*value);
    }
    return out;
  }

  Status CommandStep(const PipelineStep& s) {
    SP_ASSIGN_OR_RETURN(auto secrets, StepSecrets(s));
    // The commit's code sees none of the server's or agent's environment
    // (tokens, DOCKER_HOST, SSH_AUTH_SOCK, ...): PATH, a HOME of its own
    // beside the checkout, and what the pipeline says.
    const std::string home = ws_ + ".home";
    std::error_code ec;
    fs::create_directories(home, ec);
    if (o_.step_user && !given_to_step_user_) {
      SP_TRY(GiveTo(*o_.step_user, {ws_, home}));
      given_to_step_user_ = true;
    }
    const char* path = std::getenv("PATH");
    std::map<std::string, std::string> env = {{"PATH", path && *path ? path : "/usr/local/bin:/usr/bin:/bin"},
                                              {"HOME", home},
                                              {"LANG", "C.UTF-8"},
                                              {"SALLYPORT_BRANCH", b_.branch},
                                              {"SALLYPORT_COMMIT", b_.sha},
                                              {"SALLYPORT_BUILD", std::to_string(b_.id)}};
    for (const auto& [k, v] : s.env) env[k] = v;
    for (auto& [k, v] : secrets) env[k] = std::move(v);  // Last: the step's own env cannot shadow them.
    return RunArgv(s.name, s.run, env, s.timeout, /*inherit_env=*/false, o_.step_user);
  }

  // The checkout and the step's HOME become the step user's (the commit's
  // steps write there); nothing outside them.
  static Status GiveTo(const StepUser& u, const std::vector<std::string>& roots) {
    for (const auto& root : roots) {
      std::error_code ec;
      auto own = [&](const fs::path& p) -> Status {
        if (::lchown(p.c_str(), u.uid, u.gid) != 0) {
          return Err(ErrorCode::kInternal, "cannot give " + p.string() + " to the step user " + u.name + ": " +
                                               std::strerror(errno));
        }
        return Ok();
      };
      SP_TRY(own(root));
      for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
        SP_TRY(own(it->path()));
      }
      if (ec) return Err(ErrorCode::kInternal, "cannot walk " + root + ": " + ec.message());
    }
    return Ok();
  }

  Status PushStep(const PipelineStep& s) {
    // A private client config for this push: the login never lands in
    // anyone's ~/.docker, and is gone with the workspace.
    const std::string conf = ws_ + "/.docker-config";
    std::error_code ec;
    fs::create_directories(conf, ec);
    auto env = docker_env_;
    env["DOCKER_CONFIG"] = conf;
    if (o_.check_registry) {
      const std::string address =
          cfg_.registry.address.empty() ? ImageRegistry(cfg_.image_repository) : cfg_.registry.address;
      if (Status ok = o_.check_registry(cfg_.registry, address, registry_password_); !ok) {
        return Err(ok.error().Wrap("push"));
      }
      sink_.Line(Now(), s.name, false, "registry " + address + ": TLS verified, credentials accepted");
    }
    if (!cfg_.registry.password_ref.empty()) SP_TRY(Login(s, env));
    SP_TRY(RunArgv(s.name, {o_.docker_bin, "push", ImageBySha()}, env, s.timeout));
    SP_TRY(ReadDigest(env));
    sink_.Line(Now(), s.name, false, "artifact " + b_.artifact);
    (void)sink_.Update(b_);
    return Ok();
  }

  // The registry password: a credential the server's admin bound for this
  // project and this registry (CheckCommitSecrets refused anything else).
  Result<std::string> RegistryPassword() {
    const std::string name = CredentialNameOf(cfg_.registry.password_ref);
    if (!o_.read_credential) return Err(ErrorCode::kUnavailable, "no credential reader for the registry password");
    auto pw = o_.read_credential(project_.name, name, cfg_.registry.address);
    if (!pw) return Err(pw.error().Wrap("registry.password"));
    return pw;
  }

  Status Login(const PipelineStep& s, const std::map<std::string, std::string>& env) {
    const std::string& pw = registry_password_;
    CommandSpec login;
    login.argv = {o_.docker_bin, "login", "--username", cfg_.registry.username, "--password-stdin", cfg_.registry.address};
    login.stdin_data = pw + "\n";
    login.env = env;
    login.timeout = s.timeout;
    login.on_line = Logger(s.name);
    login.capture = false;
    SP_ASSIGN_OR_RETURN(ExitStatus ls, o_.processes->Run(login));
    if (!ls.ok()) return Err(ErrorCode::kUnauthenticated, "docker login " + cfg_.registry.address + " failed");
    return Ok();
  }

  // The pushed image's digest in the repository becomes the artifact.
  Status ReadDigest(const std::map<std::string, std::string>& env) {
    CommandSpec inspect;
    inspect.argv = {o_.docker_bin, "image", "inspect", "--format", "{{json .RepoDigests}}", ImageBySha()};
    inspect.env = env;
    inspect.timeout = Millis(30'000);
    SP_ASSIGN_OR_RETURN(ExitStatus is, o_.processes->Run(inspect));
    if (!is.ok()) return Err(ErrorCode::kUnavailable, "docker image inspect: " + is.Describe());
    auto digests = nlohmann::json::parse(is.out, nullptr, false);
    for (const auto& d : digests.is_array() ? digests : nlohmann::json::array()) {
      if (d.is_string() && StartsWith(d.get<std::string>(), cfg_.image_repository + "@sha256:")) b_.artifact = d;
    }
    if (b_.artifact.empty()) return Err(ErrorCode::kInternal, "no digest of " + cfg_.image_repository + " after push");
    return Ok();
  }

  Status DeployStep(const PipelineStep& s) {
    if (b_.deployment.empty()) {
      sink_.Line(Now(), s.name, false, "branch " + b_.branch + " deploys nowhere (build only)");
      return Ok();
    }
    if (b_.artifact.empty()) return Err(ErrorCode::kInvalidArgument, "nothing to deploy: no push step ran before");
    if (!o_.deploy) return Err(ErrorCode::kUnavailable, "this server cannot deploy");
    DeployRequest request = DeployOf(cfg_, config_text_, s.release, b_.deployment, b_.artifact, b_.id);
    return o_.deploy(request, Logger(s.name), cancel_);
  }

  BuildRecord b_;
  const ProjectRecord& project_;
  const std::string ws_;
  const PipelineOptions& o_;
  Masker masker_;      // The secret values handed to this build.
  MaskedSink masked_;  // The caller's sink, through masker_.
  BuildSink& sink_;
  const std::atomic<bool>& cancel_;
  int index_ = 0;
  std::string config_text_;
  bool given_to_step_user_ = false;
  std::string registry_password_;  // Resolved in Configure; only for docker login's stdin.
  ServiceConfig cfg_;
  std::map<std::string, std::string> docker_env_;
};

}  // namespace

BuildRecord RunPipeline(BuildRecord b, const ProjectRecord& project, const std::string& ws, const PipelineOptions& o,
                        BuildSink& sink, const std::atomic<bool>& cancel) {
  SP_CHECK(o.clock && o.processes && o.steps && o.vcs);
  return Pipeline(std::move(b), project, ws, o, sink, cancel).Run();
}

}  // namespace sp
