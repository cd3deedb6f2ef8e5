#include "config/service_config.h"

#include <algorithm>

#include "config/branch_rules.h"
#include "config/yaml_util.h"
#include "core/file.h"

namespace sp {
namespace {

using yaml::Map;
using yaml::Reader;
using yaml::Val;

const std::vector<std::string> kTopKeys = {"version", "service", "stack", "image", "registry", "releases",
                                           "pipeline", "branches"};
const std::vector<std::string> kStepKeys = {"name", "kind", "run", "env", "timeout", "when", "secrets", "release"};
const std::vector<std::string> kBranchKeys = {"match", "deploy"};
const std::vector<std::string> kImageKeys = {"repository", "dockerfile", "context"};
const std::vector<std::string> kRegistryKeys = {"address", "username", "password", "insecure"};
const std::vector<std::string> kPasswordKeys = {"credential", "file", "env", "helper"};
const std::vector<std::string> kReleaseKeys = {"runtime", "port",         "command", "env",         "volumes",
                                               "health",  "smoke",        "stop_timeout", "strategy"};
const std::vector<std::string> kHealthKeys = {"path", "expected_status", "interval", "timeout", "retries"};
const std::vector<std::string> kStrategyKeys = {"batch", "max_failures", "drain_timeout", "ready_timeout",
                                                "keep_previous"};

// A path inside the repository: relative, without "..".
Result<std::string> AsRepoPath(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(std::string s, r.AsNonEmptyString(v));
  bool escapes = false;
  for (const std::string& part : Split(s, '/')) escapes |= part == "..";
  if (s[0] == '/' || escapes) {
    return Err(r.Fail(v, "expected a path relative to the repository root without '..', got '" + s + "'"));
  }
  return s;
}

Result<std::string> AsImageRepository(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(std::string s, r.AsNonEmptyString(v));
  const size_t slash = s.rfind('/');
  const std::string last = slash == std::string::npos ? s : s.substr(slash + 1);
  if (s.find('@') != std::string::npos || last.find(':') != std::string::npos) {
    return Err(r.Fail(v, "'" + s + "' has a tag or digest; give the repository only (e.g. 127.0.0.1:5000/hello)"));
  }
  if (!IsValidImageRef(s)) {
    return Err(r.Fail(v, "invalid image repository '" + s + "' (expected e.g. 127.0.0.1:5000/hello)"));
  }
  return s;
}

// password: {credential: NAME} | {file: /abs/path} | {env: NAME} ->
// "credential:NAME" | "file:/abs/path" | "env:NAME". Also an env value's.
Result<std::string> AsSecretRef(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kPasswordKeys));
  if (m.entries.size() != 1) {
    return Err(r.Fail(v, "set exactly one of 'credential' (a name the server's admin bound), 'file', 'env' or "
                         "'helper' (local runs only)"));
  }
  if (const Val* c = m.Get("credential")) {
    SP_ASSIGN_OR_RETURN(std::string name, r.AsString(*c));
    if (!IsValidCredentialName(name)) {
      return Err(r.Fail(*c, "invalid credential name '" + name + "' (letters, digits, '.', '_' and '-', 1-64)"));
    }
    return "credential:" + name;
  }
  if (const Val* f = m.Get("file")) {
    SP_ASSIGN_OR_RETURN(std::string path, r.AsAbsolutePath(*f));
    return "file:" + path;
  }
  if (const Val* h = m.Get("helper")) {
    SP_ASSIGN_OR_RETURN(std::string name, r.AsString(*h));
    if (!IsValidHelperName(name)) {
      return Err(r.Fail(*h, "invalid credential helper name '" + name + "' ([a-z0-9-]: docker-credential-<name>)"));
    }
    return "helper:" + name;
  }
  const Val& e = *m.Get("env");
  SP_ASSIGN_OR_RETURN(std::string name, r.AsString(e));
  if (!IsValidEnvName(name)) {
    return Err(r.Fail(e, "invalid environment variable name '" + name + "'"));
  }
  return "env:" + name;
}

