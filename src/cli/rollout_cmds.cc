// rollout run | resume | status | list | show | undo | cancel

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "cli/command.h"
#include "cli/logs.h"
#include "cli/rollout_stores.h"
#include "client/http_client.h"
#include "config/service_config.h"
#include "deploy/deploy_plan.h"
#include "queue/wire.h"
#include "core/stop_signals.h"
#include "core/text.h"
#include "inventory/ansible/ansible_import.h"
#include "inventory/service.h"
#include "inventory/wire.h"
#include "rollout/event_format.h"
#include "rollout/journal_wire.h"
#include "rollout/masked_journal.h"
#include "rollout/plan.h"
#include "rollout/rollback.h"

namespace sp::cli {

namespace {

// The service file and the target resolved from the inventory: a file, the
// state database's ("store"), or a server's (an http:// URL).
struct Loaded {
  ServiceConfig svc;
  ResolvedTarget target;
};

Result<ResolvedTarget> ResolveFrom(Context& ctx, const std::string& stack, const std::string& release) {
  const Args& a = ctx.a;
  if (a.inventory == "store") {
    SP_ASSIGN_OR_RETURN(SqliteStore * store, ctx.Store());
    inventory::Service service(*store, inventory::ServiceOptions{inventory::DynamicSourceRunner()});
    return service.Resolve(stack, release, a.deployment, a.limit);
  }
  if (InventoryFromServer(a)) {
    auto api = HttpApiClient::Create({a.inventory, ctx.client().token, ctx.client().ca});
    if (!api) return Err(api.error());
    SP_ASSIGN_OR_RETURN(Doc d, (*api)->Call("GET", "/v1/resolve?stack=" + UrlQuery(stack) + "&release=" +
                                                      UrlQuery(release) + "&deployment=" + UrlQuery(a.deployment) +
                                                      (a.limit.empty() ? "" : "&limit=" + UrlQuery(a.limit))));
    try {
      return ResolvedTargetFromJson(nlohmann::json::parse(d.dump()));
    } catch (const std::exception& e) {
      return Err(ErrorCode::kInternal, std::string("server's resolve answer: ") + e.what());
    }
  }
  SP_ASSIGN_OR_RETURN(Inventory inv, LoadInventory(a.inventory));
  return Resolve(inv, stack, release, a.deployment, a.limit, inventory::DynamicSourceRunner());
}

Result<Loaded> Load(Context& ctx) {
  const Args& a = ctx.a;
  Loaded l;
  SP_ASSIGN_OR_RETURN(l.svc, LoadServiceConfig(a.config));
  std::string release = a.release;
  if (release.empty()) {
    if (l.svc.releases.size() != 1) {
      return Err(ErrorCode::kInvalidArgument, a.config + " defines " + std::to_string(l.svc.releases.size()) +
                                                  " releases: choose one with --release");
    }
    release = l.svc.releases.begin()->first;
  }
  SP_ASSIGN_OR_RETURN(l.target, ResolveFrom(ctx, a.stack.empty() ? l.svc.stack : a.stack, release));
  return l;
}

void PrintSummary(const RolloutPlan& plan, const RolloutSummary& s, bool json) {
  if (json) {
    Doc hosts = Doc::array();
    for (const auto& h : s.hosts) {
      hosts.push_back({{"host", h.host}, {"state", Name(h.state)}, {"out_of_rotation_ms", h.out_of_rotation_ms},
                       {"elapsed_ms", h.elapsed_ms}, {"failed_step", Name(h.failed_step)}, {"error", h.error}});
    }
    PrintJsonLine({{"event", "summary"}, {"rollout", s.rollout_id},
                   {"status", std::string(RolloutStatusName(s.status))}, {"elapsed_ms", s.elapsed_ms},
                   {"hosts", hosts}, {"error", s.error}});
    return;
  }
  std::printf("\n%-12s %-8s %-16s %-9s %s\n", "HOST", "STATE", "OUT OF ROTATION", "TOTAL", "DETAIL");
  for (const auto& h : s.hosts) {
    const std::string detail = h.state == HostState::kFailed ? "failed at " + Name(h.failed_step) : "";
    std::printf("%-12s %-8s %-16s %-9s %s\n", h.host.c_str(), Name(h.state).c_str(),
                FormatDuration(Millis(h.out_of_rotation_ms)).c_str(), FormatDuration(Millis(h.elapsed_ms)).c_str(),
                detail.c_str());
  }
  std::printf("\nrollout %s %s: %s -> %s/%s in %s\n", s.rollout_id.c_str(), std::string(RolloutStatusName(s.status)).c_str(),
              plan.app.version.c_str(), plan.release.c_str(), plan.deployment.c_str(),
              FormatDuration(Millis(s.elapsed_ms)).c_str());
  if (!s.error.empty()) std::printf("error: %s\n", s.error.c_str());
  std::fflush(stdout);
}

// SIGINT/SIGTERM during a rollout run here: the first lets the hosts in hand
// finish (or be restored) and stops before the next batch, the lock
// released and the rollout recorded interrupted; a second exits at once,
// the journal left for `rollout resume`.
class Interrupts {
 public:
  explicit Interrupts(std::string rollout_id)
      : id_(std::move(rollout_id)), signals_([this](int count, int signo) { On(count, signo); }) {}
  void Attach(RolloutEngine* engine) {
    std::lock_guard l(mu_);
    engine_ = engine;
    if (requested_) engine_->RequestStop();
  }
  void Detach() {
    std::lock_guard l(mu_);
    engine_ = nullptr;
  }

