// job list | show | logs | retry | cancel
#include <cstdio>
#include <thread>

#include "build/build_log.h"
#include "cli/command.h"
#include "cli/logs.h"
#include "queue/wire.h"
#include "server/api_server.h"
#include "server/server_process.h"

namespace sp::cli {

namespace {

int List(Context& ctx) {
  auto d = ReadDoc(ctx, "/v1/jobs?limit=50", [](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(auto jobs, s.ListJobs(50));
    Doc out = Doc::array();
    for (const auto& j : jobs) out.push_back(JobToJson(j));
    return Doc{{"jobs", out}};
  });
  return PrintDoc(ctx, d, [](const Doc& doc) {
    if (doc["jobs"].empty()) std::printf("no jobs\n");
    for (const auto& j : doc["jobs"]) {
      const std::string owner = j.value("owner", "");
      std::printf("%-8lld %-8s %-10s %d/%d %-14s %s\n", static_cast<long long>(j.value("id", int64_t{0})),
                  j.value("kind", "").c_str(), j.value("state", "").c_str(), j.value("attempts", 0),
                  j.value("max_attempts", 0), owner.empty() ? "-" : owner.c_str(), j.value("error", "").c_str());
    }
  });
}

int Show(Context& ctx) {
  const int64_t id = ctx.a.number;
  auto d = ReadDoc(ctx, "/v1/jobs/" + std::to_string(id), [id](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(Job j, s.GetJob(id));
    return JobToJson(j);
  });
  return PrintDoc(ctx, d, [](const Doc& doc) { std::printf("%s\n", doc.dump(2).c_str()); });  // A job is its JSON.
}

int Change(Context& ctx, bool retry) {
  const int64_t id = ctx.a.number;
  Status st = Ok();
  if (ctx.remote()) {
    auto api = ctx.Api();
    if (!api) return Fail(api.error());
    auto r = (*api)->Call("POST", "/v1/jobs/" + std::to_string(id) + (retry ? "/retry" : "/cancel"), "{}");
    if (!r) st = Err(r.error());
  } else {
    auto store = ctx.Store();
    if (!store) return Fail(store.error());
    const int64_t now = ctx.Now();
    st = retry ? (*store)->Retry(id, now) : (*store)->Cancel(id, now);
  }
  if (!st) return Fail(st.error());
  std::printf("%s %lld\n", retry ? "queued" : "canceled", static_cast<long long>(id));
  return kExitOk;
}

int Logs(Context& ctx) {
  const int64_t id = ctx.a.number;
  if (ctx.remote()) return StreamServerLog(ctx, "/v1/jobs/" + std::to_string(id) + "/log", "job " + std::to_string(id));
  auto store = ctx.Store();
  if (!store) return Fail(store.error());
  if (auto j = (*store)->GetJob(id); !j) return Fail(j.error());
  const std::string path = JobLogPath(DirNextToStore(ctx.StorePath(), "jobs"), id);
  return FollowLocalLog(ctx, path, [&ctx, id] {
    auto j = ctx.Store().value()->GetJob(id);
    return !j || (j->state != JobState::kQueued && j->state != JobState::kLeased);
  });
}

void Id(CLI::App& app, Args& a) { app.add_option("id", a.number, "Job id")->required(); }

}  // namespace

std::vector<Command> JobCommands() {
  return {
      {{"job", "list"}, "Recent jobs: id, kind, state, attempts, owner", Kind::kRead, Where::kEither, nullptr, List},
      {{"job", "show"}, "One job as JSON", Kind::kRead, Where::kEither, Id, Show},
      {{"job", "logs"}, "A job's log lines, as its agent sent them", Kind::kStream, Where::kEither,
       [](CLI::App& app, Args& a) {
         Id(app, a);
         app.add_flag("-f,--follow", a.follow, "Follow until the job ends");
       },
       Logs},
      {{"job", "retry"}, "Queue a dead or canceled job again", Kind::kWrite, Where::kEither, Id,
       [](Context& ctx) { return Change(ctx, true); }},
      {{"job", "cancel"}, "Cancel a queued or leased job", Kind::kWrite, Where::kEither, Id,
       [](Context& ctx) { return Change(ctx, false); }},
  };
}

}  // namespace sp::cli
