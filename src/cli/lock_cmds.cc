// lock list | release
#include <cstdio>

#include "cli/command.h"
#include "core/text.h"
#include "rollout/journal_wire.h"
#include "rollout/lock.h"
#include "wiring/engine_wiring.h"

namespace sp::cli {

namespace {

int List(Context& ctx) {
  const int64_t now = ctx.Now();
  auto d = ReadDoc(ctx, "/v1/locks", [now](SqliteStore& s) { return LockListJson(s, now); });
  return PrintDoc(ctx, d, [now](const Doc& doc) {
    if (doc["locks"].empty()) std::printf("no locks\n");
    for (const auto& l : doc["locks"]) {
      const int64_t expires = l.value("expires_ms", int64_t{0});
      std::printf("%-40s %s  %s  %s\n", l.value("key", "").c_str(), l.value("holder", "").c_str(),
                  l.value("reason", "").c_str(),
                  expires > now ? ("expires in " + FormatDuration(Millis(expires - now))).c_str() : "EXPIRED");
    }
  });
}

int Release(Context& ctx) {
  const std::string& key = ctx.a.key;
  if (Split(key, '/').size() != 3) {
    return Fail({ErrorCode::kInvalidArgument, "expected stack/release/deployment, got '" + Printable(key) + "'"});
  }
  Status st = Ok();
  if (ctx.remote()) {
    auto api = ctx.Api();
    if (!api) return Fail(api.error());
    std::string path = "/v1/locks";
    for (const auto& part : Split(key, '/')) path += "/" + UrlQuery(part);
    if (ctx.a.force) path += "?force=1";
    auto r = (*api)->Call("DELETE", path);
    if (!r) st = Err(r.error());
  } else {
    auto store = ctx.Store();
    if (!store) return Fail(store.error());
    st = OperatorRelease(**store, key, ctx.a.force, ctx.Now(), HolderAliveHere);
  }
  if (!st) return Fail(st.error());
  std::printf("released %s%s\n", key.c_str(), ctx.a.force ? " (forced)" : "");
  return kExitOk;
}

}  // namespace

std::vector<Command> LockCommands() {
  return {
      {{"lock", "list"}, "Locks with holder, reason and expiry", Kind::kRead, Where::kEither, nullptr, List},
      {{"lock", "release"}, "Release a lock whose holder is gone (--force: also a live one)", Kind::kWrite,
       Where::kEither,
       [](CLI::App& app, Args& a) {
         app.add_option("key", a.key, "stack/release/deployment")->required();
         app.add_flag("--force", a.force, "Release it although its holder is live (risks two rollouts at once)");
       },
       Release},
  };
}

}  // namespace sp::cli