 private:
  void On(int count, int signo) {
    const char* name = signo == SIGTERM ? "SIGTERM" : "SIGINT";
    if (count == 1) {
      std::fprintf(stderr, "\nsallyport: %s: finishing the host(s) in hand, then stopping before the next batch "
                   "(send it again to stop at once)\n", name);
      std::lock_guard l(mu_);
      requested_ = true;
      if (engine_) engine_->RequestStop();
      return;
    }
    std::fprintf(stderr, "\nsallyport: %s again: stopped at once; hosts in hand may be out of rotation until "
                 "`sallyport rollout resume %s` continues rollout %s\n", name, id_.c_str(), id_.c_str());
    std::fflush(stdout);
    ::_exit(kExitInterrupted);
  }

  const std::string id_;
  std::mutex mu_;
  RolloutEngine* engine_ = nullptr;
  bool requested_ = false;
  StopSignals signals_;  // Last: stops waiting before the rest is gone.
};

// Who runs this CLI, for the record: "user@machine".
std::string Requester() {
  const char* user = std::getenv("USER");
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return std::string(user && *user ? user : (::geteuid() == 0 ? "root" : "uid " + std::to_string(::geteuid()))) +
         "@" + host;
}

// Runs (or resumes) `plan` in this process, journaled in the local store
// or on the server it read its inventory from (StoresFor).
int RunHere(Context& ctx, const RolloutPlan& plan, bool resume) {
  Interrupts interrupts(plan.id);  // Before any thread starts.
  auto store = StoresFor(ctx, plan.stack, plan.release, plan.deployment);
  if (!store) return Fail(store.error());
  auto wait = ParseDuration(ctx.a.lock_wait);
  if (!wait) return Fail(wait.error().Wrap("--lock-wait"));
  // The secret values the plan's references gave: masked in the journal
  // (and so in every answer and notification made from it) and the output.
  Masker masker;
  MaskedJournal journal(*store->journal, masker);
  EngineSetup setup(&journal, store->locks, *wait);
  setup.act_on_submitted_plans = true;  // This CLI reaches the hosts itself.
  const bool json = ctx.json();
  setup.read_secret = [&masker](const std::string& ref) -> Result<std::string> {
    auto value = ReadSecretRef(ref);
    if (value) masker.Add(*value);
    return value;
  };
  setup.on_event = [json, observe = ctx.ext.observe_event, &masker](const Event& e) {
    PrintEvent(e, json, &masker);
    if (observe) observe(e);
  };
  setup.decorate_lb = ctx.ext.decorate_lb;
  EngineWiring wiring(setup);
  auto engine = wiring.EngineFor(plan);
  interrupts.Attach(engine.get());
  auto r = resume ? engine->Resume(plan.id) : engine->Run(plan);
  interrupts.Detach();
  if (!r) return Fail({r.error().code, masker.Mask(r.error().message)});
  r->error = masker.Mask(r->error);
  for (auto& h : r->hosts) h.error = masker.Mask(h.error);
  PrintSummary(plan, *r, json);
  if (r->status == RolloutStatus::kInterrupted) {
    std::fprintf(stderr, "sallyport: rollout %s interrupted: the hosts it reached run %s, the others kept their "
                 "version; the lock is released. Continue with: sallyport rollout resume %s\n",
                 r->rollout_id.c_str(), plan.app.version.c_str(), r->rollout_id.c_str());
    return kExitInterrupted;
  }
  if (r->lock_lost) {
    std::fprintf(stderr, "sallyport: rollout %s: lock lost — the scope's lock was released or taken over while it "
                 "ran, so it stopped acting at once; the lock's next holder reconciles its hosts "
                 "(`sallyport lock list` says who holds it)\n", r->rollout_id.c_str());
    return kExitLockHeld;
  }
  return r->status == RolloutStatus::kSucceeded ? kExitOk : kExitFailed;
}

// --dry-run here: every read-only preflight check, each failure named.
int CheckHere(Context& ctx, const RolloutPlan& plan) {
  auto store = StoresFor(ctx, plan.stack, plan.release, plan.deployment);
  if (!store) return Fail(store.error());
  EngineSetup setup(store->journal, store->locks);
  setup.decorate_lb = ctx.ext.decorate_lb;
  EngineWiring wiring(setup);
  if (auto st = wiring.EngineFor(plan)->Check(plan); !st) return Fail(st.error());
  std::fprintf(stderr, "preflight ok: nothing was touched\n");
  return kExitOk;
}

// Follows a queued rollout job to its end (--wait): its log lines as its
// agent sends them, then its outcome (exit 0 if it succeeded). Gives up after
// --wait-timeout saying why (no agent took it, or it still runs on one); the
// job itself goes on.
int WaitForJob(Context& ctx, ApiClient& api, int64_t id) {
  auto limit = ParseDuration(ctx.a.wait_timeout);
  if (!limit) return Fail(limit.error().Wrap("--wait-timeout"));
  const int64_t give_up = ctx.Monotonic() + limit->count();
  const std::string path = "/v1/jobs/" + std::to_string(id);
  int64_t offset = 0;
  std::string pending;
  for (;;) {
    auto j = api.Call("GET", path);
    if (!j) return Fail(j.error());
    if (auto text = api.GetText(path + "/log?offset=" + std::to_string(offset)); text && !text->empty()) {
      offset += static_cast<int64_t>(text->size());
      pending += *text;
      const size_t cut = pending.rfind('\n');
      if (cut != std::string::npos) {
        PrintLogLines(pending.substr(0, cut + 1), ctx.json());
        pending.erase(0, cut + 1);
      }
    }
    const std::string state = j->value("state", "");
    if (state != "queued" && state != "leased") {
      // A dead job's lease is gone: it has no owner to name.
      const std::string owner = j->value("owner", "");
      std::printf("job %lld %s%s: %s\n", static_cast<long long>(id), state.c_str(),
                  owner.empty() ? "" : (" by " + owner).c_str(),
                  j->value(state == "succeeded" ? "result" : "error", "").c_str());
      return state == "succeeded" ? kExitOk : kExitFailed;
    }
    if (ctx.Monotonic() >= give_up) {
      std::string labels;
      if (j->contains("labels") && (*j)["labels"].is_object()) {
        for (const auto& [k, v] : (*j)["labels"].items()) {
          labels += (labels.empty() ? "" : ",") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
        }
      }
      const std::string why = state == "queued" ? "still queued: no agent with labels " + labels + " took it"
                                                : "still running on agent " + j->value("owner", "");
      return Fail({ErrorCode::kTimeout, "job " + std::to_string(id) + " " + why + " after --wait-timeout " +
                                            ctx.a.wait_timeout + "; it goes on (follow it: sallyport job logs " +
                                            std::to_string(id) + " --follow)"});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int Queued(Context& ctx, ApiClient& api, const std::string& rollout, int64_t job, const std::string& network) {
  std::printf("queued rollout %s as job %lld for network %s\n", rollout.c_str(), static_cast<long long>(job),
              network.c_str());
  std::fflush(stdout);
  return ctx.a.wait ? WaitForJob(ctx, api, job) : kExitOk;
}

// --plan-here: the plan frozen by this CLI becomes a job for the agents of
// its network (the plan's id is the idempotency key). The server queues a
// submitted plan only for an admin.
int Enqueue(Context& ctx, const RolloutPlan& plan) {
  auto api = ctx.Api();
  if (!api) return Fail(api.error());
  auto job = (*api)->Call("POST", "/v1/jobs", JobSpecToJson(RolloutJobSpec(plan)).dump());
  if (!job) return Fail(job.error());
  return Queued(ctx, **api, plan.id, (*job)["id"], plan.network);
}

// Through a server: the request names the build (or its artifact) and the
// target; the server plans from the build's sallyport.yml and its inventory.
int AskServer(Context& ctx) {
  const Args& a = ctx.a;
  if (a.build <= 0 && a.artifact.empty()) {
    return Fail({ErrorCode::kInvalidArgument, "--build or --artifact is required (the server plans from its build)"});
  }
  Doc body{{"deployment", a.deployment}, {"dry_run", a.dry_run}};
  if (a.queue_anyway) body["queue_anyway"] = true;
  if (a.build > 0) body["build"] = a.build;
  if (!a.artifact.empty()) body["artifact"] = a.artifact;
  for (auto [key, value] : {std::pair{"stack", &a.stack}, std::pair{"release", &a.release},
                            std::pair{"version", &a.version}, std::pair{"limit", &a.limit},
                            std::pair{"batch", &a.batch}, std::pair{"max_failures", &a.max_failures}}) {
    if (!value->empty()) body[key] = *value;
  }
  auto api = ctx.Api();
  if (!api) return Fail(api.error());
  auto answer = (*api)->Call("POST", "/v1/rollouts", body.dump());
  if (!answer) return Fail(answer.error());
  if (a.dry_run) {
    std::printf("%s\n", (*answer)["plan"].dump(2).c_str());
    return kExitOk;
  }
  return Queued(ctx, **api, answer->value("rollout", ""), answer->value("job", int64_t{0}),
                answer->value("network", ""));
}

int Run(Context& ctx) {
  const Args& a = ctx.a;
  if (ctx.remote() && !a.plan_here) return AskServer(ctx);
  if (a.build > 0) return Fail({ErrorCode::kInvalidArgument, "--build needs a server (the server keeps builds)"});
  if (a.artifact.empty()) return Fail({ErrorCode::kInvalidArgument, "--artifact is required"});
  auto l = Load(ctx);
  if (!l) return Fail(l.error());
  PlanInput in;
  in.artifact = a.artifact;
  in.version = a.version;
  in.now_ms = ctx.Now();
  for (auto [text, flag, out] : {std::tuple{&a.batch, "--batch", &in.batch_override},
                                 std::tuple{&a.max_failures, "--max-failures", &in.max_failures_override}}) {
    if (text->empty()) continue;
    auto v = ParseCountOrPercent(*text);
    if (!v) return Fail(v.error().Wrap(flag));
    *out = *v;
  }
  auto plan = BuildPlan(l->svc, l->target, in);
  if (!plan) return Fail(plan.error());
  plan->requested_by = Requester();
  if (a.dry_run) {
    std::printf("%s\n", PlanToJson(*plan, 2).c_str());
    std::fflush(stdout);
    return ctx.remote() ? kExitOk : CheckHere(ctx, *plan);
  }
  return ctx.remote() ? Enqueue(ctx, *plan) : RunHere(ctx, *plan, false);
}

int Resume(Context& ctx) {
  std::string id = ctx.a.id;
  // The scope from the service file: to find its last rollout, and (-i URL)
  // to reach the server's journal of that scope.
  ResolvedTarget t;
  if (id.empty() || InventoryFromServer(ctx.a)) {
    auto l = Load(ctx);
    if (!l) return Fail(l.error());
    t = l->target;
  }
  auto store = StoresFor(ctx, t.stack, t.release, t.deployment);
  if (!store) return Fail(store.error());
  JournalStore& journal = *store->journal;
  if (id.empty()) {
    auto rec = journal.Latest(t.stack, t.release, t.deployment, RolloutStatus::kRunning);
    if (!rec) return Fail(rec.error());
    if (!*rec) {
      // An interrupted rollout, when it is the scope's last.
      rec = journal.Latest(t.stack, t.release, t.deployment, std::nullopt);
      if (!rec) return Fail(rec.error());
      if (*rec && (*rec)->status != RolloutStatus::kInterrupted) rec->reset();
    }
    if (!*rec) {
      std::printf("nothing to resume for %s/%s/%s\n", t.stack.c_str(), t.release.c_str(), t.deployment.c_str());
      return kExitOk;
    }
    id = (*rec)->id;
  }
  auto rec = journal.GetRollout(id);
  if (!rec) return Fail(rec.error());
  auto plan = PlanFromJson(rec->plan_json);
  if (!plan) return Fail(plan.error());
  return RunHere(ctx, *plan, true);
}

// Through a server: it plans the rollback from its own journal.
int UndoThroughServer(Context& ctx) {
  const Args& a = ctx.a;
  std::string stack = a.stack, release = a.release;
  if (stack.empty() || release.empty()) {
    auto svc = LoadServiceConfig(a.config);
    if (!svc) return Fail(svc.error().Wrap("--stack and --release not given"));
    if (stack.empty()) stack = svc->stack;
    if (release.empty() && svc->releases.size() == 1) release = svc->releases.begin()->first;
    if (release.empty()) return Fail({ErrorCode::kInvalidArgument, a.config + " defines several releases: --release"});
  }
  auto api = ctx.Api();
  if (!api) return Fail(api.error());
  Doc body{{"stack", stack}, {"release", release}, {"deployment", a.deployment}};
  if (a.queue_anyway) body["queue_anyway"] = true;
  if (!a.to.empty()) body["to"] = a.to;
  auto answer = (*api)->Call("POST", "/v1/rollbacks", body.dump());
  if (!answer) return Fail(answer.error());
  return Queued(ctx, **api, answer->value("rollout", ""), answer->value("job", int64_t{0}),
                answer->value("network", ""));
}

int Undo(Context& ctx) {
  if (ctx.remote()) return UndoThroughServer(ctx);
  auto l = Load(ctx);
  if (!l) return Fail(l.error());
  const auto& t = l->target;
  auto store = StoresFor(ctx, t.stack, t.release, t.deployment);
  if (!store) return Fail(store.error());
  auto plan = RollbackPlanFor(*store->journal, t.stack, t.release, t.deployment, ctx.Now(), ctx.a.to);
  if (!plan) return Fail(plan.error());
  plan->requested_by = Requester();
  return RunHere(ctx, *plan, false);
}

// A rollout's document, locally or from the server (journal_wire.h).
Result<Doc> ShowDoc(Context& ctx, const std::string& id) {
  return ReadDoc(ctx, "/v1/rollouts/" + UrlQuery(id), [id](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(auto out, RolloutShowJson(s, id));
    SP_ASSIGN_OR_RETURN(auto sent, s.NotificationsOf(id));
    out["notifications"] = NotificationsJson(sent);
    return Doc(out);
  });
}

void PrintHosts(const Doc& hosts) {
  for (const auto& h : hosts) {
    std::printf("  %-12s %-11s %-14s out %s\n", h.value("host", "").c_str(), h.value("state", "").c_str(),
                h.value("last_step", "").c_str(),
                FormatDuration(Millis(h.value("out_of_rotation_ms", int64_t{0}))).c_str());
  }
}

// "12.3s", or "running" while it runs.
std::string DurationOf(const Doc& r) {
  return r.contains("duration_ms") && r["duration_ms"].is_number()
             ? FormatDuration(Millis(r["duration_ms"].get<int64_t>()))
             : "running";
}

void PrintRolloutLine(const Doc& r) {
  std::printf("%s %s %s  %s/%s/%s  %s\n", r.value("id", "").c_str(), r.value("kind", "").c_str(),
              r.value("status", "").c_str(), r.value("stack", "").c_str(), r.value("release", "").c_str(),
              r.value("deployment", "").c_str(), r.value("version", "").c_str());
  std::printf("started %s by %s, %s; artifact %s\n", FormatUtc(r.value("started_ms", int64_t{0})).c_str(),
              r.value("requested_by", "").empty() ? "(unknown)" : r.value("requested_by", "").c_str(),
              DurationOf(r).c_str(), r.value("artifact", "").c_str());
  if (!r.value("error", "").empty()) std::printf("error: %s\n", r.value("error", "").c_str());
}

int Status(Context& ctx) {
  auto d = ShowDoc(ctx, ctx.a.id);
  if (d) *d = Doc{{"rollout", (*d)["rollout"]}, {"hosts", (*d)["hosts"]}};
  return PrintDoc(ctx, d, [](const Doc& doc) {
    PrintRolloutLine(doc["rollout"]);
    PrintHosts(doc["hosts"]);
  });
}

void PrintShow(const Doc& d) {
  const Doc& r = d["rollout"];
  const Doc& plan = d["plan"];
  PrintRolloutLine(r);
  std::printf("artifact %s, %zu host(s), batch %s\n", r.value("artifact", "").c_str(),
              plan.value("hosts", Doc::array()).size(),
              plan.contains("strategy") ? plan["strategy"].value("batch", "1").c_str() : "1");
  PrintHosts(d["hosts"]);
  int64_t begun = 0;
  for (const auto& s : d["steps"]) {
    const std::string phase = s.value("phase", "");
    const int64_t ts = s.value("ts_ms", int64_t{0});
    if (phase == "begin") begun = ts;
    const std::string took = phase == "begin" || begun == 0 ? "" : FormatDuration(Millis(ts - begun));
    std::printf("  %-12s %-14s %-5s %8s %s\n", s.value("host", "").c_str(), s.value("step", "").c_str(), phase.c_str(),
                took.c_str(), s.value("detail", "").c_str());
  }
  if (d.contains("notifications") && !d["notifications"].empty()) {
    std::printf("notifications:\n");
    for (const auto& n : d["notifications"]) {
      std::printf("  %-16s %-22s %-9s %d attempt(s)%s%s\n", n.value("channel", "").c_str(), n.value("event", "").c_str(),
                  n.value("state", "").c_str(), n.value("attempts", 0), n.value("urgent", false) ? " URGENT" : "",
                  n.contains("last_error") ? ("; last: " + n.value("last_error", "")).c_str() : "");
    }
  }
}

int Show(Context& ctx) { return PrintDoc(ctx, ShowDoc(ctx, ctx.a.id), PrintShow); }

int List(Context& ctx) {
  const int limit = static_cast<int>(ctx.a.number > 0 ? ctx.a.number : 20);
  auto d = ReadDoc(ctx, "/v1/rollouts?limit=" + std::to_string(limit),
                   [limit](SqliteStore& s) { return RolloutListJson(s, limit); });
  return PrintDoc(ctx, d, [](const Doc& doc) {
    if (doc["rollouts"].empty()) return;
    std::printf("%-14s %-20s %-22s %-9s %-11s %-9s %-24s %s\n", "ID", "STARTED (UTC)", "BY", "KIND", "STATUS",
                "DURATION", "WHERE", "VERSION");
    for (const auto& r : doc["rollouts"]) {
      const std::string where = r.value("stack", "") + "/" + r.value("release", "") + "/" + r.value("deployment", "");
      std::printf("%-14s %-20s %-22s %-9s %-11s %-9s %-24s %s\n", r.value("id", "").c_str(),
                  FormatUtc(r.value("started_ms", int64_t{0})).c_str(), r.value("requested_by", "").c_str(),
                  r.value("kind", "").c_str(), r.value("status", "").c_str(), DurationOf(r).c_str(), where.c_str(),
                  r.value("version", "").c_str());
    }
  });
}

void RunOptions(CLI::App& app, Args& a) {
  ScopeOptions(app, a);
  app.add_option("-a,--artifact,--image", a.artifact, "Image (repo@sha256:...) or executable/tarball path");
  app.add_option("--version", a.version, "Version shown to people (default: the artifact)");
  app.add_option("--batch", a.batch, "Hosts per batch: N or N% (default from the service file, 1)");
  app.add_option("--max-failures", a.max_failures, "Failed hosts tolerated: N or N% (default 0)");
  app.add_option("--limit", a.limit, "Only these hosts (comma separated)");
  app.add_option("--lock-wait", a.lock_wait, "Wait this long for a busy lock (e.g. 30s)")->capture_default_str();
  app.add_flag("--dry-run", a.dry_run, "Print the frozen plan, run the read-only preflight checks, touch nothing");
  app.add_flag("--wait", a.wait, "Through a server: follow the job's log to its outcome (exit 0 if it succeeded)");
  app.add_option("--wait-timeout", a.wait_timeout, "Give up waiting after this (the job goes on)")
      ->capture_default_str();
  app.add_option("--build", a.build, "Through a server: the build whose artifact ships (default: --artifact's)");
  app.add_flag("--plan-here", a.plan_here,
               "Through a server: plan in this CLI from -c and -i and queue the plan (admin only)");
  app.add_flag("--queue-anyway", a.queue_anyway,
               "Through a server: queue the job even when no agent of its network was seen lately");
  app.add_option("--output", a.output, "text, or json (one event per line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

void LocalRunOptions(CLI::App& app, Args& a) {
  app.add_option("--lock-wait", a.lock_wait, "Wait this long for a busy lock (e.g. 30s)")->capture_default_str();
  app.add_option("--output", a.output, "text, or json (one event per line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

}  // namespace

std::vector<Command> RolloutCommands() {
  auto id = [](CLI::App& app, Args& a) { app.add_option("id", a.id, "Rollout id")->required(); };
  return {
      {{"rollout", "run"}, "Ship an artifact to every host of a (release, deployment), one batch at a time",
       Kind::kRun, Where::kEither, RunOptions, Run},
      {{"rollout", "resume"}, "Finish an interrupted rollout: reconcile each host, then roll the rest", Kind::kRun,
       Where::kLocal,
       [](CLI::App& app, Args& a) {
         app.add_option("id", a.id, "Rollout id (default: the scope's unfinished one)");
         app.add_option("-c,--config", a.config, "Service file")->capture_default_str();
         app.add_option("-i,--inventory", a.inventory, "Inventory file, 'store' or a server URL")->capture_default_str();
         app.add_option("--stack", a.stack, "Stack (default: the service file's)");
         app.add_option("-r,--release", a.release, "Release (default: the only one in the service file)");
         app.add_option("-d,--deployment", a.deployment, "Deployment (with no id)");
         LocalRunOptions(app, a);
       },
       Resume},
      {{"rollout", "status"}, "One rollout's state and its hosts'", Kind::kRead, Where::kEither, id, Status},
      {{"rollout", "list"}, "Recent rollouts", Kind::kRead, Where::kEither,
       [](CLI::App& app, Args& a) { app.add_option("--limit", a.number, "How many (default 20)"); }, List},
      {{"rollout", "show"}, "One rollout: its frozen plan, hosts and journal", Kind::kRead, Where::kEither, id, Show},
      {{"rollout", "undo"}, "Return to the previous successful version, or --to an earlier one (from kept artifacts)",
       Kind::kRun, Where::kEither,
       [](CLI::App& app, Args& a) {
         ScopeOptions(app, a);
         app.add_option("--to", a.to, "A version label or rollout id of an earlier successful rollout (default: the previous)");
         LocalRunOptions(app, a);
         app.add_flag("--wait", a.wait, "Through a server: follow the job's log to its outcome (exit 0 if it succeeded)");
         app.add_option("--wait-timeout", a.wait_timeout, "Give up waiting after this (the job goes on)")
             ->capture_default_str();
         app.add_flag("--queue-anyway", a.queue_anyway,
                      "Through a server: queue the job even when no agent of its network was seen lately");
       },
       Undo},
      {{"rollout", "cancel"}, "Stop a rollout at a host boundary (not available yet)", Kind::kReserved, Where::kNone,
       nullptr, nullptr},
  };
}

}  // namespace sp::cli
