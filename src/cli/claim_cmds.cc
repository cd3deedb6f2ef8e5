// claim list | create | release | expire: personal deployments.
#include <cstdio>

#include "cli/command.h"
#include "core/text.h"
#include "inventory/ansible/ansible_import.h"
#include "inventory/service.h"
#include "inventory/wire.h"

namespace sp::cli {

namespace {

// The teardown of a released or expired claim, run here against the local store.
inventory::Service::Teardown LocalTeardown(SqliteStore& store) {
  EngineSetup setup(&store, &store, Millis(30'000));
  setup.on_event = [](const Event& e) { PrintEvent(e, false); };
  return TeardownHook(setup);
}

Result<std::unique_ptr<inventory::Service>> LocalService(Context& ctx) {
  SP_ASSIGN_OR_RETURN(SqliteStore * store, ctx.Store());
  return std::make_unique<inventory::Service>(*store, inventory::ServiceOptions{inventory::DynamicSourceRunner()});
}

int List(Context& ctx) {
  auto d = ReadDoc(ctx, "/v1/claims", [](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(auto claims, inventory::Service(s).Claims());
    Doc out = Doc::array();
    for (const auto& c : claims) out.push_back(ClaimToJson(c));
    return Doc{{"claims", out}};
  });
  const int64_t now = ctx.Now();
  return PrintDoc(ctx, d, [now](const Doc& doc) {
    if (doc["claims"].empty()) std::printf("no claims\n");
    for (const auto& c : doc["claims"]) {
      const int64_t expires = c.value("expires_ms", int64_t{0});
      std::printf("%-16s %-20s %-10s host %-12s %s\n", c.value("stack", "").c_str(), c.value("deployment", "").c_str(),
                  c.value("user", "").c_str(), c.value("host", "").c_str(),
                  expires == 0           ? "no TTL"
                  : expires > now        ? ("expires in " + FormatDuration(Millis(expires - now))).c_str()
                                         : "EXPIRED");
    }
  });
}

int Create(Context& ctx) {
  const Args& a = ctx.a;
  Doc claim;
  if (ctx.remote()) {
    auto api = ctx.Api();
    if (!api) return Fail(api.error());
    auto d = (*api)->Call("POST", "/v1/stacks/" + UrlQuery(a.stack) + "/templates/" + UrlQuery(a.template_name) + "/claims",
                          Doc{{"user", a.user}}.dump());
    if (!d) return Fail(d.error());
    claim = *d;
  } else {
    auto service = LocalService(ctx);
    if (!service) return Fail(service.error());
    auto r = (*service)->Claim(a.stack, a.template_name, a.user, ctx.Now());
    if (!r) return Fail(r.error());
    claim = ClaimToJson(*r);
  }
  PrintJson(claim);
  return kExitOk;
}

int Release(Context& ctx) {
  const Args& a = ctx.a;
  if (ctx.remote()) {
    auto api = ctx.Api();
    if (!api) return Fail(api.error());
    auto d = (*api)->Call("DELETE", "/v1/stacks/" + UrlQuery(a.stack) + "/claims/" + UrlQuery(a.deployment));
    if (!d) return Fail(d.error());
  } else {
    auto service = LocalService(ctx);
    if (!service) return Fail(service.error());
    if (auto st = (*service)->Release(a.stack, a.deployment, LocalTeardown(*ctx.Store().value())); !st) {
      return Fail(st.error());
    }
  }
  std::printf("released %s\n", a.deployment.c_str());
  return kExitOk;
}

int Expire(Context& ctx) {
  auto service = LocalService(ctx);
  if (!service) return Fail(service.error());
  auto released = (*service)->Expire(ctx.Now(), LocalTeardown(*ctx.Store().value()));
  if (!released) return Fail(released.error());
  for (const auto& r : *released) {
    std::printf("expired %s/%s (host %s)\n", r.stack.c_str(), r.deployment.c_str(), r.host.c_str());
  }
  std::printf("%zu expired claim(s) released\n", released->size());
  return kExitOk;
}

}  // namespace

std::vector<Command> ClaimCommands() {
  return {
      {{"claim", "list"}, "Personal deployments claimed: owner, host, expiry", Kind::kRead, Where::kEither, nullptr, List},
      {{"claim", "create"}, "Claim a personal deployment from a template (one free pool host)", Kind::kWrite,
       Where::kEither,
       [](CLI::App& app, Args& a) {
         app.add_option("template", a.template_name, "Template name, e.g. personal")->required();
         app.add_option("--stack", a.stack)->required();
         app.add_option("--user", a.user, "User name ([a-z0-9][a-z0-9-]{0,31})")->required();
       },
       Create},
      {{"claim", "release"}, "Release a personal deployment (tears it down, frees its host)", Kind::kWrite,
       Where::kEither,
       [](CLI::App& app, Args& a) {
         app.add_option("deployment", a.deployment, "e.g. personal-ben")->required();
         app.add_option("--stack", a.stack)->required();
       },
       Release},
      {{"claim", "expire"}, "Tear down and release every personal deployment past its TTL", Kind::kWrite,
       Where::kLocal, nullptr, Expire},
  };
}

}  // namespace sp::cli
