#include "runtime/docker/docker_runtime.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

#include "core/text.h"

namespace sp {

namespace {

constexpr std::string_view kRedacted = "<redacted>";

// Replaces every occurrence of each secret in `text`. Very short values are
// skipped: masking "1" everywhere would make messages unreadable and protects
// nothing.
std::string Scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (s.size() < 4) continue;
    size_t pos = 0;
    while ((pos = text.find(s, pos)) != std::string::npos) {
      text.replace(pos, s.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
  return text;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : 99;
    if (extra == 99 || i + extra >= s.size() + (extra == 0 ? 1 : 0)) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += extra + 1;
  }
  return true;
}

int64_t CeilSeconds(Millis d) { return (std::max<int64_t>(0, d.count()) + 999) / 1000; }
std::string SecondsCeil(Millis d) { return std::to_string(CeilSeconds(d)); }

ErrorCode CodeFor(const ExitStatus& st) { return st.timed_out ? ErrorCode::kTimeout : ErrorCode::kUnavailable; }

bool Mentions(const ExitStatus& st, std::string_view needle) {
  return st.err.find(needle) != std::string::npos || st.out.find(needle) != std::string::npos;
}

}  // namespace

DockerRuntime::DockerRuntime(Transport& transport, DockerOptions options, Clock& clock)
    : transport_(transport), options_(std::move(options)), clock_(clock), api_socket_(ApiSocketPath(options_)) {}

std::string DockerRuntime::ContainerName(const RuntimeTarget& t, const std::string& rollout_id) {
  std::string name = "sp-" + t.release + "-" + t.deployment + "-" + t.host.name + "-" + rollout_id;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') c = '_';
  }
  return name;
}

std::vector<std::string> DockerRuntime::DockerArgv(const std::vector<std::string>& args,
                                                   const std::string& config_dir) const {
  std::vector<std::string> argv{options_.docker_bin};
  if (!config_dir.empty()) {
    argv.push_back("--config");
    argv.push_back(config_dir);
  }
  if (!options_.docker_host.empty()) {
    argv.push_back("-H");
    argv.push_back(options_.docker_host);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Result<ExitStatus> DockerRuntime::Exec(const HostRef& host, std::vector<std::string> argv, std::string stdin_data,
                                       std::optional<Millis> timeout) {
  CommandSpec spec;
  spec.argv = std::move(argv);
  spec.stdin_data = std::move(stdin_data);
  spec.timeout = std::max(options_.command_timeout, timeout.value_or(Millis(0)));
  auto r = transport_.Run(host, spec);
  if (!r) return Err(r.error().Wrap("on " + host.name));
  return r;
}

Result<std::string> DockerRuntime::MakeTempDir(const HostRef& host) {
  SP_ASSIGN_OR_RETURN(ExitStatus st, Exec(host, {"mktemp", "-d", "-t", "sp-docker.XXXXXXXXXX"}));
  std::string dir = Trim(st.out);
  if (!st.ok() || dir.empty() || dir[0] != '/' || dir.find('\n') != std::string::npos) {
    return Err(CodeFor(st), "mktemp on " + host.name + ": " + st.Describe());
  }
  return dir;
}

Status DockerRuntime::RemoveDir(const HostRef& host, const std::string& dir) {
  SP_ASSIGN_OR_RETURN(ExitStatus st, Exec(host, {"rm", "-rf", "--", dir}));
  if (!st.ok()) return Err(CodeFor(st), "rm -rf " + dir + " on " + host.name + ": " + st.Describe());
  return Ok();
}

Result<ExitStatus> DockerRuntime::MustRun(const HostRef& host, const std::vector<std::string>& args,
                                          const std::string& what) {
  SP_ASSIGN_OR_RETURN(ExitStatus st, Exec(host, DockerArgv(args)));
  if (!st.ok()) return Err(CodeFor(st), what + ": " + st.Describe());
  return st;
}

std::string DockerRuntime::ApiSocketPath(const DockerOptions& options) {
  if (!options.use_api) return "";
  if (options.docker_host.empty()) return "/var/run/docker.sock";
  constexpr std::string_view kUnix = "unix://";
  if (StartsWith(options.docker_host, kUnix)) {
    std::string path = options.docker_host.substr(kUnix.size());
    if (!path.empty() && path[0] == '/') return path;
  }
  return "";  // tcp://, ssh://, fd://: the CLI knows how to reach those.
}

Result<std::optional<ApiResponse>> DockerRuntime::Api(const HostRef& host, const std::string& method,
                                                      const std::string& target, Millis timeout,
                                                      const std::string& body,
                                                      const std::vector<std::string>& headers,
                                                      const std::function<void(std::string_view)>& on_line) {
  if (api_socket_.empty()) return std::optional<ApiResponse>();
  // Names and image references come from plans and listings: never let one
  // change the request's shape (query, fragment, whitespace).
  for (char c : target) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::string_view("/_.:@?=&%-").find(c) == std::string_view::npos) {
      return Err(ErrorCode::kInvalidArgument, "docker API: refusing a request for '" + target + "'");
    }
  }
  {
    std::lock_guard lk(mu_);
    if (cli_only_.count(host.address) > 0) return std::optional<ApiResponse>();
  }
  auto socket = transport_.UnixSocket(host, api_socket_);
  Result<ApiResponse> r =
      socket ? DockerApiCall(*socket, method, target, body, headers, timeout, on_line) : Err(socket.error());
  if (r) return std::optional<ApiResponse>(std::move(*r));
  // Sent, but no answer in time: the engine may be acting on it; running it
  // again through the CLI would only wait twice.
  if (r.error().code == ErrorCode::kTimeout) return Err(r.error().Wrap("on " + host.name));
  std::lock_guard lk(mu_);
  cli_only_.insert(host.address);
  return std::optional<ApiResponse>();
}