// A release's env: NAME: value, or NAME: {credential: NAME} (a value the
// agent fetches when the app starts; {file}/{env} for local runs only).
Status AsReleaseEnv(const Reader& r, const Val& v, ReleaseSpec& rel) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v));
  for (const auto& [k, val] : m.entries) {
    if (!IsValidEnvName(k)) {
      return Err(r.Fail(val, "invalid environment variable name '" + k +
                                 "' (expected letters, digits and '_', not starting with a digit)"));
    }
    if (val.node.IsMap()) {
      SP_ASSIGN_OR_RETURN(rel.env_refs[k], AsSecretRef(r, val));
      if (StartsWith(rel.env_refs[k], "helper:")) {
        return Err(r.Fail(val, "a credential helper gives registry credentials only, not env values"));
      }
    } else {
      SP_ASSIGN_OR_RETURN(rel.env[k], r.AsSafeString(val));
    }
  }
  return Ok();
}

Result<RegistrySpec> ParseRegistry(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kRegistryKeys));
  RegistrySpec reg;
  const Val* address = m.Get("address");
  if (!address) return Err(r.Missing(m, "address", " (e.g. address: 127.0.0.1:5000)"));
  SP_ASSIGN_OR_RETURN(reg.address, r.AsHostPort(*address, /*port_required=*/false));
  const Val* user = m.Get("username");
  const Val* password = m.Get("password");
  if (user) { SP_ASSIGN_OR_RETURN(reg.username, r.AsNonEmptyString(*user)); }
  if (password && password->node.IsScalar()) {
    return Err(r.Fail(*password, "a literal password is not allowed: secrets stay out of config "
                                 "(use password: {credential: NAME}, bound by the server's admin)"));
  }
  if (password) { SP_ASSIGN_OR_RETURN(reg.password_ref, AsSecretRef(r, *password)); }
  if (user && !password) return Err(r.Missing(m, "password", " (username is set)"));
  if (password && !user) return Err(r.Missing(m, "username", " (password is set)"));
  if (const Val* insecure = m.Get("insecure")) { SP_ASSIGN_OR_RETURN(reg.insecure, r.AsBool(*insecure)); }
  return reg;
}

Result<std::string> AsVolume(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(std::string s, r.AsNonEmptyString(v));
  if (!IsValidVolume(s)) {
    return Err(r.Fail(v, "invalid volume '" + s + "' (expected /host/path:/container/path with an optional :ro or :rw)"));
  }
  return s;
}

Result<HealthCheckSpec> ParseHealth(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kHealthKeys));
  HealthCheckSpec h;
  if (const Val* p = m.Get("path")) {
    SP_ASSIGN_OR_RETURN(h.path, r.AsSafeString(*p));
    if (!IsValidHealthPath(h.path)) {
      return Err(r.Fail(*p, "expected a URL path starting with '/', got '" + h.path + "'"));
    }
  }
  if (const Val* s = m.Get("expected_status")) { SP_ASSIGN_OR_RETURN(h.expected_status, r.AsInt(*s, 100, 599)); }
  if (const Val* i = m.Get("interval")) { SP_ASSIGN_OR_RETURN(h.interval, r.AsDuration(*i)); }
  if (const Val* t = m.Get("timeout")) {
    SP_ASSIGN_OR_RETURN(h.timeout, r.AsDuration(*t));
    if (h.timeout.count() <= 0) return Err(r.Fail(*t, "must be longer than 0"));
  }
  if (const Val* n = m.Get("retries")) { SP_ASSIGN_OR_RETURN(h.retries, r.AsInt(*n, 1, 1'000'000)); }
  return h;
}

Result<StrategySpec> ParseStrategy(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kStrategyKeys));
  StrategySpec s;
  if (const Val* b = m.Get("batch")) {
    SP_ASSIGN_OR_RETURN(s.batch, r.AsCountOrPercent(*b));
    if (s.batch.value < 1) return Err(r.Fail(*b, "batch must be at least 1 (or 1%)"));
  }
  if (const Val* f = m.Get("max_failures")) { SP_ASSIGN_OR_RETURN(s.max_failures, r.AsCountOrPercent(*f)); }
  if (const Val* d = m.Get("drain_timeout")) { SP_ASSIGN_OR_RETURN(s.drain_timeout, r.AsDuration(*d)); }
  if (const Val* t = m.Get("ready_timeout")) {
    SP_ASSIGN_OR_RETURN(s.ready_timeout, r.AsDuration(*t));
    if (s.ready_timeout.count() <= 0) return Err(r.Fail(*t, "must be longer than 0"));
  }
  if (const Val* k = m.Get("keep_previous")) { SP_ASSIGN_OR_RETURN(s.keep_previous, r.AsInt(*k, 1, kMaxKeepPrevious)); }
  return s;
}

