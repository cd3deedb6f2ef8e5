#include "server/api_server.h"

#include <httplib.h>
#include <cstdio>
#include <sys/socket.h>

#include "core/digest.h"
#include "server/job_store_rpc.h"
#include "build/build_service.h"

#include <filesystem>
#include <thread>
#include "core/text.h"

namespace sp {
namespace {

using inventory::Doc;

int StatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kConflict: return 409;
    case ErrorCode::kUnavailable: return 503;
    default: return 500;
  }
}

void SendJson(httplib::Response& res, int status, const Doc& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void SendError(httplib::Response& res, const Error& e) {
  Doc body;
  body["error"]["code"] = std::string(ErrorCodeName(e.code));
  body["error"]["message"] = e.message;
  SendJson(res, StatusFor(e.code), body);
}

// A JSON object body; syntax errors name line and column.
Result<Doc> JsonBody(const httplib::Request& req) {
  try {
    Doc d = Doc::parse(req.body);
    if (!d.is_object()) return Err(ErrorCode::kInvalidArgument, "request body: expected a JSON object");
    return d;
  } catch (const Doc::parse_error& e) {
    // nlohmann's message names the line and column ("at line 3, column 5").
    return Err(ErrorCode::kInvalidArgument, std::string("request body: malformed JSON: ") + e.what());
  }
}

std::vector<std::string> PathOf(const httplib::Request& req) {
  // "/v1/stacks/a/deployments/b" -> {"stacks", "a", "deployments", "b"}
  std::vector<std::string> out;
  for (const auto& part : Split(req.path.substr(4), '/')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

bool Flag(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return false;
  const std::string v = req.get_param_value(name);
  return v.empty() || v == "1" || v == "true" || v == "yes";
}

// The build a build job carries (its payload's build_id).
std::optional<int64_t> BuildIdOf(const Job& j) {
  if (j.spec.kind != "build") return std::nullopt;
  Doc p = Doc::parse(j.spec.payload, nullptr, false);
  if (!p.is_object() || !p.contains("build_id") || !p["build_id"].is_number_integer()) return std::nullopt;
  return p["build_id"].get<int64_t>();
}

// A log file (build or job: "<ts>\t<step>\t<out|err>\t<text>" lines) whole
// from ?offset=N (default 0), or with ?follow=1 as server-sent events until
// `finished` names how it ended. Read in 64 KiB chunks: a long log is never
// held in memory, and a follower that stops reading is dropped by the write
// timeout without slowing the writer.
void ServeLogFile(const httplib::Request& req, httplib::Response& res, const std::string& path,
                  std::function<std::optional<std::string>()> finished) {
  const bool follow = req.has_param("follow") && req.get_param_value("follow") == "1";
  auto offset = std::make_shared<long>(req.has_param("offset") ? std::max(0L, std::atol(req.get_param_value("offset").c_str())) : 0L);
  auto pending = std::make_shared<std::string>();
  res.set_chunked_content_provider(follow ? "text/event-stream" : "text/plain",
                                   [path, follow, offset, pending, finished](size_t, httplib::DataSink& sink) {
    for (;;) {
      std::FILE* f = std::fopen(path.c_str(), "r");
      size_t got = 0;
      char buf[65536];
      if (f) {
        std::fseek(f, *offset, SEEK_SET);
        got = std::fread(buf, 1, sizeof buf, f);
        std::fclose(f);
      }
      if (got > 0) {
        *offset += static_cast<long>(got);
        if (!follow) return sink.write(buf, got);
        pending->append(buf, got);
        std::string events;
        size_t start = 0;
        for (size_t nl; (nl = pending->find('\n', start)) != std::string::npos; start = nl + 1) {
          events += "data: " + pending->substr(start, nl - start) + "\n\n";
        }
        pending->erase(0, start);
        return events.empty() ? true : sink.write(events.data(), events.size());
      }
      const std::optional<std::string> done = follow ? finished() : std::optional<std::string>("");
      if (done) {
        // Read once more after seeing it done: lines written just before.
        std::error_code ec;
        const auto size = std::filesystem::file_size(path, ec);
        if (follow && !ec && *offset < static_cast<long>(size)) continue;
        if (follow) {
          const std::string end = "event: end\ndata: " + *done + "\n\n";
          sink.write(end.data(), end.size());
        }
        sink.done();
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!sink.is_writable()) return false;
    }
  });
}

}  // namespace

std::string JobLogPath(const std::string& dir, int64_t job_id) { return dir + "/" + std::to_string(job_id) + ".log"; }

inventory::Doc JobToJson(const Job& j) {
  Doc labels = Doc::object();
  for (const auto& [k, v] : j.spec.labels) labels[k] = v;
  return {{"id", j.id},
          {"kind", j.spec.kind},
          {"payload", j.spec.payload},
          {"labels", labels},
          {"priority", j.spec.priority},
          {"idempotency_key", j.spec.idempotency_key},
          {"state", std::string(JobStateName(j.state))},
          {"attempts", j.attempts},
          {"max_attempts", j.spec.max_attempts},
          {"owner", j.lease_owner},
          {"epoch", j.epoch},
          {"lease_expires_ms", j.lease_expires_ms},
          {"result", j.result},
          {"error", j.error}};
}

namespace {

Result<std::map<std::string, std::string>> LabelsOf(const Doc& body) {
  std::map<std::string, std::string> out;
  if (!body.contains("labels")) return out;
  if (!body["labels"].is_object()) return Err(ErrorCode::kInvalidArgument, "/labels: expected an object of strings");
  for (const auto& [k, v] : body["labels"].items()) {
    if (!v.is_string()) return Err(ErrorCode::kInvalidArgument, "/labels/" + k + ": expected a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace

inventory::Doc ClaimToJson(const ClaimRecord& c) {
  return {{"stack", c.stack},           {"template", c.template_name}, {"user", c.user},
          {"deployment", c.deployment}, {"host", c.host},              {"claimed_ms", c.claimed_ms},
          {"expires_ms", c.expires_ms}};
}

inventory::Doc ResolvedToJson(const ResolvedTarget& t) {
  Doc out;
  out["stack"] = t.stack;
  out["release"] = t.release;
  out["deployment"] = t.deployment;
  out["network"] = t.network;
  if (t.bastion) {
    out["bastion"] = {{"address", t.bastion->address}, {"port", t.bastion->port}, {"user", t.bastion->user},
                      {"key", t.bastion->key}, {"host_key", t.bastion->host_key}};
  } else {
    out["bastion"] = nullptr;
  }
  out["ssh"] = {{"enabled", t.ssh.enabled}, {"known_hosts", t.ssh.known_hosts}, {"config", t.ssh.config},
                {"identity", t.ssh.identity}, {"user", t.ssh.user}, {"connect_timeout_ms", t.ssh.connect_timeout_ms},
                {"max_hosts", t.ssh.max_hosts}};
  Doc lbs = Doc::array();
  for (const auto& lb : t.load_balancers) {
    Doc servers = Doc::object();
    for (const auto& h : t.hosts) servers[h.name] = lb.ServerFor(h.name);
    lbs.push_back({{"kind", lb.kind}, {"socket", lb.socket}, {"address", lb.address}, {"backend", lb.backend},
                   {"servers", servers}, {"add_servers", lb.add_servers.value_or(false)}});
  }
  out["load_balancers"] = lbs;
  Doc hosts = Doc::array();
  for (const auto& h : t.hosts) {
    Doc tags = Doc::object();
    for (const auto& [k, v] : h.tags) tags[k] = v;
    hosts.push_back({{"name", h.name}, {"address", h.address}, {"port", h.port}, {"ssh_user", h.ssh_user},
                     {"ssh_port", h.ssh_port}, {"tags", tags}});
  }
  out["hosts"] = hosts;
  // The inventory's layers of the effective environment, in CONTRACTS.md
  // order: stack resources < (release defaults from sallyport.yml, not
  // known here) < deployment overrides; `env` is them merged.
  Doc env = Doc::object(), resources = Doc::object(), deployment = Doc::object();
  for (const auto& [k, v] : t.resource_env) resources[k] = env[k] = v;
  for (const auto& [k, v] : t.deployment_env) deployment[k] = env[k] = v;
  out["env"] = env;
  out["env_layers"] = {{"resources", resources}, {"deployment", deployment}};
  out["docker_host"] = t.docker_host;
  out["base_dir"] = t.base_dir;
  return out;
}

ApiServer::ApiServer(inventory::Service& inventory, ApiServerOptions options)
    : inventory_(inventory), options_(options), http_(std::make_unique<httplib::Server>()) {
  Routes();
}

ApiServer::~ApiServer() { Stop(); }

void ApiServer::Routes() {
  httplib::Server& s = *http_;
  // The shipped .so ignores compile-time macros: runtime setters only.
  s.set_tcp_nodelay(true);
  // Debian's libcpp-httplib listens with a backlog of 5 (compiled in): a
  // burst of connections (50 clients at once in the tests) overflowed it,
  // and clients saw their connection reset after a 1 s SYN retry. Keep the
  // listening socket's fd (this hook runs before bind) to listen again with
  // a real backlog in Start().
  s.set_socket_options([this](int fd) {
    httplib::default_socket_options(fd);
    listen_fd_ = fd;
  });
  s.set_payload_max_length(options_.max_body_bytes);
  const int threads = options_.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unexpected error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    SendError(res, Error{ErrorCode::kInternal, what});
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // Already an API error.
    SendError(res, Error{res.status == 404 ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument,
                         "no route for " + req.method + " " + req.path});
  });

  s.Get("/v1/health", [](const httplib::Request&, httplib::Response& res) { SendJson(res, 200, {{"ok", true}}); });

  s.Get("/v1/inventory", [this](const httplib::Request&, httplib::Response& res) {
    auto inv = inventory_.Current();
    if (!inv) return SendError(res, inv.error());
    SendJson(res, 200, InventoryToJson(**inv));
  });

  s.Post("/v1/inventory/apply", [this](const httplib::Request& req, httplib::Response& res) {
    auto file = ParseInventory(req.body, "request");
    if (!file) return SendError(res, file.error());
    auto r = inventory_.Apply(*file, Flag(req, "prune"), Flag(req, "dry_run"));
    if (!r) return SendError(res, r.error());
    SendJson(res, 200, {{"changes", r->changes}, {"dry_run", Flag(req, "dry_run")}});
  });

  s.Get("/v1/stacks", [this](const httplib::Request&, httplib::Response& res) {
    auto inv = inventory_.Current();
    if (!inv) return SendError(res, inv.error());
    Doc names = Doc::array();
    for (const auto& [name, st] : (*inv)->stacks) names.push_back(name);
    SendJson(res, 200, {{"stacks", names}});
  });

  // Creation in a collection: the body's "name" (for hosts it stays in the
  // mapping) names the new object; 409 if it exists.
  const char* collections = R"(/v1/stacks(/[^/]+/deployments(/[^/]+/(releases|hosts))?)?)";
  s.Post(collections, [this](const httplib::Request& req, httplib::Response& res) {
    auto body = JsonBody(req);
    if (!body) return SendError(res, body.error());
    if (!body->contains("name") || !(*body)["name"].is_string()) {
      return SendError(res, Error{ErrorCode::kInvalidArgument, "/name: required (the new object's name)"});
    }
    std::vector<std::string> path = PathOf(req);
    const std::string name = (*body)["name"];
    const bool host = path.back() == "hosts";
    if (!host) body->erase("name");
    path.push_back(name);
    if (inventory_.Get(path)) {
      return SendError(res, Error{ErrorCode::kConflict, "'" + name + "' already exists; PUT replaces it"});
    }
    auto created = inventory_.Put(path, *body);
    if (!created) return SendError(res, created.error());
    auto now = inventory_.Get(path);
    if (!now) return SendError(res, now.error());
    SendJson(res, 201, *now);
  });

  const char* objects = R"(/v1/stacks/[^/]+(/deployments/[^/]+(/(releases|hosts)/[^/]+)?)?)";
  s.Get(objects, [this](const httplib::Request& req, httplib::Response& res) {
    auto doc = inventory_.Get(PathOf(req));
    if (!doc) return SendError(res, doc.error());
    SendJson(res, 200, *doc);
  });
  s.Put(objects, [this](const httplib::Request& req, httplib::Response& res) {
    auto body = JsonBody(req);
    if (!body) return SendError(res, body.error());
    auto created = inventory_.Put(PathOf(req), *body);
    if (!created) return SendError(res, created.error());
    auto now = inventory_.Get(PathOf(req));
    if (!now) return SendError(res, now.error());
    SendJson(res, *created ? 201 : 200, *now);
  });
  s.Delete(objects, [this](const httplib::Request& req, httplib::Response& res) {
    auto st = inventory_.Delete(PathOf(req));
    if (!st) return SendError(res, st.error());
    res.status = 204;
  });

  s.Post(R"(/v1/stacks/([^/]+)/templates/([^/]+)/claims)", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = JsonBody(req);
    if (!body) return SendError(res, body.error());
    if (!body->contains("user") || !(*body)["user"].is_string()) {
      return SendError(res, Error{ErrorCode::kInvalidArgument, "/user: required"});
    }
    const int64_t now = options_.now_ms ? options_.now_ms() : RealClock::Instance().WallMs();
    auto c = inventory_.Claim(req.matches[1], req.matches[2], (*body)["user"], now);
    if (!c) return SendError(res, c.error());
    SendJson(res, c->claimed_ms == now ? 201 : 200, ClaimToJson(*c));
  });
  s.Get("/v1/claims", [this](const httplib::Request&, httplib::Response& res) {
    auto cs = inventory_.Claims();
    if (!cs) return SendError(res, cs.error());
    Doc out = Doc::array();
    for (const auto& c : *cs) out.push_back(ClaimToJson(c));
    SendJson(res, 200, {{"claims", out}});
  });
  s.Delete(R"(/v1/stacks/([^/]+)/claims/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto st = inventory_.Release(req.matches[1], req.matches[2], options_.teardown);
    if (!st) return SendError(res, st.error());
    res.status = 204;
  });

  if (options_.queue) JobRoutes();
  if (options_.builds) BuildRoutes();

  s.Get("/v1/resolve", [this](const httplib::Request& req, httplib::Response& res) {
    for (const char* p : {"stack", "release", "deployment"}) {
      if (!req.has_param(p)) {
        return SendError(res, Error{ErrorCode::kInvalidArgument, std::string("query parameter '") + p + "' is required"});
      }
    }
    const std::string stack = req.get_param_value("stack"), release = req.get_param_value("release"),
                      deployment = req.get_param_value("deployment"),
                      limit = req.has_param("limit") ? req.get_param_value("limit") : "";
    int64_t revision = 0;
    auto snap = inventory_.Current(&revision);
    if (!snap) return SendError(res, snap.error());
    // Hosts from a dynamic source are found anew every time; the rest only
    // changes with the store's revision.
    bool cacheable = true;
    if (auto s = snap->inventory->stacks.find(stack); s != snap->inventory->stacks.end()) {
      if (auto d = s->second.deployments.find(deployment); d != s->second.deployments.end()) {
        cacheable = !d->second.source.has_value();
      }
    }
    const std::string key = stack + '\n' + release + '\n' + deployment + '\n' + limit;
    if (cacheable) {
      std::lock_guard lk(cache_mu_);
      if (cache_revision_ != revision) {
        resolve_cache_.clear();
        cache_revision_ = revision;
      }
      if (auto it = resolve_cache_.find(key); it != resolve_cache_.end()) {
        res.status = 200;
        res.set_content(it->second, "application/json");
        return;
      }
    }
    auto t = inventory_.Resolve(stack, release, deployment, limit);
    if (!t) return SendError(res, t.error());
    std::string body = ResolvedToJson(*t).dump();
    if (cacheable) {
      std::lock_guard lk(cache_mu_);
      if (cache_revision_ == revision) {
        if (resolve_cache_.size() >= 100'000) resolve_cache_.clear();  // Bounded.
        resolve_cache_[key] = body;
      }
    }
    res.status = 200;
    res.set_content(std::move(body), "application/json");
  });
}

void ApiServer::JobRoutes() {
  httplib::Server& s = *http_;
  QueueStore& q = *options_.queue;
  auto now = [this] { return options_.now_ms ? options_.now_ms() : RealClock::Instance().WallMs(); };
  // The agent behind a request's bearer token, or 401.
  auto agent = [&q](const httplib::Request& req) -> Result<QueueStore::AgentToken> {
    const std::string auth = req.get_header_value("Authorization");
    if (!StartsWith(auth, "Bearer ") || auth.size() <= 7) {
      return Err(ErrorCode::kUnauthenticated, "missing bearer token");
    }
    SP_ASSIGN_OR_RETURN(auto found, q.AgentTokenFor(Sha256Hex(auth.substr(7))));
    if (!found) return Err(ErrorCode::kUnauthenticated, "unknown agent token");
    return *found;
  };
  auto seen = [&q, now](const QueueStore::AgentToken& a, std::optional<int64_t> job) {
    (void)q.TouchAgent(a, now(), job);  // Bookkeeping for `agent list`: never fails a request.
  };
  auto epoch_of = [](const Doc& body) -> Result<int64_t> {
    if (!body.contains("epoch") || !body["epoch"].is_number_integer()) {
      return Err(ErrorCode::kInvalidArgument, "/epoch: required (an integer: the lease's epoch)");
    }
    return body["epoch"].get<int64_t>();
  };

  s.Post("/v1/jobs", [this, &q, now](const httplib::Request& req, httplib::Response& res) {
    auto body = JsonBody(req);
    if (!body) return SendError(res, body.error());
    auto labels = LabelsOf(*body);
    if (!labels) return SendError(res, labels.error());
    JobSpec spec;
    spec.kind = body->value("kind", "");
    if (spec.kind != "build" && spec.kind != "rollout" && spec.kind != "hook") {
      return SendError(res, Error{ErrorCode::kInvalidArgument, "/kind: expected build, rollout or hook"});
    }
    spec.payload = body->value("payload", "");
    spec.labels = *labels;
    spec.priority = body->value("priority", 0);
    spec.idempotency_key = body->value("idempotency_key", "");
    spec.max_attempts = body->value("max_attempts", 3);
    auto job = q.Enqueue(spec, now());
    if (!job) return SendError(res, job.error());
    JobsEnqueued();
    SendJson(res, 201, JobToJson(*job));
  });
  s.Get("/v1/jobs", [&q](const httplib::Request&, httplib::Response& res) {
    auto jobs = q.ListJobs(200);
    if (!jobs) return SendError(res, jobs.error());
    Doc out = Doc::array();
    for (const auto& j : *jobs) out.push_back(JobToJson(j));
    SendJson(res, 200, {{"jobs", out}});
  });
  s.Get(R"(/v1/jobs/(\d+))", [&q](const httplib::Request& req, httplib::Response& res) {
    auto j = q.GetJob(std::stoll(req.matches[1]));
    if (!j) return SendError(res, j.error());
    SendJson(res, 200, JobToJson(*j));
  });

  s.Get("/v1/agents", [&q](const httplib::Request&, httplib::Response& res) {
    auto agents = q.Agents();
    if (!agents) return SendError(res, agents.error());
    Doc out = Doc::array();
    for (const auto& a : *agents) {
      Doc labels = Doc::object();
      for (const auto& [k, v] : a.labels) labels[k] = v;
      out.push_back({{"name", a.name}, {"labels", labels}, {"last_seen_ms", a.last_seen_ms}, {"current_job", a.current_job}});
    }
    SendJson(res, 200, {{"agents", out}});
  });

  s.Post("/v1/agent/register", [agent, seen](const httplib::Request& req, httplib::Response& res) {
    auto who = agent(req);
    if (!who) return SendError(res, who.error());
    seen(*who, std::nullopt);
    auto body = JsonBody(req);
    if (!body) return SendError(res, body.error());
    auto declared = LabelsOf(*body);
    if (!declared) return SendError(res, declared.error());
    for (const auto& [k, v] : *declared) {
      auto it = who->labels.find(k);
      if (it == who->labels.end() || it->second != v) {
        return SendError(res, Error{ErrorCode::kPermissionDenied,
                                    "token of agent '" + who->name + "' is not bound to label " + k + "=" + v});
      }
    }
    Doc bound = Doc::object();
    for (const auto& [k, v] : who->labels) bound[k] = v;
    SendJson(res, 200, {{"name", who->name}, {"labels", bound}});
  });

  s.Post("/v1/agent/claim", [this, &q, agent, now, seen](const httplib::Request& req, httplib::Response& res) {
    auto who = agent(req);
    if (!who) return SendError(res, who.error());
    seen(*who, std::nullopt);
    const int64_t wait_ms = std::clamp<int64_t>(req.has_param("wait_ms") ? std::atoll(req.get_param_value("wait_ms").c_str()) : 0, 0, 30'000);
    const int64_t lease_ms = std::clamp<int64_t>(req.has_param("lease_ms") ? std::atoll(req.get_param_value("lease_ms").c_str()) : 30'000, 1'000, 600'000);
    // ?job=ID: that job or nothing (an agent taking its own build's rollout).
    const int64_t only_job = req.has_param("job") ? std::max<int64_t>(0, std::atoll(req.get_param_value("job").c_str())) : 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (true) {
      int64_t enqueued_before;
      {
        std::lock_guard lk(jobs_mu_);
        enqueued_before = jobs_enqueued_;
      }
      // The token's labels, never what the agent declares.
      auto c = q.Claim(who->name, who->labels, now(), lease_ms, only_job);
      if (!c) return SendError(res, c.error());
      if (*c) {
        seen(*who, (*c)->id);
        return SendJson(res, 200, JobToJson(**c));
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
      // Woken at once by an enqueue here; polls for other processes' jobs
      // and for leases that expire.
      std::unique_lock lk(jobs_mu_);
      jobs_cv_.wait_until(lk, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)),
                          [&] { return jobs_enqueued_ != enqueued_before; });
    }
    res.status = 204;
  });

  s.Post(R"(/v1/agent/jobs/(\d+)/(heartbeat|complete|fail))",
         [&q, agent, epoch_of, now, seen](const httplib::Request& req, httplib::Response& res) {
           auto who = agent(req);
           if (!who) return SendError(res, who.error());
           auto body = JsonBody(req);
           if (!body) return SendError(res, body.error());
           auto epoch = epoch_of(*body);
           if (!epoch) return SendError(res, epoch.error());
           const int64_t id = std::stoll(req.matches[1]);
           const std::string what = req.matches[2];
           Status st = Ok();
           if (what == "heartbeat") {
             st = q.Heartbeat(id, *epoch, who->name, now(), body->value("lease_ms", int64_t{30'000}));
           } else if (what == "complete") {
             if (body->contains("result") && !(*body)["result"].is_string()) {
               return SendError(res, Error{ErrorCode::kInvalidArgument, "/result: expected a string"});
             }
             st = q.Complete(id, *epoch, who->name, body->value("result", ""), now());
           } else {
             if (!body->contains("error") || !(*body)["error"].is_string()) {
               return SendError(res, Error{ErrorCode::kInvalidArgument, "/error: required (a string)"});
             }
             st = q.Fail(id, *epoch, who->name, (*body)["error"].get<std::string>(), now());
           }
           if (!st) return SendError(res, st.error());
           seen(*who, what == "heartbeat" ? std::optional<int64_t>(id) : std::optional<int64_t>(0));
           auto j = q.GetJob(id);
           if (!j) return SendError(res, j.error());
           SendJson(res, 200, JobToJson(*j));
         });

  // Every fenced agent call on job ID (log, build, store): from the agent
  // holding the job's lease with the body's epoch (a canceled job's last
  // holder too, where `canceled_too`), else 401/400/404/409.
  struct Held {
    Doc body;
    Job job;
  };
  auto held = [&q, agent, epoch_of](const httplib::Request& req, bool canceled_too) -> Result<Held> {
    SP_ASSIGN_OR_RETURN(auto who, agent(req));
    SP_ASSIGN_OR_RETURN(Doc body, JsonBody(req));
    SP_ASSIGN_OR_RETURN(int64_t epoch, epoch_of(body));
    const int64_t id = std::stoll(req.matches[1]);
    SP_ASSIGN_OR_RETURN(Job job, q.GetJob(id));
    const bool state_ok = job.state == JobState::kLeased || (canceled_too && job.state == JobState::kCanceled);
    if (!state_ok || job.epoch != epoch || job.lease_owner != who.name) {
      return Err(ErrorCode::kConflict, "job " + std::to_string(id) + ": lease lost");
    }
    return Held{std::move(body), std::move(job)};
  };
  // A build job's log is its build's log.
  auto log_path = [this](const Job& j) -> std::string {
    if (auto build = BuildIdOf(j); build && options_.builds) return options_.builds->LogPath(*build);
    return options_.job_log_dir.empty() ? "" : JobLogPath(options_.job_log_dir, j.id);
  };
  // The agent's log lines of a job, appended to its log; a canceled job's
  // last holder may still send what it had (lines are not actions, and a
  // reclaimed job's stale holder has the wrong epoch). A malformed batch
  // writes nothing (400).
  s.Post(R"(/v1/agent/jobs/(\d+)/log)", [this, held, log_path](const httplib::Request& req, httplib::Response& res) {
    auto h = held(req, /*canceled_too=*/true);
    if (!h) return SendError(res, h.error());
    const Doc& body = h->body;
    if (!body.contains("lines") || !body["lines"].is_array()) {
      return SendError(res, Error{ErrorCode::kInvalidArgument, "/lines: required (an array of {ts, step, err, text})"});
    }
    auto flat = [](std::string t) {
      for (char& ch : t) {
        if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
      }
      return t;
    };
    std::string text;
    size_t i = 0;
    for (const auto& l : body["lines"]) {
      const std::string at = "/lines/" + std::to_string(i++);
      if (!l.is_object() || !l.contains("text") || !l["text"].is_string()) {
        return SendError(res, Error{ErrorCode::kInvalidArgument, at + "/text: required (a string)"});
      }
      if ((l.contains("ts") && !l["ts"].is_number_integer()) || (l.contains("step") && !l["step"].is_string()) ||
          (l.contains("err") && !l["err"].is_boolean())) {
        return SendError(res, Error{ErrorCode::kInvalidArgument, at + ": ts must be an integer, step a string, err a boolean"});
      }
      text += FormatLogLine(l.value("ts", int64_t{0}), flat(l.value("step", std::string("agent"))), l.value("err", false),
                            flat(l["text"].get<std::string>()));
    }
    const int64_t id = h->job.id;
    const std::string path = log_path(h->job);
    if (path.empty()) return SendError(res, Error{ErrorCode::kNotFound, "this server keeps no job logs"});
    std::lock_guard lk(log_mu_);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    std::FILE* f = std::fopen(path.c_str(), "a");
    if (!f) return SendError(res, Error{ErrorCode::kInternal, "cannot append to job " + std::to_string(id) + "'s log"});
    const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !written) {
      return SendError(res, Error{ErrorCode::kInternal, "cannot append to job " + std::to_string(id) + "'s log"});
    }
    res.status = 204;
  });
  s.Get(R"(/v1/jobs/(\d+)/log)", [&q, log_path](const httplib::Request& req, httplib::Response& res) {
    const int64_t id = std::stoll(req.matches[1]);
    auto job = q.GetJob(id);
    if (!job) return SendError(res, job.error());
    const std::string path = log_path(*job);
    if (path.empty()) return SendError(res, Error{ErrorCode::kNotFound, "this server keeps no job logs"});
    ServeLogFile(req, res, path, [&q, id]() -> std::optional<std::string> {
      auto j = q.GetJob(id);
      if (!j) return "gone";
      if (j->state == JobState::kQueued || j->state == JobState::kLeased) return std::nullopt;
      return std::string(JobStateName(j->state));
    });
  });

  // A build job's records and deploy, from the agent running it: only the
  // lease holder, only for the build its job carries.
  auto build_job = [held](const httplib::Request& req, Doc& body, int64_t& build_id) -> Status {
    SP_ASSIGN_OR_RETURN(Held h, held(req, /*canceled_too=*/false));
    auto build = BuildIdOf(h.job);
    if (!build) return Err(ErrorCode::kInvalidArgument, "job " + std::to_string(h.job.id) + " is not a build");
    body = std::move(h.body);
    build_id = *build;
    return Ok();
  };
  s.Post(R"(/v1/agent/jobs/(\d+)/build)", [this, build_job](const httplib::Request& req, httplib::Response& res) {
    if (!options_.build_store) return SendError(res, Error{ErrorCode::kNotFound, "this server keeps no builds"});
    BuildStore& store = *options_.build_store;
    Doc body;
    int64_t build_id = 0;
    if (auto st = build_job(req, body, build_id); !st) return SendError(res, st.error());
    auto str = [](const Doc& o, const char* k, std::string& out) -> Status {
      if (!o.contains(k)) return Ok();
      if (!o[k].is_string()) return Err(ErrorCode::kInvalidArgument, std::string("/") + k + ": expected a string");
      out = o[k].get<std::string>();
      return Ok();
    };
    auto num = [](const Doc& o, const char* k, int64_t& out) -> Status {
      if (!o.contains(k)) return Ok();
      if (!o[k].is_number_integer()) return Err(ErrorCode::kInvalidArgument, std::string("/") + k + ": expected an integer");
      out = o[k].get<int64_t>();
      return Ok();
    };
    if (body.contains("build") && body["build"].is_object()) {
      const Doc& b = body["build"];
      auto rec = store.GetBuild(build_id);
      if (!rec) return SendError(res, rec.error());
      std::string status = std::string(BuildStatusName(rec->status));
      for (Status st : {str(b, "status", status), str(b, "author", rec->author), str(b, "message", rec->message),
                        str(b, "artifact", rec->artifact), str(b, "deployment", rec->deployment), str(b, "error", rec->error),
                        num(b, "finished_ms", rec->finished_ms)}) {
        if (!st) return SendError(res, st.error());
      }
      auto parsed = ParseBuildStatus(status);
      if (!parsed) return SendError(res, Error{ErrorCode::kInvalidArgument, "/build/status: unknown '" + Printable(status) + "'"});
      rec->status = *parsed;
      if (auto st = store.UpdateBuild(*rec); !st) return SendError(res, st.error());
    } else if (body.contains("step") && body["step"].is_object()) {
      const Doc& x = body["step"];
      BuildStepRecord rec;
      rec.build_id = build_id;
      int64_t index = -1, exit_code = 0;
      for (Status st : {num(x, "index", index), str(x, "name", rec.name), str(x, "kind", rec.kind), str(x, "status", rec.status),
                        num(x, "exit_code", exit_code), num(x, "started_ms", rec.started_ms), num(x, "finished_ms", rec.finished_ms)}) {
        if (!st) return SendError(res, st.error());
      }
      if (index < 0 || index > 10'000 || rec.name.empty()) {
        return SendError(res, Error{ErrorCode::kInvalidArgument, "/step: index (0..10000) and name are required"});
      }
      rec.index = static_cast<int>(index);
      rec.exit_code = static_cast<int>(exit_code);
      if (auto st = store.PutBuildStep(rec); !st) return SendError(res, st.error());
    } else {
      return SendError(res, Error{ErrorCode::kInvalidArgument, "/build or /step: one of them is required (an object)"});
    }
    res.status = 204;
  });
  s.Post(R"(/v1/agent/jobs/(\d+)/deploy)", [this, build_job](const httplib::Request& req, httplib::Response& res) {
    if (!options_.deploy_start) return SendError(res, Error{ErrorCode::kNotFound, "this server does not deploy"});
    Doc body;
    int64_t build_id = 0;
    if (auto st = build_job(req, body, build_id); !st) return SendError(res, st.error());
    for (const char* k : {"config", "release", "deployment", "artifact"}) {
      if (!body.contains(k) || !body[k].is_string()) {
        return SendError(res, Error{ErrorCode::kInvalidArgument, std::string("/") + k + ": required (a string)"});
      }
    }
    auto cfg = ParseServiceConfig(body["config"].get<std::string>(), "sallyport.yml of build " + std::to_string(build_id));
    if (!cfg) return SendError(res, cfg.error());
    DeployRequest r{&*cfg, body["config"], body["release"], body["deployment"], body["artifact"], build_id};
    auto job = options_.deploy_start(r);
    if (!job) return SendError(res, job.error());
    SendJson(res, 201, {{"job", *job}});
  });

  // The journal and lock of a rollout job, on the server: refused (409)
  // unless the caller holds the job's lease with this epoch, with at least
  // kFenceMarginMs of it left (so a write cannot land after a reclaim).
  if (!options_.journal || !options_.locks) return;
  JournalStore& journal = *options_.journal;
  LockStore& locks = *options_.locks;
  s.Post(R"(/v1/agent/jobs/(\d+)/store)", [&journal, &locks, held, now](const httplib::Request& req,
                                                                          httplib::Response& res) {
    constexpr int64_t kFenceMarginMs = 250;
    auto h = held(req, /*canceled_too=*/false);
    if (!h) return SendError(res, h.error());
    const Doc& body = h->body;
    if (!body.contains("call") || !body["call"].is_string()) {
      return SendError(res, Error{ErrorCode::kInvalidArgument, "/call: required (a string)"});
    }
    const Job* job = &h->job;
    const int64_t id = job->id;
    const int64_t t = now();
    if (job->lease_expires_ms <= t + kFenceMarginMs) {
      return SendError(res, Error{ErrorCode::kConflict, "job " + std::to_string(id) + ": lease lost"});
    }
    Doc plan = Doc::parse(job->spec.payload, nullptr, false);
    if (job->spec.kind != "rollout" || !plan.is_object() || !plan.contains("stack")) {
      return SendError(res, Error{ErrorCode::kInvalidArgument, "job " + std::to_string(id) + " is not a rollout"});
    }
    const std::string scope = plan.value("stack", "") + "/" + plan.value("release", "") + "/" + plan.value("deployment", "");
    auto answer = ServeJobStoreCall(journal, locks, *job, scope, t, body);
    if (!answer) return SendError(res, answer.error());
    SendJson(res, 200, *answer);
  });
}

inventory::Doc BuildToJson(const BuildRecord& b) {
  return {{"id", b.id},
          {"project", b.project},
          {"branch", b.branch},
          {"sha", b.sha},
          {"trigger", b.trigger},
          {"status", std::string(BuildStatusName(b.status))},
          {"author", b.author},
          {"message", b.message},
          {"artifact", b.artifact},
          {"deployment", b.deployment},
          {"error", b.error},
          {"created_ms", b.created_ms},
          {"started_ms", b.started_ms},
          {"finished_ms", b.finished_ms}};
}

void ApiServer::BuildRoutes() {
  httplib::Server& s = *http_;
  BuildService& builds = *options_.builds;
  BuildStore& store = *options_.build_store;

  // Push events: GitHub's, Gitea's and GitLab's signatures and delivery ids.
  for (const BuildService::HookSpec& h : BuildService::kHookSpecs) {
    s.Post(std::string("/hooks/") + h.path + "/([a-z0-9][a-z0-9-]{0,62})",
           [&builds, h](const httplib::Request& req, httplib::Response& res) {
             auto made = builds.Webhook(req.matches[1], req.body, req.get_header_value(h.signature_header),
                                        req.get_header_value(h.delivery_header), h.format);
             if (!made) return SendError(res, made.error());
             if (!*made) return SendJson(res, 200, {{"build", nullptr}, {"reason", "seen before: nothing started"}});
             SendJson(res, 202, {{"build", (*made)->id}});
           });
  }

  s.Get("/v1/builds", [&store](const httplib::Request& req, httplib::Response& res) {
    const int limit = req.has_param("limit") ? std::clamp(std::atoi(req.get_param_value("limit").c_str()), 1, 1000) : 50;
    auto list = store.ListBuilds(limit);
    if (!list) return SendError(res, list.error());
    Doc out = Doc::array();
    for (const auto& b : *list) out.push_back(BuildToJson(b));
    SendJson(res, 200, {{"builds", out}});
  });

  s.Get(R"(/v1/builds/(\d+))", [&store](const httplib::Request& req, httplib::Response& res) {
    auto b = store.GetBuild(std::stoll(req.matches[1]));
    if (!b) return SendError(res, b.error());
    Doc out = BuildToJson(*b);
    Doc steps = Doc::array();
    if (auto st = store.BuildSteps(b->id)) {
      for (const auto& x : *st) {
        steps.push_back({{"index", x.index}, {"name", x.name}, {"kind", x.kind}, {"status", x.status},
                         {"started_ms", x.started_ms}, {"finished_ms", x.finished_ms}});
      }
    }
    out["steps"] = steps;
    SendJson(res, 200, out);
  });

  s.Post("/v1/builds", [&builds](const httplib::Request& req, httplib::Response& res) {
    auto body = JsonBody(req);
    if (!body) return SendError(res, body.error());
    const std::string project = body->value("project", ""), branch = body->value("branch", ""), sha = body->value("sha", "");
    auto made = builds.Manual(project, branch, sha);
    if (!made) return SendError(res, made.error());
    if (!*made) return SendJson(res, 200, {{"build", nullptr}, {"reason", "this commit was built before"}});
    SendJson(res, 201, {{"build", (*made)->id}});
  });

  s.Post(R"(/v1/builds/(\d+)/cancel)", [&builds](const httplib::Request& req, httplib::Response& res) {
    if (auto st = builds.Cancel(std::stoll(req.matches[1])); !st) return SendError(res, st.error());
    SendJson(res, 202, {{"canceled", true}});
  });

  // The build's log: whole, or (?follow=1) as server-sent events that end
  // with the build. Read from the file in chunks: a long log is never held
  // in memory, and a follower that stops reading is dropped by the write
  // timeout without slowing the build.
  s.Get(R"(/v1/builds/(\d+)/log)", [&store, &builds](const httplib::Request& req, httplib::Response& res) {
    const int64_t id = std::stoll(req.matches[1]);
    auto b = store.GetBuild(id);
    if (!b) return SendError(res, b.error());
    ServeLogFile(req, res, builds.LogPath(id), [&store, id]() -> std::optional<std::string> {
      auto now = store.GetBuild(id);
      if (!now) return "gone";
      if (now->status == BuildStatus::kQueued || now->status == BuildStatus::kRunning) return std::nullopt;
      return std::string(BuildStatusName(now->status));
    });
  });
}

Status ApiServer::Start(const std::string& host, int port) {
  if (port == 0) {
    port_ = http_->bind_to_any_port(host);
    if (port_ < 0) return Err(ErrorCode::kUnavailable, "server: cannot bind " + host + " on any port");
  } else {
    if (!http_->bind_to_port(host, port)) {
      return Err(ErrorCode::kUnavailable, "server: cannot bind " + host + ":" + std::to_string(port));
    }
    port_ = port;
  }
  if (listen_fd_ >= 0) ::listen(listen_fd_, SOMAXCONN);  // Linux updates the backlog of a listening socket.
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  if (options_.expire_every.count() > 0) {
    expirer_ = std::thread([this] {
      std::unique_lock lk(expire_mu_);
      while (!expire_cv_.wait_for(lk, options_.expire_every, [this] { return stopping_; })) {
        lk.unlock();
        auto released = inventory_.Expire(options_.now_ms ? options_.now_ms() : RealClock::Instance().WallMs(), options_.teardown);
        if (!released) {
          std::fprintf(stderr, "sallyport server: releasing expired claims: %s\n", released.error().message.c_str());
        } else {
          for (const auto& c : *released) {
            std::printf("sallyport server: claim %s/%s expired: torn down, host %s returned to the pool\n",
                        c.stack.c_str(), c.deployment.c_str(), c.host.c_str());
          }
          std::fflush(stdout);
        }
        lk.lock();
      }
    });
  }
  return Ok();
}

void ApiServer::JobsEnqueued() {
  {
    std::lock_guard lk(jobs_mu_);
    ++jobs_enqueued_;
  }
  jobs_cv_.notify_all();
}

void ApiServer::Stop() {
  if (expirer_.joinable()) {
    {
      std::lock_guard lk(expire_mu_);
      stopping_ = true;
    }
    expire_cv_.notify_all();
    expirer_.join();
  }
  if (!thread_.joinable()) return;
  http_->stop();
  thread_.join();
}

}  // namespace sp
