// inventory apply | export | resolve | get | set | delete | import, hosts trust
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <set>

#include "cli/command.h"
#include "config/service_config.h"
#include "core/file.h"
#include "core/text.h"
#include "inventory/ansible/ansible_import.h"
#include "inventory/service.h"
#include "inventory/wire.h"
#include "transport/ssh/host_keys.h"

namespace sp::cli {

namespace {

std::vector<std::string> PathParts(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& p : Split(path, '/')) {
    if (!p.empty()) out.push_back(p);
  }
  return out;
}

Result<std::string> ReadInput(const std::string& file) {
  if (file == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  return ReadTextFile(file);
}

// Asks on the terminal; never when stdin is not one.
bool Confirm(size_t n) {
  if (!::isatty(STDIN_FILENO)) return false;
  std::fprintf(stderr, "apply %zu change(s)? [y/N] ", n);
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "yes";
}

// The inventory service on the local store, or the server's API: each
// command uses whichever its context says.
class Inventory {
 public:
  explicit Inventory(Context& ctx) : ctx_(ctx) {}
  Status Open() {
    if (ctx_.remote()) return ctx_.Api().map([this](ApiClient* a) { api_ = a; });
    SP_ASSIGN_OR_RETURN(SqliteStore * store, ctx_.Store());
    service_ = std::make_unique<inventory::Service>(*store, inventory::ServiceOptions{inventory::DynamicSourceRunner()});
    return Ok();
  }
  ApiClient* api() { return api_; }
  inventory::Service* service() { return service_.get(); }

 private:
  Context& ctx_;
  ApiClient* api_ = nullptr;
  std::unique_ptr<inventory::Service> service_;
};

int Apply(Context& ctx) {
  const Args& a = ctx.a;
  auto text = ReadInput(a.file);
  if (!text) return Fail(text.error());
  auto file = ParseInventory(*text, a.file == "-" ? "stdin" : a.file);  // File, line and field named before anything is sent.
  if (!file) return Fail(file.error());
  Inventory inv(ctx);
  if (auto st = inv.Open(); !st) return Fail(st.error());
  auto changes = [&](bool dry) -> Result<std::vector<std::string>> {
    if (inv.api()) {
      std::string q = std::string("/v1/inventory/apply?prune=") + (a.prune ? "1" : "0") + "&dry_run=" + (dry ? "1" : "0");
      SP_ASSIGN_OR_RETURN(Doc d, inv.api()->Call("POST", q, InventoryToJson(*file).dump()));
      return d.at("changes").get<std::vector<std::string>>();
    }
    SP_ASSIGN_OR_RETURN(inventory::ApplyResult r, inv.service()->Apply(*file, a.prune, dry));
    return r.changes;
  };
  auto planned = changes(true);
  if (!planned) return Fail(planned.error());
  for (const auto& c : *planned) std::printf("%s\n", c.c_str());
  if (planned->empty()) {
    std::printf("inventory: no changes\n");
    return kExitOk;
  }
  if (a.dry_run) return kExitOk;
  if (!a.yes && !Confirm(planned->size())) {
    return Fail({ErrorCode::kInvalidArgument, "not applied (answer y, or pass --yes)"});
  }
  auto done = changes(false);
  if (!done) return Fail(done.error());
  std::printf("inventory: applied %zu change(s)\n", done->size());
  return kExitOk;
}

int Export(Context& ctx) {
  Inventory inv(ctx);
  if (auto st = inv.Open(); !st) return Fail(st.error());
  Doc doc;
  if (inv.api()) {
    auto d = inv.api()->Call("GET", "/v1/inventory");
    if (!d) return Fail(d.error());
    doc = *d;
  } else {
    auto cur = inv.service()->Current();
    if (!cur) return Fail(cur.error());
    doc = InventoryToJson(**cur);
  }
  const std::string text = ctx.json() ? doc.dump(2) + "\n" : JsonToYaml(doc);
  if (ctx.a.to_file.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return kExitOk;
  }
  std::FILE* f = std::fopen(ctx.a.to_file.c_str(), "w");
  const bool written = f && std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (!f || std::fclose(f) != 0 || !written) return Fail({ErrorCode::kUnavailable, "cannot write " + ctx.a.to_file});
  return kExitOk;
}

int ResolveCmd(Context& ctx) {
  const Args& a = ctx.a;
  Inventory inv(ctx);
  if (auto st = inv.Open(); !st) return Fail(st.error());
  Doc out;
  if (inv.api()) {
    auto d = inv.api()->Call("GET", "/v1/resolve?stack=" + UrlQuery(a.stack) + "&release=" + UrlQuery(a.release) +
                                        "&deployment=" + UrlQuery(a.deployment) +
                                        (a.limit.empty() ? "" : "&limit=" + UrlQuery(a.limit)));
    if (!d) return Fail(d.error());
    out = *d;
  } else {
    auto t = inv.service()->Resolve(a.stack, a.release, a.deployment, a.limit);
    if (!t) return Fail(t.error());
    out = ResolvedTargetToJson(*t);
  }
  PrintJson(out);
  return kExitOk;
}

int Get(Context& ctx) {
  Inventory inv(ctx);
  if (auto st = inv.Open(); !st) return Fail(st.error());
  auto d = inv.api() ? inv.api()->Call("GET", "/v1/" + ctx.a.path) : inv.service()->Get(PathParts(ctx.a.path));
  if (!d) return Fail(d.error());
  PrintJson(*d);
  return kExitOk;
}

int Set(Context& ctx) {
  const Args& a = ctx.a;
  auto text = ReadInput(a.file);
  if (!text) return Fail(text.error());
  Doc body = Doc::parse(*text, nullptr, false);
  if (body.is_discarded()) return Fail({ErrorCode::kInvalidArgument, a.file + ": not valid JSON"});
  Inventory inv(ctx);
  if (auto st = inv.Open(); !st) return Fail(st.error());
  Status st = inv.api() ? inv.api()->Call("PUT", "/v1/" + a.path, body.dump()).map([](Doc) {})
                        : inv.service()->Put(PathParts(a.path), body).map([](bool) {});
  if (!st) return Fail(st.error());
  std::printf("set %s\n", a.path.c_str());
  return kExitOk;
}

int Delete(Context& ctx) {
  Inventory inv(ctx);
  if (auto st = inv.Open(); !st) return Fail(st.error());
  Status st = inv.api() ? inv.api()->Call("DELETE", "/v1/" + ctx.a.path).map([](Doc) {})
                        : inv.service()->Delete(PathParts(ctx.a.path));
  if (!st) return Fail(st.error());
  std::printf("deleted %s\n", ctx.a.path.c_str());
  return kExitOk;
}

int Import(Context& ctx) {
  const Args& a = ctx.a;
  auto imported = inventory::LoadAnsibleInventory(a.file);
  if (!imported) return Fail(imported.error());
  auto hosts = inventory::ToHostSpecs(*imported);
  if (!hosts) return Fail(hosts.error());
  Inventory inv(ctx);
  if (auto st = inv.Open(); !st) return Fail(st.error());
  // One host per write: each is validated with the whole stack.
  for (const auto& h : *hosts) {
    const std::string path = "stacks/" + a.stack + "/deployments/" + a.deployment + "/hosts/" + h.name;
    const Doc body = HostToJson(h);
    Status st = inv.api() ? inv.api()->Call("PUT", "/v1/" + path, body.dump()).map([](Doc) {})
                          : inv.service()->Put(PathParts(path), body).map([](bool) {});
    if (!st) return Fail(st.error().Wrap("host " + h.name));
    std::string tags;
    for (const auto& [k, v] : h.tags) tags += (tags.empty() ? "" : ",") + k;
    std::printf("%-20s %-16s %s\n", h.name.c_str(), h.address.c_str(), tags.c_str());
  }
  std::printf("imported %zu host(s) into %s/%s\n", hosts->size(), a.stack.c_str(), a.deployment.c_str());
  return kExitOk;
}

}  // namespace

int HostsTrust(Context& ctx);

std::vector<Command> InventoryCommands() {
  auto scope = [](CLI::App& app, Args& a) {
    app.add_option("--stack", a.stack)->required();
    app.add_option("-r,--release", a.release)->required();
    app.add_option("-d,--deployment", a.deployment)->required();
    app.add_option("--limit", a.limit, "Only these hosts (comma separated)");
  };
  return {
      {{"inventory", "apply"}, "Make the inventory match a file (prints the changes)", Kind::kWrite, Where::kEither,
       [](CLI::App& app, Args& a) {
         app.add_option("-f,--file", a.file, "Inventory file (YAML or JSON; - for stdin)")->required();
         app.add_flag("--prune", a.prune, "Delete what the file omits");
         app.add_flag("--yes", a.yes, "Apply without asking");
         app.add_flag("--dry-run", a.dry_run, "Only print the changes");
       },
       Apply},
      {{"inventory", "export"}, "The inventory in the file format (YAML; JSON with --output json)", Kind::kRead,
       Where::kEither, [](CLI::App& app, Args& a) { app.add_option("--to", a.to_file, "Write to this file"); }, Export},
      {{"inventory", "resolve"}, "Bastion, load balancers, hosts and env of (stack, release, deployment)", Kind::kRead,
       Where::kEither, scope, ResolveCmd},
      {{"inventory", "get"}, "One object as JSON, e.g. stacks/shop/deployments/prod", Kind::kRead, Where::kEither,
       [](CLI::App& app, Args& a) { app.add_option("path", a.path, "Object path")->required(); }, Get},
      {{"inventory", "set"}, "Create or replace one object from JSON", Kind::kWrite, Where::kEither,
       [](CLI::App& app, Args& a) {
         app.add_option("path", a.path, "Object path")->required();
         app.add_option("-f,--file", a.file, "JSON file (- for stdin)")->required();
       },
       Set},
      {{"inventory", "delete"}, "Delete one object", Kind::kWrite, Where::kEither,
       [](CLI::App& app, Args& a) { app.add_option("path", a.path, "Object path")->required(); }, Delete},
      {{"inventory", "import"}, "Add an Ansible inventory's hosts to a deployment's pool (groups become tags)",
       Kind::kWrite, Where::kEither,
       [](CLI::App& app, Args& a) {
         app.add_option("-f,--file", a.file, "Ansible inventory: INI, YAML or dynamic-inventory JSON")->required();
         app.add_option("--stack", a.stack)->required();
         app.add_option("-d,--deployment", a.deployment)->required();
       },
       Import},
      {{"hosts", "trust"}, "Record the host keys of a deployment's bastion and hosts in known_hosts", Kind::kWrite,
       Where::kNone,
       [](CLI::App& app, Args& a) {
         ScopeOptions(app, a);
         app.add_option("--known-hosts", a.known_hosts,
                        "known_hosts file (default: the deployment's ssh.known_hosts, else ~/.ssh/known_hosts)");
       },
       HostsTrust},
  };
}

}  // namespace sp::cli