Result<ReleaseSpec> ParseRelease(const Reader& r, const std::string& name, const Val& v) {
  SP_ASSIGN_OR_RETURN(Map m, r.AsMap(v, kReleaseKeys));
  ReleaseSpec rel;
  rel.name = name;
  if (const Val* rt = m.Get("runtime")) {
    SP_ASSIGN_OR_RETURN(rel.runtime, r.AsString(*rt));
    if (rel.runtime != "docker" && rel.runtime != "process") {
      return Err(r.Fail(*rt, "expected 'docker' or 'process', got '" + rel.runtime + "'"));
    }
  }
  if (const Val* p = m.Get("port")) { SP_ASSIGN_OR_RETURN(rel.port, r.AsPort(*p)); }
  if (const Val* c = m.Get("command")) { SP_ASSIGN_OR_RETURN(rel.command, r.AsStringList(*c)); }
  if (const Val* e = m.Get("env")) SP_TRY(AsReleaseEnv(r, *e, rel));
  if (const Val* vols = m.Get("volumes")) {
    SP_ASSIGN_OR_RETURN(std::vector<Val> items, r.AsList(*vols));
    if (rel.runtime != "docker" && !items.empty()) {
      return Err(r.Fail(*vols, "volumes need runtime: docker (this release uses runtime: " + rel.runtime + ")"));
    }
    for (const Val& item : items) {
      SP_ASSIGN_OR_RETURN(std::string vol, AsVolume(r, item));
      rel.volumes.push_back(std::move(vol));
    }
  }
  if (const Val* h = m.Get("health")) { SP_ASSIGN_OR_RETURN(rel.health, ParseHealth(r, *h)); }
  if (const Val* s = m.Get("smoke")) {
    SP_ASSIGN_OR_RETURN(rel.smoke, r.AsStringList(*s));
    if (rel.smoke.empty() || rel.smoke[0].empty()) {
      return Err(r.Fail(*s, "expected a command as a non-empty list, e.g. [/usr/bin/curl, -fsS, http://127.0.0.1:8080/]"));
    }
  }
  if (const Val* t = m.Get("stop_timeout")) { SP_ASSIGN_OR_RETURN(rel.stop_timeout, r.AsDuration(*t)); }
  if (const Val* s = m.Get("strategy")) { SP_ASSIGN_OR_RETURN(rel.strategy, ParseStrategy(r, *s)); }
  return rel;
}

}  // namespace

Result<std::string> AsBranchPattern(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(std::string p, r.AsNonEmptyString(v));
  if (auto ok = CheckBranchPattern(p); !ok) return Err(r.Fail(v, ok.error().message));
  return p;
}