Status DockerRuntime::ForceRemove(const HostRef& host, const std::string& name, const std::string& what) {
  SP_ASSIGN_OR_RETURN(auto api, Api(host, "DELETE", "/containers/" + name + "?force=1", options_.command_timeout));
  if (api) return Expect(*api, {200, 204, 404}, what);  // 404: already gone.
  SP_ASSIGN_OR_RETURN(ExitStatus st, Exec(host, DockerArgv({"rm", "-f", name})));
  if (st.ok() || (!st.timed_out && Mentions(st, "No such container"))) return Ok();  // Already gone.
  return Err(CodeFor(st), what + ": " + st.Describe());
}

namespace {

// The registry to log in to with `auth`, or why its credentials cannot be used.
Result<std::string> LoginRegistry(const AppSpec& app, const RegistryAuth& auth, const std::string& what) {
  const std::string registry = auth.address.empty() ? ImageRegistry(app.artifact) : auth.address;
  if (registry.empty() || !IsSafeValue(registry) || registry[0] == '-') {
    return Err(ErrorCode::kInvalidArgument, what + ": no registry address to log in to");
  }
  if (auth.username.empty() || !IsSafeValue(auth.username) || auth.username[0] == '-') {
    return Err(ErrorCode::kInvalidArgument, what + ": invalid registry username");
  }
  if (auth.password.empty()) return Err(ErrorCode::kInvalidArgument, what + ": empty registry password");
  return registry;
}

// The image and its tag (or digest) as the Engine API's create takes them.
std::pair<std::string, std::string> ImageAndTag(std::string image) {
  std::string tag = "latest";
  if (size_t at = image.find('@'); at != std::string::npos) {
    tag = image.substr(at + 1);
    image.resize(at);
  } else if (size_t colon = image.rfind(':'); colon != std::string::npos && image.find('/', colon) == std::string::npos) {
    tag = image.substr(colon + 1);
    image.resize(colon);
  }
  return {image, tag};
}

// The Engine API's credentials for one request (never on the host's disk).
std::string AuthHeader(const RegistryAuth& auth, const std::string& registry) {
  const nlohmann::json cfg = {{"username", auth.username}, {"password", auth.password}, {"serveraddress", registry}};
  return "X-Registry-Auth: " + Base64(cfg.dump(), /*url=*/true);
}

}  // namespace

