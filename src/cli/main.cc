// sallyport: the CLI. Parses arguments from the command table, prints, and
// exits with the one exit-code policy (command.h); the work is done by the
// apps (server, agent) and the domain behind them.
#include <cstdio>
#include <map>

#include "cli/cli.h"
#include "runner/runner.h"

namespace sp::cli {

namespace {

const char* NounSummary(const std::string& noun) {
  static const std::map<std::string, const char*> kNouns = {
      {"rollout", "Rolling releases of an artifact to a (release, deployment)"},
      {"lock", "The lock of each (stack, release, deployment)"},
      {"job", "Jobs in the durable queue, run by agents"},
      {"build", "Builds: a pipeline run for one commit"},
      {"project", "Repositories the build server watches"},
      {"inventory", "Stacks, deployments, releases and hosts"},
      {"hosts", "Host keys of a deployment's bastion and hosts"},
      {"claim", "Personal deployments claimed from a template"},
      {"agent", "Agents that run jobs inside their network"},
      {"token", "API tokens (scopes) and agent tokens (labels)"},
      {"audit", "Who did what, when: every mutating API request"},
      {"user", "People who log in with a password (sallyport login)"},
      {"secrets", "Ansible Vault files and values: encrypt, decrypt, view, edit, rekey"},
  };
  auto it = kNouns.find(noun);
  return it == kNouns.end() ? "" : it->second;
}

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kRead: return "read";
    case Kind::kWrite: return "write";
    case Kind::kStream: return "stream";
    case Kind::kRun: return "run";
    case Kind::kReserved: return "reserved";
  }
  return "";
}

const char* WhereName(Where w) {
  switch (w) {
    case Where::kEither: return "server-or-local";
    case Where::kLocal: return "local";
    case Where::kServer: return "server";
    case Where::kNone: return "none";
  }
  return "";
}

// The options every command of its kind and place has.
void CommonOptions(CLI::App& leaf, Args& a, const Command& c) {
  if (c.where == Where::kEither || c.where == Where::kServer) {
    leaf.add_option("--server", a.server, "Server URL (default $SALLYPORT_SERVER, then the client configuration)");
    leaf.add_option("--ca", a.ca,
                    "CA certificate (PEM) the server's must be signed by (default $SALLYPORT_CA, then the client "
                    "configuration's ca, then the system's CAs)");
  }
  if (c.where == Where::kEither) {
    leaf.add_flag("--local", a.local, "Act on the local state database even when a server is configured");
  }
  if (c.where == Where::kEither || c.where == Where::kLocal) {
    leaf.add_option("--store", a.store, "Local state database (default $SALLYPORT_STORE or .sallyport/state.db)");
  }
  if (c.kind == Kind::kRead || c.kind == Kind::kStream) {
    leaf.add_option("--output", a.output, "text or json")->check(CLI::IsMember({"text", "json"}))->capture_default_str();
  }
}

// `sallyport __commands`: the table as JSON (for tests and completion).
int PrintTable(CLI::App& app) {
  Doc out = Doc::array();
  for (const Command& c : Commands()) {
    CLI::App* leaf = &app;
    for (const auto& p : c.path) leaf = leaf->get_subcommand(p);
    Doc positionals = Doc::array(), required = Doc::array();
    for (const CLI::Option* o : leaf->get_options()) {
      if (o->get_positional()) positionals.push_back(o->get_name());
      else if (o->get_required()) required.push_back(o->get_name());
    }
    out.push_back({{"path", c.path}, {"summary", c.summary}, {"kind", KindName(c.kind)},
                   {"where", WhereName(c.where)}, {"positionals", positionals}, {"required", required}});
  }
  PrintJson(out);
  return kExitOk;
}

}  // namespace

const std::vector<Command>& Commands() {
  static const std::vector<Command> all = [] {
    std::vector<Command> out;
    for (auto part : {RolloutCommands(), LockCommands(), JobCommands(), BuildCommands(), InventoryCommands(),
                      ClaimCommands(), AgentCommands(), TokenCommands(), LoginCommands(), StoreCommands(), NotifyCommands(),
                      SecretsCommands(), StatusCommands()}) {
      for (auto& c : part) out.push_back(std::move(c));
    }
    // Verbs kept for coming features, so that the table is extended, not reshuffled.
    for (auto [noun, summary] : {std::pair{"promote", "Ship the digest a previous environment runs"},
                                 std::pair{"approve", "Approve a gated promotion"},
                                 std::pair{"metrics", "Delivery metrics"}}) {
      out.push_back({{noun}, std::string(summary) + " (not available yet)", Kind::kReserved, Where::kNone, nullptr,
                     nullptr});
    }
    return out;
  }();
  return all;
}

int Main(int argc, char** argv, const Extensions& ext) {
  CLI::App app{"Sallyport: rolling releases with zero failed requests"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sallyport 0.2.0");
  Args a;
  std::map<std::string, CLI::App*> nouns;
  std::vector<std::pair<CLI::App*, const Command*>> leaves;
  for (const Command& c : Commands()) {
    CLI::App* parent = &app;
    std::string key;
    for (size_t i = 0; i + 1 < c.path.size(); ++i) {
      key += "/" + c.path[i];
      CLI::App*& group = nouns[key];
      if (!group) {
        group = parent->add_subcommand(c.path[i], NounSummary(c.path[i]));
        group->require_subcommand(1);
      }
      parent = group;
    }
    // A leaf may also be a parent (`server` and `server init-tls`).
    CLI::App*& leaf = nouns[key + "/" + c.path.back()];
    if (!leaf) leaf = parent->add_subcommand(c.path.back(), c.summary);
    if (c.options) c.options(*leaf, a);
    CommonOptions(*leaf, a, c);
    leaves.emplace_back(leaf, &c);
  }
  CLI::App* table = app.add_subcommand("__commands", "")->group("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version.
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (table->parsed()) return PrintTable(app);
  const Command* chosen = nullptr;  // The deepest command parsed.
  for (auto [leaf, c] : leaves) {
    if (leaf->parsed() && (!chosen || c->path.size() > chosen->path.size())) chosen = c;
  }
  if (const Command* c = chosen) {
    if (c->kind == Kind::kReserved) {
      std::fprintf(stderr, "sallyport %s: not available yet\n", c->path[0].c_str());
      return kExitUnavailable;
    }
    Context ctx(*c, a, ext);
    if (auto st = ctx.Decide(); !st) return Fail(st.error());
    return c->run(ctx);
  }
  return kExitUsage;
}

}  // namespace sp::cli