Result<std::vector<PipelineStep>> ParsePipeline(const Reader& r, const Val& v, const ServiceConfig& cfg) {
  SP_ASSIGN_OR_RETURN(std::vector<Val> items, r.AsList(v));
  std::vector<PipelineStep> steps;
  std::map<std::string, int> first_line;
  for (const Val& item : items) {
    SP_ASSIGN_OR_RETURN(Map m, r.AsMap(item, kStepKeys));
    PipelineStep st;
    const Val* name = m.Get("name");
    if (!name) return Err(r.Missing(m, "name", " (e.g. name: unit-tests)"));
    SP_ASSIGN_OR_RETURN(st.name, r.AsName(*name));
    auto [it, fresh] = first_line.emplace(st.name, name->line);
    if (!fresh) {
      return Err(r.Fail(*name, "step '" + st.name + "' twice (lines " + std::to_string(it->second) + " and " +
                                   std::to_string(name->line) + ")"));
    }
    if (const Val* k = m.Get("kind")) {
      SP_ASSIGN_OR_RETURN(st.kind, r.AsString(*k));
      if (st.kind != "command" && st.kind != "image" && st.kind != "push" && st.kind != "deploy") {
        return Err(r.Fail(*k, "unknown step kind '" + st.kind + "' (expected command, image, push or deploy)"));
      }
    }
    const Val* run = m.Get("run");
    if (st.kind == "command") {
      if (!run) return Err(r.Missing(m, "run", " (an argv list, e.g. run: [make, test])"));
      SP_ASSIGN_OR_RETURN(st.run, r.AsStringList(*run));
      if (st.run.empty()) return Err(r.Fail(*run, "an empty command"));
    } else if (run) {
      return Err(r.Fail(*run, "a step of kind " + st.kind + " runs no command"));
    }
    if (const Val* e = m.Get("env")) { SP_ASSIGN_OR_RETURN(st.env, r.AsEnv(*e)); }
    if (const Val* t = m.Get("timeout")) {
      SP_ASSIGN_OR_RETURN(st.timeout, r.AsDuration(*t));
      if (st.timeout.count() <= 0) return Err(r.Fail(*t, "must be greater than 0"));
    }
    if (const Val* w = m.Get("when")) {
      SP_ASSIGN_OR_RETURN(std::vector<Val> pats, r.AsList(*w));
      for (const Val& pv : pats) {
        SP_ASSIGN_OR_RETURN(std::string p, AsBranchPattern(r, pv));
        st.when.push_back(p);
      }
    }
    if (const Val* sv = m.Get("secrets")) {
      SP_ASSIGN_OR_RETURN(st.secrets, r.AsStringList(*sv));
      for (const auto& n : st.secrets) {
        if (!IsValidEnvName(n)) return Err(r.Fail(*sv, "secret '" + n + "' is not a valid environment variable name"));
      }
    }
    if (const Val* rel = m.Get("release")) {
      if (st.kind != "deploy") return Err(r.Fail(*rel, "only a deploy step names a release"));
      SP_ASSIGN_OR_RETURN(st.release, r.AsName(*rel));
      if (!cfg.releases.count(st.release)) {
        return Err(r.Fail(*rel, "no release '" + st.release + "' in this file"));
      }
    } else if (st.kind == "deploy") {
      if (cfg.releases.size() != 1) {
        return Err(r.Missing(m, "release", " (this file has several releases: name the one to deploy)"));
      }
      st.release = cfg.releases.begin()->first;
    }
    if ((st.kind == "image" || st.kind == "push") && cfg.image_repository.empty()) {
      return Err(r.Fail(item, "a step of kind " + st.kind + " needs image.repository"));
    }
    steps.push_back(std::move(st));
  }
  return steps;
}