Status DockerRuntime::CheckPull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) {
  const std::string what = "its engine resolving " + app.artifact;
  if (!IsValidImageRef(app.artifact)) return Err(ErrorCode::kInvalidArgument, what + ": not a valid image reference");
  std::vector<std::string> headers, secrets;
  if (auth) {
    secrets.push_back(auth->password);
    SP_ASSIGN_OR_RETURN(std::string registry, LoginRegistry(app, *auth, what));
    headers.push_back(AuthHeader(*auth, registry));
  }
  SP_ASSIGN_OR_RETURN(auto api, Api(t.host, "GET", "/distribution/" + app.artifact + "/json", options_.command_timeout,
                                    "", headers));
  if (!api || api->status == 200) return Ok();  // No API on this host: a pull will tell.
  const ErrorCode code = api->status == 401 || api->status == 403 ? ErrorCode::kPermissionDenied
                         : api->status == 404                      ? ErrorCode::kNotFound
                                                                   : ErrorCode::kUnavailable;
  return Err(code, Scrub(what + ": " + api->Message(), secrets));
}

Status DockerRuntime::Pull(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth) {
  const std::string what = "pull " + app.artifact;
  if (!IsValidImageRef(app.artifact)) return Err(ErrorCode::kInvalidArgument, what + ": not a valid image reference");
  std::vector<std::string> secrets;
  std::string registry;
  if (auth) {
    secrets.push_back(auth->password);
    SP_ASSIGN_OR_RETURN(registry, LoginRegistry(app, *auth, what));
  }
  SP_ASSIGN_OR_RETURN(std::optional<Status> api, PullWithApi(t, app, auth, registry, secrets));
  if (api) return *api;
  return PullWithCli(t, app, auth, registry, secrets);
}

Result<std::optional<Status>> DockerRuntime::PullWithApi(const RuntimeTarget& t, const AppSpec& app,
                                                         const std::optional<RegistryAuth>& auth,
                                                         const std::string& registry,
                                                         const std::vector<std::string>& secrets) {
  const std::string what = "pull " + app.artifact;
  auto [image, tag] = ImageAndTag(app.artifact);
  std::vector<std::string> headers;
  if (auth) headers.push_back(AuthHeader(*auth, registry));
  // 200 only means the pull began: a failure later on is an "error" line of
  // the progress stream, which is read as it arrives (a big image's progress
  // is long).
  std::string failure;
  auto on_line = [&failure](std::string_view line) {
    if (!failure.empty() || line.find("\"error\"") == std::string_view::npos) return;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("error")) {
      failure = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
    }
  };
  SP_ASSIGN_OR_RETURN(auto api, Api(t.host, "POST", "/images/create?fromImage=" + UrlEncode(image) +
                                                       "&tag=" + UrlEncode(tag),
                                    options_.command_timeout, "", headers, on_line));
  if (!api) return std::optional<Status>();
  Status st = Expect(*api, {200}, what);
  if (st && !failure.empty()) st = Err(ErrorCode::kUnavailable, what + ": " + failure);
  if (!st) return std::optional<Status>(Err(st.error().code, Scrub(st.error().message, secrets)));
  return std::optional<Status>(Ok());
}

