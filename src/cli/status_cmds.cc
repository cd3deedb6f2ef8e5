// status: what runs where (deploy/status.h), locally or from the server.

#include <cstdio>

#include "cli/command.h"
#include "core/text.h"
#include "deploy/status.h"
#include "inventory/service.h"

namespace sp::cli {

namespace {

std::string Age(const Doc& current) {
  return FormatDuration(Millis(current.value("age_ms", int64_t{0}) / 1000 * 1000)) + " ago";
}

std::string CommitOf(const Doc& current) {
  if (!current.contains("build") || !current["build"].is_object()) {
    const int64_t id = current.value("build_id", int64_t{0});
    return id > 0 ? "build " + std::to_string(id) : "-";
  }
  const Doc& b = current["build"];
  return b.value("sha", "").substr(0, 12) + " " + b.value("author", "");
}

void PrintRow(const Doc& r) {
  const std::string scope = r.value("stack", "") + "/" + r.value("release", "") + "/" + r.value("deployment", "");
  std::string version = "-", age = "-", commit = "-", running = "-", lock = "-";
  if (r["current"].is_object()) {
    version = r["current"].value("version", "");
    age = Age(r["current"]);
    commit = CommitOf(r["current"]);
  }
  if (r["running"].is_object()) {
    const Doc& run = r["running"];
    running = run.value("version", "") + " " + std::to_string(run.value("hosts_done", 0)) + "/" +
              std::to_string(run.value("hosts_total", 0)) + " hosts (" + run.value("rollout", "") + ")";
  }
  if (r["lock"].is_object()) lock = r["lock"].value("holder", "");
  std::printf("%-36s %-14s %-14s %-28s %-32s %s\n", scope.c_str(), version.c_str(), age.c_str(), commit.c_str(),
              running.c_str(), lock.c_str());
}

int Status(Context& ctx) {
  const int64_t now = ctx.Now();
  // Locally, the inventory is -i's (a file, or "store": the state database's).
  auto d = ReadDoc(ctx, "/v1/status", [now, file = ctx.a.status_inventory](SqliteStore& s) -> Result<Doc> {
    std::shared_ptr<const Inventory> inv;
    if (file == "store") {
      inventory::Service service(s, inventory::ServiceOptions{});
      SP_ASSIGN_OR_RETURN(inv, service.Current());
    } else {
      SP_ASSIGN_OR_RETURN(Inventory loaded, LoadInventory(file));
      inv = std::make_shared<const Inventory>(std::move(loaded));
    }
    return DeliveryStatusJson({inv.get(), &s, &s, &s}, now);
  });
  return PrintDoc(ctx, d, [](const Doc& doc) {
    if (doc["releases"].empty()) {
      std::printf("no releases in the inventory\n");
      return;
    }
    std::printf("%-36s %-14s %-14s %-28s %-32s %s\n", "STACK/RELEASE/DEPLOYMENT", "VERSION", "SINCE", "COMMIT",
                "RUNNING", "LOCK");
    for (const auto& r : doc["releases"]) PrintRow(r);
  });
}

}  // namespace

std::vector<Command> StatusCommands() {
  return {
      {{"status"}, "What runs where: each release x deployment's version, commit, age, running rollout and lock",
       Kind::kRead, Where::kEither,
       [](CLI::App& app, Args& a) {
         app.add_option("-i,--inventory", a.status_inventory,
                        "Locally: 'store' (the state database's inventory) or an inventory file")
             ->capture_default_str();
       },
       Status},
  };
}

}  // namespace sp::cli