Result<std::vector<BranchRule>> ParseBranches(const Reader& r, const Val& v) {
  SP_ASSIGN_OR_RETURN(std::vector<Val> items, r.AsList(v));
  std::vector<BranchRule> rules;
  for (const Val& item : items) {
    SP_ASSIGN_OR_RETURN(Map m, r.AsMap(item, kBranchKeys));
    BranchRule rule;
    const Val* match = m.Get("match");
    if (!match) return Err(r.Missing(m, "match", " (a branch pattern, e.g. match: \"remote-run/{user}/*\")"));
    SP_ASSIGN_OR_RETURN(rule.match, AsBranchPattern(r, *match));
    if (const Val* d = m.Get("deploy")) {
      SP_ASSIGN_OR_RETURN(rule.deploy, r.AsNonEmptyString(*d));
      std::string probe = rule.deploy;
      if (size_t at = probe.find("{user}"); at != std::string::npos) {
        if (rule.match.find("{user}") == std::string::npos) {
          return Err(r.Fail(*d, "{user} in deploy needs {user} in match"));
        }
        probe.replace(at, 6, "u");
      }
      if (!IsValidName(probe)) return Err(r.Fail(*d, "expected a deployment name (may contain {user}), got '" + rule.deploy + "'"));
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

bool IsValidVolume(std::string_view s) {
  const std::vector<std::string> parts = Split(s, ':');
  return IsSafeValue(s) && (parts.size() == 2 || parts.size() == 3) && !parts[0].empty() && parts[0][0] == '/' &&
         !parts[1].empty() && parts[1][0] == '/' && (parts.size() == 2 || parts[2] == "ro" || parts[2] == "rw");
}

bool IsValidHealthPath(std::string_view s) {
  return !s.empty() && s[0] == '/' && IsSafeValue(s) && s.find_first_of(" \t") == std::string_view::npos;
}

bool IsValidCredentialName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

std::string HelperRefFor(const std::string& ref, const std::string& server) { return ref + "@" + server; }

bool IsValidHelperName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool IsValidSecretRef(std::string_view s) {
  if (StartsWith(s, "credential:")) {
    // A plan pins a stored secret's version: credential:NAME@V.
    const std::string_view name = s.substr(11), version = name.substr(std::min(name.find('@'), name.size()));
    return IsValidCredentialName(name.substr(0, name.size() - version.size())) &&
           (version.empty() || (version.size() >= 2 && version.size() <= 19 &&
                                std::all_of(version.begin() + 1, version.end(), [](char c) { return c >= '0' && c <= '9'; })));
  }
  if (StartsWith(s, "helper:")) return IsValidHelperName(s.substr(7));
  if (StartsWith(s, "env:")) return IsValidEnvName(s.substr(4));
  if (!StartsWith(s, "file:") || !IsSafeValue(s)) return false;
  const std::string_view path = s.substr(5);
  return !path.empty() && path[0] == '/';
}

Status CheckCommitSecrets(const ServiceConfig& cfg) {
  auto refuse = [&](const std::string& field, const std::string& ref) {
    return Err(ErrorCode::kPermissionDenied,
               cfg.file + ": " + field + ": {" + ref.substr(0, ref.find(':')) +
                   "} is for local runs only: a commit names a credential the server's admin bound "
                   "({credential: NAME}; `sallyport credential set`)");
  };
  const std::string& ref = cfg.registry.password_ref;
  if (!ref.empty() && !StartsWith(ref, "credential:")) return refuse("registry.password", ref);
  for (const auto& [name, rel] : cfg.releases) {
    for (const auto& [k, r] : rel.env_refs) {
      if (!StartsWith(r, "credential:")) return refuse("releases." + name + ".env." + k, r);
    }
  }
  return Ok();
}

Result<ServiceConfig> ParseServiceConfig(const std::string& yaml_text, const std::string& file_name) {
  const Reader r(file_name);
  try {
    SP_ASSIGN_OR_RETURN(Map top, r.LoadTop(yaml_text, kTopKeys));
    ServiceConfig cfg;
    cfg.file = file_name;

    const Val* service = top.Get("service");
    if (!service) return Err(r.Missing(top, "service", " (the service name, e.g. service: hello)"));
    SP_ASSIGN_OR_RETURN(cfg.service, r.AsName(*service));
    const Val* stack = top.Get("stack");
    if (!stack) return Err(r.Missing(top, "stack", " (the inventory stack this service deploys to)"));
    SP_ASSIGN_OR_RETURN(cfg.stack, r.AsName(*stack));

    std::optional<Map> image;
    if (const Val* i = top.Get("image")) {
      SP_ASSIGN_OR_RETURN(image, r.AsMap(*i, kImageKeys));
      if (const Val* repo = image->Get("repository")) {
        SP_ASSIGN_OR_RETURN(cfg.image_repository, AsImageRepository(r, *repo));
      }
      if (const Val* d = image->Get("dockerfile")) { SP_ASSIGN_OR_RETURN(cfg.image_dockerfile, AsRepoPath(r, *d)); }
      if (const Val* c = image->Get("context")) { SP_ASSIGN_OR_RETURN(cfg.image_context, AsRepoPath(r, *c)); }
    }
    if (const Val* reg = top.Get("registry")) { SP_ASSIGN_OR_RETURN(cfg.registry, ParseRegistry(r, *reg)); }

    const Val* releases = top.Get("releases");
    if (!releases) return Err(r.Missing(top, "releases", " (at least one release, e.g. releases: {web: {port: 8080}})"));
    SP_ASSIGN_OR_RETURN(Map rels, r.AsMap(*releases));
    if (rels.entries.empty()) return Err(r.Fail(*releases, "at least one release is required"));
    for (const auto& [name, val] : rels.entries) {
      SP_TRY(r.CheckName(val, name));
      SP_ASSIGN_OR_RETURN(ReleaseSpec rel, ParseRelease(r, name, val));
      if (rel.runtime == "docker" && cfg.image_repository.empty()) {
        const std::string hint = " (release '" + name + "' uses runtime: docker)";
        if (image) return Err(r.Missing(*image, "repository", hint));
        return Err(r.Fail(top.self.line, "image.repository", "missing required field" + hint));
      }
      cfg.releases.emplace(name, std::move(rel));
    }
    if (const Val* p = top.Get("pipeline")) { SP_ASSIGN_OR_RETURN(cfg.pipeline, ParsePipeline(r, *p, cfg)); }
    if (const Val* b = top.Get("branches")) { SP_ASSIGN_OR_RETURN(cfg.branches, ParseBranches(r, *b)); }
    return cfg;
  } catch (const std::exception& e) {  // yaml-cpp throws on misuse; never let it escape.
    return Err(ErrorCode::kInternal, file_name + ": unexpected error reading config: " + e.what());
  }
}

Result<ServiceConfig> LoadServiceConfig(const std::string& path) {
  SP_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  return ParseServiceConfig(text, path);
}

}  // namespace sp