Status DockerRuntime::PullWithCli(const RuntimeTarget& t, const AppSpec& app, const std::optional<RegistryAuth>& auth,
                                  const std::string& registry, const std::vector<std::string>& secrets) {
  const std::string what = "pull " + app.artifact;
  if (!auth) {
    SP_TRY(MustRun(t.host, {"pull", app.artifact}, what));
    return Ok();
  }
  SP_ASSIGN_OR_RETURN(std::string config_dir, MakeTempDir(t.host));
  // Everything between mktemp and rm -rf: the result is decided here, the
  // directory is removed below whatever happened.
  auto login_and_pull = [&]() -> Status {
    SP_ASSIGN_OR_RETURN(
        ExitStatus login,
        Exec(t.host, DockerArgv({"login", "--username", auth->username, "--password-stdin", registry}, config_dir),
             auth->password));
    if (!login.ok()) {
      return Err(CodeFor(login),
                 Scrub(what + ": login to " + registry + " as " + auth->username + ": " + login.Describe(), secrets));
    }
    SP_ASSIGN_OR_RETURN(ExitStatus pull, Exec(t.host, DockerArgv({"pull", app.artifact}, config_dir)));
    // Logout also clears a credential helper the host may have configured as
    // default store; with a plain config.json it just edits the file.
    auto logout = Exec(t.host, DockerArgv({"logout", registry}, config_dir));
    if (!pull.ok()) return Err(CodeFor(pull), Scrub(what + ": " + pull.Describe(), secrets));
    if (!logout) return Err(logout.error());
    if (!logout->ok()) return Err(CodeFor(*logout), Scrub("logout " + registry + ": " + logout->Describe(), secrets));
    return Ok();
  };
  Status result = login_and_pull();
  Status cleanup = RemoveDir(t.host, config_dir);
  if (!cleanup) {
    std::string msg = what + ": credentials directory not removed: " + cleanup.error().message;
    if (!result) msg = result.error().message + "; also " + msg;
    return Err(ErrorCode::kInternal, Scrub(msg, secrets));
  }
  return result;
}

Result<bool> DockerRuntime::HasArtifact(const RuntimeTarget& t, const AppSpec& app) {
  if (!IsValidImageRef(app.artifact)) {
    return Err(ErrorCode::kInvalidArgument, "inspect " + app.artifact + ": not a valid image reference");
  }
  SP_ASSIGN_OR_RETURN(auto api, Api(t.host, "GET", "/images/" + app.artifact + "/json", options_.command_timeout));
  if (api) {
    if (api->status == 200) return true;
    if (api->status == 404) return false;
    return Err(ErrorCode::kUnavailable, "inspect " + app.artifact + ": " + api->Message());
  }
  SP_ASSIGN_OR_RETURN(ExitStatus st,
                      Exec(t.host, DockerArgv({"image", "inspect", "--format", "{{.Id}}", app.artifact})));
  if (st.ok()) return true;
  if (!st.timed_out && Mentions(st, "No such image")) return false;
  return Err(CodeFor(st), "inspect " + app.artifact + ": " + st.Describe());
}

namespace {

// One container as List reports it, from its name, the engine's state word
// and an object holding its sallyport.* labels by name.
Instance InstanceOf(std::string name, const std::string& state, const nlohmann::json& labels) {
  Instance inst;
  inst.id = std::move(name);
  // As `docker inspect`'s State.Running: a paused or restarting container still runs.
  inst.running = state == "running" || state == "restarting" || state == "paused";
  inst.rollout_id = labels.value(kLabelRollout, "");
  inst.version = labels.value(kLabelVersion, "");
  inst.artifact = labels.value(kLabelArtifact, "");
  inst.created_ms = std::strtoll(labels.value(kLabelCreatedMs, "0").c_str(), nullptr, 10);
  return inst;
}

// Oldest first: by the created_ms label, then the engine's creation time, then name.
std::vector<Instance> Ordered(std::vector<std::tuple<int64_t, std::string, Instance>> rows) {
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a), std::get<2>(a).id) <
           std::tie(std::get<0>(b), std::get<1>(b), std::get<2>(b).id);
  });
  std::vector<Instance> out;
  for (auto& r : rows) out.push_back(std::move(std::get<2>(r)));
  return out;
}

}  // namespace

std::string DockerRuntime::OwnFilters(const RuntimeTarget& t) {
  const nlohmann::json filters = {{"label",
                                   {std::string(kLabelRelease) + "=" + t.release,
                                    std::string(kLabelDeployment) + "=" + t.deployment,
                                    std::string(kLabelHost) + "=" + t.host.name}}};
  return UrlEncode(filters.dump());
}

