// The inventory service over HTTP (docs/inventory.md, "Inventory service"):
//   GET    /v1/health
//   GET    /v1/inventory                       the whole inventory (file schema)
//   POST   /v1/inventory/apply[?prune=1&dry_run=1]   body: inventory YAML or JSON -> {"changes": [...]}
//   GET    /v1/stacks                          {"stacks": [names]}
//   POST   /v1/stacks[/S/deployments[/D/releases|/D/hosts]]   create in a collection (201, 409 if it exists)
//   GET|PUT|DELETE /v1/stacks/S[/deployments/D[/releases/R|/hosts/H]]
//   GET    /v1/resolve?stack=S&release=R&deployment=D[&limit=a,b]
//   POST   /v1/stacks/S/templates/T/claims     body {"user": U}: 201 new, 200 the user's existing one,
//                                               409 when the pool has no free host
//   GET    /v1/claims
//   DELETE /v1/stacks/S/claims/D               release personal deployment D (teardown first)
// PUT creates (201) or replaces (200); DELETE answers 204.
#include "core/text.h"
#include "inventory/wire.h"
#include "server/api_server.h"

namespace sp {

using namespace http::routes;

namespace {

// "/v1/stacks/a/deployments/b" -> {"stacks", "a", "deployments", "b"}
std::vector<std::string> PathOf(const Request& req) {
  std::vector<std::string> out;
  for (const auto& part : Split(req.path.substr(4), '/')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// Creation in a collection: the body's "name" (for hosts it stays in the
// mapping) names the new object; 409 if it exists.
void Create(ServerContext& ctx, const Request& req, Response& res) {
  auto body = req.Json();
  if (!body) return res.Error(body.error());
  if (!body->contains("name") || !(*body)["name"].is_string()) {
    return res.Error({ErrorCode::kInvalidArgument, "/name: required (the new object's name)"});
  }
  std::vector<std::string> path = PathOf(req);
  const std::string name = (*body)["name"];
  if (path.back() != "hosts") body->erase("name");
  path.push_back(name);
  if (ctx.inventory.Get(path)) {
    return res.Error({ErrorCode::kConflict, "'" + name + "' already exists; PUT replaces it"});
  }
  auto created = ctx.inventory.Put(path, *body);
  if (!created) return res.Error(created.error());
  auto now = ctx.inventory.Get(path);
  if (!now) return res.Error(now.error());
  res.Json(201, *now);
}

void Resolve(ServerContext& ctx, const Request& req, Response& res) {
  for (const char* p : {"stack", "release", "deployment"}) {
    if (!req.Has(p)) return res.Error({ErrorCode::kInvalidArgument, std::string("query parameter '") + p + "' is required"});
  }
  const std::string stack = req.Param("stack"), release = req.Param("release"), deployment = req.Param("deployment"),
                    limit = req.Param("limit");
  int64_t revision = 0;
  auto snap = ctx.inventory.Current(&revision);
  if (!snap) return res.Error(snap.error());
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
    std::lock_guard lk(ctx.cache_mu);
    if (ctx.cache_revision != revision) {
      ctx.resolve_cache.clear();
      ctx.cache_revision = revision;
    }
    if (auto it = ctx.resolve_cache.find(key); it != ctx.resolve_cache.end()) {
      res.status = 200;
      res.body = it->second;
      return;
    }
  }
  auto t = ctx.inventory.Resolve(stack, release, deployment, limit);
  if (!t) return res.Error(t.error());
  std::string body = ResolvedTargetToJson(*t).dump();
  if (cacheable) {
    std::lock_guard lk(ctx.cache_mu);
    if (ctx.cache_revision == revision) {
      if (ctx.resolve_cache.size() >= 100'000) ctx.resolve_cache.clear();  // Bounded.
      ctx.resolve_cache[key] = body;
    }
  }
  res.status = 200;
  res.body = std::move(body);
}

void Claim(ServerContext& ctx, const Request& req, Response& res) {
  auto body = req.Json();
  if (!body) return res.Error(body.error());
  if (!body->contains("user") || !(*body)["user"].is_string()) {
    return res.Error({ErrorCode::kInvalidArgument, "/user: required"});
  }
  const int64_t now = ctx.Now();
  auto c = ctx.inventory.Claim(req.args[0], req.args[1], (*body)["user"], now);
  if (!c) return res.Error(c.error());
  res.Json(c->claimed_ms == now ? 201 : 200, ClaimToJson(*c));
}

// True when a JSON document sets what runs: a dynamic source (a command the
// server runs) or hooks (commands and calls an agent makes in its network).
bool SetsWhatRuns(const Doc& d) {
  if (d.is_object()) {
    for (const auto& [k, v] : d.items()) {
      if (k == "source" || k == "hooks" || SetsWhatRuns(v)) return true;
    }
  } else if (d.is_array()) {
    for (const auto& v : d) {
      if (SetsWhatRuns(v)) return true;
    }
  }
  return false;
}

bool SetsWhatRuns(const Inventory& inv) {
  for (const auto& [_, stack] : inv.stacks) {
    for (const auto& [_, d] : stack.deployments) {
      if (d.source || !d.hooks.empty()) return true;
    }
    for (const auto& [_, t] : stack.templates) {
      if (t.deployment.source || !t.deployment.hooks.empty()) return true;
    }
  }
  return false;
}

// inventory:write, or admin when the write sets anything that runs (a
// dynamic source's command, hooks): only an admin decides what runs.
Access InventoryWrite() {
  return Access::Of(Need::kInventoryWrite, [](const Request& req) -> Result<Target> {
    bool runs = false;
    if (req.path == "/v1/inventory/apply") {
      auto file = ParseInventory(req.body, "request");
      runs = file && SetsWhatRuns(*file);
    } else {
      runs = SetsWhatRuns(Doc::parse(req.body, nullptr, false));
    }
    return Target{runs ? Need::kAdmin : Need::kInventoryWrite, ""};
  });
}

}  // namespace

std::vector<http::Route> InventoryRoutes(ServerContext& ctx) {
  const char* collections = R"(/v1/stacks(/[^/]+/deployments(/[^/]+/(releases|hosts))?)?)";
  const char* objects = R"(/v1/stacks/[^/]+(/deployments/[^/]+(/(releases|hosts)/[^/]+)?)?)";
  inventory::Service& inv = ctx.inventory;
  return {
      {Method::kGet, "/v1/health", Access::Public(), [](const Request&, Response& res) { res.Json(200, {{"ok", true}}); }},
      {Method::kGet, "/v1/inventory", Access::Read(),
       [&inv](const Request&, Response& res) {
         auto cur = inv.Current();
         if (!cur) return res.Error(cur.error());
         res.Json(200, InventoryToJson(**cur));
       }},
      {Method::kPost, "/v1/inventory/apply", InventoryWrite(),
       [&inv](const Request& req, Response& res) {
         auto file = ParseInventory(req.body, "request");
         if (!file) return res.Error(file.error());
         auto r = inv.Apply(*file, req.Flag("prune"), req.Flag("dry_run"));
         if (!r) return res.Error(r.error());
         res.Json(200, {{"changes", r->changes}, {"dry_run", req.Flag("dry_run")}});
       },
       http::Lane::kQuick, kDocumentBodyBytes},
      {Method::kGet, "/v1/stacks", Access::Read(),
       [&inv](const Request&, Response& res) {
         auto cur = inv.Current();
         if (!cur) return res.Error(cur.error());
         Doc names = Doc::array();
         for (const auto& [name, st] : (*cur)->stacks) names.push_back(name);
         res.Json(200, {{"stacks", names}});
       }},
      {Method::kPost, collections, InventoryWrite(), [&ctx](const Request& req, Response& res) { Create(ctx, req, res); },
       http::Lane::kQuick, kDocumentBodyBytes},
      {Method::kGet, objects, Access::Read(),
       [&inv](const Request& req, Response& res) {
         auto doc = inv.Get(PathOf(req));
         if (!doc) return res.Error(doc.error());
         res.Json(200, *doc);
       }},
      {Method::kPut, objects, InventoryWrite(),
       [&inv](const Request& req, Response& res) {
         auto body = req.Json();
         if (!body) return res.Error(body.error());
         auto created = inv.Put(PathOf(req), *body);
         if (!created) return res.Error(created.error());
         auto now = inv.Get(PathOf(req));
         if (!now) return res.Error(now.error());
         res.Json(*created ? 201 : 200, *now);
       },
       http::Lane::kQuick, kDocumentBodyBytes},
      {Method::kDelete, objects, InventoryWrite(),
       [&inv](const Request& req, Response& res) {
         if (auto st = inv.Delete(PathOf(req)); !st) return res.Error(st.error());
         res.status = 204;
       }},
      {Method::kGet, "/v1/resolve", Access::Read(), [&ctx](const Request& req, Response& res) { Resolve(ctx, req, res); }},
      {Method::kPost, R"(/v1/stacks/([^/]+)/templates/([^/]+)/claims)", InventoryWrite(),
       [&ctx](const Request& req, Response& res) { Claim(ctx, req, res); }},
      {Method::kGet, "/v1/claims", Access::Read(),
       [&inv](const Request&, Response& res) { http::JsonList(res, inv.Claims(), "claims", ClaimToJson); }},
      {Method::kDelete, R"(/v1/stacks/([^/]+)/claims/([^/]+))", InventoryWrite(),
       [&ctx](const Request& req, Response& res) {
         if (auto st = ctx.inventory.Release(req.args[0], req.args[1], ctx.options.teardown); !st) {
           return res.Error(st.error());
         }
         res.status = 204;
       }},
  };
}

}  // namespace sp
