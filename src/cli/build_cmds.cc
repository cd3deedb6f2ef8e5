// build list | show | start | cancel | logs, project add | list
#include <cstdio>

#include "build/build_service.h"
#include "build/credentials.h"
#include "build/pipeline.h"
#include "build/wire.h"
#include "cli/command.h"
#include "cli/logs.h"
#include "config/branch_rules.h"
#include "core/text.h"
#include "runner/runner.h"
#include "secrets/vault_ref.h"
#include "server/server_process.h"
#include "vcs/git/git_vcs.h"

namespace sp::cli {

namespace {

void PrintBuild(const Doc& b) {
  std::printf("build %lld  %s  %s@%s  %s (%s)\n", static_cast<long long>(b.value("id", int64_t{0})),
              b.value("project", "").c_str(), b.value("branch", "").c_str(), b.value("sha", "").substr(0, 12).c_str(),
              b.value("status", "").c_str(), b.value("trigger", "").c_str());
  for (const char* k : {"message", "artifact", "deployment", "error"}) {
    if (b.value(k, "").empty()) continue;
    const std::string label = std::string(k) == "message" ? "commit" : std::string(k) == "deployment" ? "deploys to" : k;
    std::string value = b.value(k, "");
    if (std::string(k) == "message") value += " (" + b.value("author", "") + ")";
    std::printf("  %s: %s\n", label.c_str(), value.c_str());
  }
  for (const auto& st : b.value("steps", Doc::array())) {
    const int64_t ms = st.value("finished_ms", int64_t{0}) - st.value("started_ms", int64_t{0});
    std::printf("  %-14s %-8s %-10s %s\n", st.value("name", "").c_str(), st.value("kind", "").c_str(),
                st.value("status", "").c_str(), ms > 0 ? FormatDuration(Millis(ms)).c_str() : "");
  }
}

// A build service on the local store that runs nothing (triggers land in
// the store; a server's workers run them).
struct LocalBuilds {
  GitVcs vcs;
  SupervisedStepRunner steps;
  std::unique_ptr<BuildService> service;
  LocalBuilds(SqliteStore& store, const std::string& store_path) {
    BuildOptions bo;
    bo.pipeline.clock = &RealClock::Instance();
    bo.pipeline.processes = &SystemProcesses();
    bo.pipeline.steps = &steps;
    bo.pipeline.vcs = &vcs;
    bo.pipeline.read_secret = ReadSecretRef;
    bo.pipeline.read_credential = BoundCredentials(store, ReadSecretRef);
    bo.pipeline.check_registry = RegistryPushCheck();
    bo.data_dir = DirNextToStore(store_path, "builds");
    service = std::make_unique<BuildService>(store, bo);
  }
};

int List(Context& ctx) {
  auto d = ReadDoc(ctx, "/v1/builds", [](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(auto list, s.ListBuilds(50));
    Doc out = Doc::array();
    for (const auto& b : list) out.push_back(BuildToJson(b));
    return Doc{{"builds", out}};
  });
  return PrintDoc(ctx, d, [](const Doc& doc) {
    for (const auto& b : doc["builds"]) PrintBuild(b);
  });
}

int Show(Context& ctx) {
  const int64_t id = ctx.a.number;
  auto d = ReadDoc(ctx, "/v1/builds/" + std::to_string(id), [id](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(BuildRecord b, s.GetBuild(id));
    Doc out = BuildToJson(b);
    Doc steps = Doc::array();
    SP_ASSIGN_OR_RETURN(auto records, s.BuildSteps(b.id));
    for (const auto& x : records) steps.push_back(BuildStepToJson(x));
    out["steps"] = steps;
    return out;
  });
  return PrintDoc(ctx, d, PrintBuild);
}

int Start(Context& ctx) {
  const Args& a = ctx.a;
  if (ctx.remote()) {
    auto api = ctx.Api();
    if (!api) return Fail(api.error());
    auto d = (*api)->Call("POST", "/v1/builds", Doc{{"project", a.project}, {"branch", a.branch}, {"sha", a.sha}}.dump());
    if (!d) return Fail(d.error());
    std::printf("%s\n", (*d)["build"].is_null() ? "this commit was built before: nothing started"
                                                : ("build " + (*d)["build"].dump() + " queued").c_str());
    return kExitOk;
  }
  auto store = ctx.Store();
  if (!store) return Fail(store.error());
  LocalBuilds local(**store, ctx.StorePath());
  auto made = local.service->Manual(a.project, a.branch, a.sha);
  if (!made) return Fail(made.error());
  if (!*made) std::printf("this commit was built before: nothing started\n");
  else std::printf("build %lld queued\n", static_cast<long long>((*made)->id));
  return kExitOk;
}

int Cancel(Context& ctx) {
  const int64_t id = ctx.a.number;
  if (ctx.remote()) {
    auto api = ctx.Api();
    if (!api) return Fail(api.error());
    if (auto d = (*api)->Call("POST", "/v1/builds/" + std::to_string(id) + "/cancel", "{}"); !d) return Fail(d.error());
    std::printf("build %lld: cancel requested\n", static_cast<long long>(id));
    return kExitOk;
  }
  auto store = ctx.Store();
  if (!store) return Fail(store.error());
  LocalBuilds local(**store, ctx.StorePath());
  if (auto st = local.service->Cancel(id); !st) return Fail(st.error());
  std::printf("build %lld canceled\n", static_cast<long long>(id));
  return kExitOk;
}

int Logs(Context& ctx) {
  const int64_t id = ctx.a.number;
  if (ctx.remote()) return StreamServerLog(ctx, "/v1/builds/" + std::to_string(id) + "/log", "build " + std::to_string(id));
  auto store = ctx.Store();
  if (!store) return Fail(store.error());
  if (auto b = (*store)->GetBuild(id); !b) return Fail(b.error());
  LocalBuilds local(**store, ctx.StorePath());
  return FollowLocalLog(ctx, local.service->LogPath(id), [&ctx, id] {
    auto b = ctx.Store().value()->GetBuild(id);
    return !b || (b->status != BuildStatus::kQueued && b->status != BuildStatus::kRunning);
  });
}

bool IsReference(const std::string& ref) { return StartsWith(ref, "file:/") || StartsWith(ref, "env:"); }

int ProjectAdd(Context& ctx) {
  const Args& a = ctx.a;
  if (!IsValidName(a.name)) return Fail({ErrorCode::kInvalidArgument, "--name: expected [a-z0-9][a-z0-9-]{0,62}"});
  if (!IsValidGitUrl(a.git_url)) {
    return Fail({ErrorCode::kInvalidArgument, "--git: invalid git URL '" + Printable(a.git_url) + "'"});
  }
  if (!a.webhook_secret.empty() && !IsReference(a.webhook_secret)) {
    return Fail({ErrorCode::kInvalidArgument, "--webhook-secret: a reference (file:/path or env:NAME), never the secret"});
  }
  if (!a.credential.empty() && !IsReference(a.credential)) {
    return Fail({ErrorCode::kInvalidArgument, "--credential: expected a reference, file:/path or env:NAME (never the value)"});
  }
  ProjectRecord p{a.name, a.git_url, a.webhook_secret, ctx.Now(), a.credential, a.known_hosts};
  if (auto st = CheckRemoteCredential(p); !st) return Fail(st.error());
  auto store = ctx.Store();
  if (!store) return Fail(store.error());
  if (auto st = (*store)->PutProject(p); !st) return Fail(st.error());
  std::printf("project %s: %s\n", a.name.c_str(), a.git_url.c_str());
  return kExitOk;
}

int ProjectList(Context& ctx) {
  auto d = ReadDoc(ctx, "/v1/projects", [](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(auto list, s.Projects());
    Doc out = Doc::array();
    for (const auto& p : list) out.push_back(ProjectToJson(p));
    return Doc{{"projects", out}};
  });
  return PrintDoc(ctx, d, [](const Doc& doc) {
    for (const auto& p : doc["projects"]) {
      const std::string cred = p.value("credential_ref", "");
      std::printf("%-20s %s%s%s\n", p.value("name", "").c_str(), p.value("git_url", "").c_str(),
                  p.value("webhook_secret_ref", "").empty() ? "" : "  (webhooks)",
                  cred.empty() ? "" : ("  (credential " + cred + ")").c_str());
    }
  });
}

// credential set PROJECT NAME (--file PATH | --env VAR | --helper NAME) (--host H | --deployment D)...:
// the admin binds a name a commit may use to a secret on the server, the
// registries it may be sent to and the deployments whose app env may hold it.
int CredentialSet(Context& ctx) {
  const Args& a = ctx.a;
  if (!IsValidCredentialName(a.name)) {
    return Fail({ErrorCode::kInvalidArgument, "credential name '" + Printable(a.name) +
                                                  "': letters, digits, '.', '_' and '-' (1-64)"});
  }
  if (!a.file.empty() + !a.env_name.empty() + !a.helper.empty() + !a.vault_ref.empty() != 1) {
    return Fail({ErrorCode::kInvalidArgument,
                 "give one of --file PATH, --env VAR (where the server reads it), --vault PATH[#KEY] (an Ansible Vault "
                 "value the server opens) or --helper NAME (a docker credential helper the server runs)"});
  }
  const std::string ref = !a.file.empty()       ? "file:" + a.file
                          : !a.env_name.empty() ? "env:" + a.env_name
                          : !a.vault_ref.empty() ? "vault:" + a.vault_ref
                                                 : "helper:" + a.helper;
  if (a.vault_ref.empty() ? !IsValidSecretRef(ref) : !IsValidVaultRef(ref)) {
    return Fail({ErrorCode::kInvalidArgument, "--file and --vault need an absolute path (--vault PATH#KEY: a key of "
                                              "letters, digits, '_', '.', '-'), --env a variable name, --helper a "
                                              "name of [a-z0-9-]"});
  }
  if (!a.helper.empty() && !a.deployments.empty()) {
    return Fail({ErrorCode::kInvalidArgument, "a credential helper gives registry credentials: --host only"});
  }
  if (!a.realm_hosts.empty() && a.hosts.empty()) {
    return Fail({ErrorCode::kInvalidArgument, "--realm-host goes with --host: the token realm of that registry"});
  }
  if (a.hosts.empty() && a.deployments.empty() && a.branches.empty()) {
    return Fail({ErrorCode::kInvalidArgument,
                 "give --host REGISTRY, --deployment NAME or --branch PATTERN: where it may be sent"});
  }
  if (!a.helper.empty() && !a.branches.empty()) {
    return Fail({ErrorCode::kInvalidArgument, "a credential helper gives registry credentials: --host only"});
  }
  std::vector<std::string> to;
  for (const auto& h : a.hosts) {
    if (!IsValidHostPort(h, /*port_required=*/false)) {
      return Fail({ErrorCode::kInvalidArgument, "--host '" + Printable(h) + "': a registry address (host[:port])"});
    }
    to.push_back(h);
  }
  for (const auto& h : a.realm_hosts) {
    if (!IsValidHostPort(h, /*port_required=*/false)) {
      return Fail({ErrorCode::kInvalidArgument, "--realm-host '" + Printable(h) + "': a host (host[:port])"});
    }
    to.push_back(CredentialBinding::kRealmPrefix + h);
  }
  for (const auto& d : a.deployments) {
    if (!IsValidName(d)) return Fail({ErrorCode::kInvalidArgument, "--deployment '" + Printable(d) + "': not a name"});
    to.push_back(CredentialBinding::kDeploymentPrefix + d);
  }
  for (const auto& b : a.branches) {
    if (auto st = CheckBranchPattern(b); !st) return Fail(st.error().Wrap("--branch '" + Printable(b) + "'"));
    to.push_back(CredentialBinding::kBranchPrefix + b);
  }
  auto store = ctx.Store();
  if (!store) return Fail(store.error());
  if (auto p = (*store)->Project(a.project); !p || !*p) {
    return Fail(p ? Error{ErrorCode::kNotFound, "no project " + a.project} : p.error());
  }
  CredentialBinding c{a.project, a.name, ref, to, ctx.Now()};
  if (auto st = (*store)->PutCredential(c); !st) return Fail(st.error());
  std::printf("credential %s of project %s: %s, for %zu registr%s, %zu deployment(s) and %zu branch pattern(s)\n",
              a.name.c_str(), a.project.c_str(), ref.c_str(), a.hosts.size(), a.hosts.size() == 1 ? "y" : "ies",
              a.deployments.size(), a.branches.size());
  return kExitOk;
}

int CredentialList(Context& ctx) {
  const std::string project = ctx.a.project;
  auto d = ReadDoc(ctx, "/v1/projects/" + UrlQuery(project) + "/credentials", [project](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(auto list, s.Credentials(project));
    Doc out = Doc::array();
    for (const auto& c : list) out.push_back(CredentialToJson(c));
    return Doc{{"credentials", out}};
  });
  return PrintDoc(ctx, d, [](const Doc& doc) {
    for (const auto& c : doc["credentials"]) {
      std::string hosts;
      for (const auto& h : c["hosts"]) hosts += (hosts.empty() ? "" : ",") + h.get<std::string>();
      for (const auto& d : c["deployments"]) hosts += (hosts.empty() ? "deployment:" : ",deployment:") + d.get<std::string>();
      for (const auto& b : c.value("branches", Doc::array())) hosts += (hosts.empty() ? "branch:" : ",branch:") + b.get<std::string>();
      std::printf("%-20s %-40s %s\n", c.value("name", "").c_str(), c.value("ref", "").c_str(), hosts.c_str());
    }
  });
}

int CredentialDelete(Context& ctx) {
  auto store = ctx.Store();
  if (!store) return Fail(store.error());
  if (auto st = (*store)->DeleteCredential(ctx.a.project, ctx.a.name); !st) return Fail(st.error());
  std::printf("credential %s of project %s deleted\n", ctx.a.name.c_str(), ctx.a.project.c_str());
  return kExitOk;
}

void Id(CLI::App& app, Args& a) { app.add_option("id", a.number, "Build id")->required(); }

}  // namespace

std::vector<Command> BuildCommands() {
  return {
      {{"build", "list"}, "Recent builds", Kind::kRead, Where::kEither, nullptr, List},
      {{"build", "show"}, "One build and its steps", Kind::kRead, Where::kEither, Id, Show},
      {{"build", "start"}, "Build a branch's head (or --sha) now", Kind::kWrite, Where::kEither,
       [](CLI::App& app, Args& a) {
         app.add_option("project", a.project, "Project")->required();
         app.add_option("branch", a.branch, "Branch")->required();
         app.add_option("--sha", a.sha, "The commit (default: the branch's head)");
       },
       Start},
      {{"build", "cancel"}, "Cancel a queued or running build", Kind::kWrite, Where::kEither, Id, Cancel},
      {{"build", "logs"}, "A build's log", Kind::kStream, Where::kEither,
       [](CLI::App& app, Args& a) {
         Id(app, a);
         app.add_flag("-f,--follow", a.follow, "Follow until the build ends");
       },
       Logs},
      {{"project", "add"}, "Add (or update) a project", Kind::kWrite, Where::kLocal,
       [](CLI::App& app, Args& a) {
         app.add_option("--name", a.name, "Project name")->required();
         app.add_option("--git", a.git_url, "Git remote (git://, http(s)://, ssh://, file://)")->required();
         app.add_option("--webhook-secret", a.webhook_secret,
                        "Secret reference for webhook signatures: file:/path or env:NAME (never the value)");
         app.add_option("--credential", a.credential,
                        "The remote's credential as a reference: an http(s) token (file:/path or env:NAME), or an ssh "
                        "deploy key (file:/path to the private key)");
         app.add_option("--known-hosts", a.known_hosts, "ssh remotes: the known_hosts file with the remote's host key");
       },
       ProjectAdd},
      {{"project", "list"}, "The watched repositories", Kind::kRead, Where::kEither, nullptr, ProjectList},
      {{"credential", "set"}, "Bind a credential a project's commits may name, and where it may go",
       Kind::kWrite, Where::kLocal,
       [](CLI::App& app, Args& a) {
         app.add_option("project", a.project, "Project")->required();
         app.add_option("name", a.name, "The name commits use: {credential: NAME}")->required();
         app.add_option("--file", a.file, "A file on the server holding the value (absolute path)");
         app.add_option("--env", a.env_name, "An environment variable of the server holding the value");
         app.add_option("--vault", a.vault_ref,
                        "An Ansible Vault value on the server: /path (a whole vault file) or /path#KEY (a top-level "
                        "key's !vault value, or a key of a whole-vault YAML file); opened with the server's vault "
                        "password");
         app.add_option("--helper", a.helper,
                        "A docker credential helper the server runs for the registry (docker-credential-NAME get)");
         app.add_option("--host", a.hosts, "A registry address (host[:port]) it may be sent to; repeat");
         app.add_option("--realm-host", a.realm_hosts,
                        "A token realm's host (besides the registry's own) its registry's challenge may send it to; "
                        "repeat");
         app.add_option("--deployment", a.deployments, "A deployment whose app env may hold it; repeat");
         app.add_option("--branch", a.branches,
                        "A branch pattern (branch rules' syntax) whose builds' steps may be given it (secrets:); repeat");
       },
       CredentialSet},
      {{"credential", "list"}, "A project's credential bindings (references and hosts, never values)", Kind::kRead,
       Where::kEither, [](CLI::App& app, Args& a) { app.add_option("project", a.project, "Project")->required(); },
       CredentialList},
      {{"credential", "delete"}, "Remove a credential binding", Kind::kWrite, Where::kLocal,
       [](CLI::App& app, Args& a) {
         app.add_option("project", a.project, "Project")->required();
         app.add_option("name", a.name, "Credential name")->required();
       },
       CredentialDelete},
  };
}

}  // namespace sp::cli