Result<std::vector<Instance>> DockerRuntime::List(const RuntimeTarget& t) {
  const std::string what = "list containers of " + t.release + "/" + t.deployment + " on " + t.host.name;
  SP_ASSIGN_OR_RETURN(auto api, Api(t.host, "GET", "/containers/json?all=1&filters=" + OwnFilters(t),
                                    options_.command_timeout));
  if (api) {
    SP_TRY(Expect(*api, {200}, what));
    auto list = nlohmann::json::parse(api->body, nullptr, /*allow_exceptions=*/false);
    if (!list.is_array()) return Err(ErrorCode::kInternal, what + ": the engine's answer is not a JSON array");
    std::vector<std::tuple<int64_t, std::string, Instance>> rows;
    for (const auto& c : list) {
      if (!c.is_object()) return Err(ErrorCode::kInternal, what + ": unexpected entry in the engine's answer");
      std::string name = ContainerNameIn(c);
      const nlohmann::json labels = c.contains("Labels") && c["Labels"].is_object() ? c["Labels"] : nlohmann::json::object();
      Instance inst = InstanceOf(std::move(name), c.value("State", ""), labels);
      char created[24];
      std::snprintf(created, sizeof created, "%020lld", static_cast<long long>(c.value("Created", int64_t{0})));
      rows.emplace_back(inst.created_ms, created, std::move(inst));
    }
    return Ordered(std::move(rows));
  }

  // One line per container, a JSON object built by docker's template engine:
  // only what List needs crosses the wire (never Config.Env). One `docker ps`
  // gives every field (each label by name, so values with commas stay
  // intact): one docker CLI start per listing, not a ps and an inspect.
  static const std::string kFormat = [] {
    std::string f = R"({"name":{{json .Names}},"state":{{json .State}},"created":{{json .CreatedAt}})";
    for (const char* label : {kLabelRollout, kLabelVersion, kLabelArtifact, kLabelCreatedMs}) {
      f += std::string(R"(,")") + label + R"(":{{json (.Label ")" + label + R"(")}})";
    }
    return f + "}";
  }();
  SP_ASSIGN_OR_RETURN(
      ExitStatus ps,
      MustRun(t.host,
              {"ps", "-a", "--no-trunc", "--filter", std::string("label=") + kLabelRelease + "=" + t.release,
               "--filter", std::string("label=") + kLabelDeployment + "=" + t.deployment, "--filter",
               std::string("label=") + kLabelHost + "=" + t.host.name, "--format", kFormat},
              what));
  std::vector<std::tuple<int64_t, std::string, Instance>> rows;
  for (const auto& line : Split(ps.out, '\n')) {
    if (Trim(line).empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return Err(ErrorCode::kInternal, "list containers on " + t.host.name + ": unexpected output line");
    }
    // The template puts each label at the top level, under its own name.
    Instance inst = InstanceOf(j.value("name", ""), j.value("state", ""), j);
    rows.emplace_back(inst.created_ms, j.value("created", ""), std::move(inst));
  }
  return Ordered(std::move(rows));
}

Status DockerRuntime::Stop(const RuntimeTarget& t, const Instance& inst, Millis timeout) {
  SP_ASSIGN_OR_RETURN(auto api, Api(t.host, "POST", "/containers/" + inst.id + "/stop?t=" + SecondsCeil(timeout),
                                    timeout + Millis(30'000)));
  if (api) return Expect(*api, {204, 304}, "stop " + inst.id + " on " + t.host.name);  // 304: it was not running.
  SP_ASSIGN_OR_RETURN(ExitStatus st, Exec(t.host, DockerArgv({"stop", "-t", SecondsCeil(timeout), inst.id}), "",
                                          timeout + Millis(30'000)));
  if (!st.ok()) return Err(CodeFor(st), "stop " + inst.id + " on " + t.host.name + ": " + st.Describe());
  return Ok();
}

Result<Instance> DockerRuntime::Start(const RuntimeTarget& t, const AppSpec& app) {
  const std::string name = ContainerName(t, app.rollout_id);
  const std::string what = "start " + name + " on " + t.host.name;
  auto invalid = [&](const std::string& why) { return Err(ErrorCode::kInvalidArgument, what + ": " + why); };
  if (!IsValidImageRef(app.artifact)) return invalid("artifact is not a valid image reference");
  if (app.port < 0 || app.port > 65535) return invalid("port out of range");

  // PORT from the plan wins over an env entry of the same name.
  std::map<std::string, std::string> env = app.env;
  if (app.port > 0) env["PORT"] = std::to_string(app.port);
  std::string env_file;
  std::vector<std::string> secrets;
  for (const auto& [k, v] : env) {
    // Never quote the value in a message: it may be a secret.
    if (!IsValidEnvName(k)) return invalid("invalid env var name '" + k + "'");
    if (!IsSafeValue(v) || !IsValidUtf8(v))
      return invalid("value of env var " + k + " has a newline, NUL or invalid UTF-8");
    env_file += k + "=" + v + "\n";
    if (k != "PORT") secrets.push_back(v);
  }
  for (const auto& v : app.volumes) {
    if (v.empty() || !IsSafeValue(v) || v[0] == '-') return invalid("invalid volume '" + v + "'");
  }
  for (const auto& a : app.command) {
    if (!IsSafeValue(a)) return invalid("command has an argument with a newline or NUL");
  }
  for (const auto* s : {&app.version, &app.rollout_id}) {
    if (!IsSafeValue(*s)) return invalid("version and rollout id must not contain newlines");
  }

  // A container of the same name is the leftover of this very rollout (resumed
  // after a crash): replace it.
  SP_TRY(ForceRemove(t.host, name, what + ": remove leftover container"));

  const int64_t created_ms = clock_.WallMs();
  const std::vector<std::pair<const char*, std::string>> labels{
      {kLabelRelease, t.release},       {kLabelDeployment, t.deployment}, {kLabelHost, t.host.name},
      {kLabelVersion, app.version},     {kLabelRollout, app.rollout_id},  {kLabelArtifact, app.artifact},
      {kLabelCreatedMs, std::to_string(created_ms)}};

  // The API: the env travels in the request body over the forwarded socket,
  // so no env file is written on the host. Same container as the CLI's below.
  nlohmann::json config = {{"Image", app.artifact}, {"Env", nlohmann::json::array()}, {"Labels", nlohmann::json::object()},
                           {"StopTimeout", CeilSeconds(app.stop_timeout)}};
  for (const auto& [k, v] : env) config["Env"].push_back(k + "=" + v);
  for (const auto& [k, v] : labels) config["Labels"][k] = v;
  if (!app.command.empty()) config["Cmd"] = app.command;
  config["HostConfig"] = {{"Init", true},
                          {"NetworkMode", "host"},
                          {"RestartPolicy", {{"Name", "unless-stopped"}}},
                          {"Binds", app.volumes}};
  SP_ASSIGN_OR_RETURN(auto made, Api(t.host, "POST", "/containers/create?name=" + name, options_.command_timeout,
                                     config.dump()));
  Status created = made ? Expect(*made, {201}, what + ": docker create")
                        : CreateWithCli(t, app, name, env_file, labels, secrets);
  if (created) created = StartContainer(t.host, name, what + ": docker start");
  if (!created) return Err(created.error().code, Scrub(created.error().message, secrets));

  Instance inst;
  inst.id = name;
  inst.rollout_id = app.rollout_id;
  inst.version = app.version;
  inst.artifact = app.artifact;
  inst.running = true;
  inst.created_ms = created_ms;
  return inst;
}

Status DockerRuntime::CreateWithCli(const RuntimeTarget& t, const AppSpec& app, const std::string& name,
                                    const std::string& env_file,
                                    const std::vector<std::pair<const char*, std::string>>& labels,
                                    const std::vector<std::string>& secrets) {
  const std::string what = "start " + name + " on " + t.host.name;
  SP_ASSIGN_OR_RETURN(std::string env_dir, MakeTempDir(t.host));
  auto create = [&]() -> Status {
    const std::string env_path = env_dir + "/env";
    if (auto w = transport_.WriteFile(t.host, env_path, env_file, 0600); !w) {
      return Err(w.error().code, Scrub(what + ": write env file: " + w.error().message, secrets));
    }
    std::vector<std::string> args{"create", "--name", name};
    for (const auto& [key, value] : labels) {
      args.push_back("--label");
      args.push_back(std::string(key) + "=" + value);
    }
    // --init: docker-init (tini, shipped with the engine) is PID 1 and forwards
    // signals, so an app without a SIGTERM handler still stops on SIGTERM
    // instead of waiting out the stop timeout (PID 1 ignores default actions).
    for (const char* a : {"--init", "--network", "host", "--restart", "unless-stopped", "--env-file"}) {
      args.push_back(a);
    }
    args.push_back(env_path);
    for (const auto& v : app.volumes) {
      args.push_back("-v");
      args.push_back(v);
    }
    args.push_back("--stop-timeout");
    args.push_back(SecondsCeil(app.stop_timeout));
    args.push_back(app.artifact);
    args.insert(args.end(), app.command.begin(), app.command.end());
    SP_ASSIGN_OR_RETURN(ExitStatus st, Exec(t.host, DockerArgv(args)));
    if (!st.ok()) return Err(CodeFor(st), Scrub(what + ": docker create: " + st.Describe(), secrets));
    return Ok();
  };
  Status created = create();
  Status cleanup = RemoveDir(t.host, env_dir);
  if (!created) return Err(created.error());
  if (!cleanup) return Err(ErrorCode::kInternal, what + ": env file not removed: " + cleanup.error().message);
  return Ok();
}

Status DockerRuntime::StartContainer(const HostRef& host, const std::string& name, const std::string& what) {
  SP_ASSIGN_OR_RETURN(auto api, Api(host, "POST", "/containers/" + name + "/start", options_.command_timeout));
  if (api) return Expect(*api, {204, 304}, what);  // 304: already running.
  SP_TRY(MustRun(host, {"start", name}, what));
  return Ok();
}

Status DockerRuntime::Restart(const RuntimeTarget& t, const Instance& inst) {
  return StartContainer(t.host, inst.id, "restart " + inst.id + " on " + t.host.name);
}

Status DockerRuntime::Remove(const RuntimeTarget& t, const Instance& inst) {
  SP_TRY(ForceRemove(t.host, inst.id, "remove " + inst.id + " on " + t.host.name));
  // Its image too, once no container uses it: releases older than the kept
  // ones leave nothing on the host (strategy.keep_previous).
  RemoveImageIfUnused(t.host, inst.artifact);
  return Ok();
}

void DockerRuntime::RemoveImageIfUnused(const HostRef& host, const std::string& image) {
  if (!IsValidImageRef(image)) return;
  // No force: the engine answers 409 for an image a container uses.
  auto api = Api(host, "DELETE", "/images/" + image, options_.command_timeout);
  if (!api || *api) return;
  (void)Exec(host, DockerArgv({"image", "rm", image}));
}

Result<std::string> DockerRuntime::Logs(const RuntimeTarget& t, const Instance& inst, int lines) {
  SP_ASSIGN_OR_RETURN(ExitStatus st,
                      Exec(t.host, DockerArgv({"logs", "--tail", lines > 0 ? std::to_string(lines) : "all", inst.id})));
  if (!st.ok()) return Err(CodeFor(st), "logs of " + inst.id + " on " + t.host.name + ": " + st.Describe());
  // The container's stdout and stderr arrive on the CLI's stdout and stderr.
  return st.out + st.err;
}

}  // namespace sp
