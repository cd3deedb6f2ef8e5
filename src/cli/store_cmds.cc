// backup
#include <cstdio>

#include "cli/command.h"
#include "store/sqlite/sqlite_backup.h"

namespace sp::cli {

namespace {

int Backup(Context& ctx) {
  const std::string from = ctx.StorePath();
  auto done = BackupStore(from, ctx.a.to_file);
  if (!done) return Fail(done.error());
  std::printf("backed up %s to %s: %lld pages, %lld bytes, integrity ok\n", from.c_str(), ctx.a.to_file.c_str(),
              static_cast<long long>(done->pages), static_cast<long long>(done->bytes));
  return kExitOk;
}

}  // namespace

std::vector<Command> StoreCommands() {
  return {
      {{"backup"}, "Copy the state database while the server runs (restore: docs/cli.md)", Kind::kWrite,
       Where::kLocal,
       [](CLI::App& app, Args& a) {
         app.add_option("--to", a.to_file, "The new file (never overwritten; mode 0600)")->required();
       },
       Backup},
  };
}

}  // namespace sp::cli
