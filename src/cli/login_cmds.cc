// user add, login
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "auth/password.h"
#include "cli/command.h"
#include "client/client_config.h"
#include "core/file.h"
#include "core/text.h"

namespace sp::cli {

namespace {

// The first line of stdin; on a terminal, prompted for with echo off. Never argv.
Result<std::string> ReadPassword(const char* prompt) {
  const bool tty = ::isatty(STDIN_FILENO);
  termios old{};
  if (tty) {
    std::fprintf(stderr, "%s", prompt);
    std::fflush(stderr);
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  if (!got || line.empty()) return Err(ErrorCode::kInvalidArgument, "no password on standard input");
  return line;
}

int UserAdd(Context& ctx) {
  const Args& a = ctx.a;
  if (!IsValidName(a.name)) return Fail({ErrorCode::kInvalidArgument, "user: a name ([a-z0-9-], 1-63)"});
  for (const auto& s : a.scopes) {
    if (auto st = auth::ValidateScope(s); !st) return Fail(st.error());
  }
  auto password = ReadPassword("password: ");
  if (!password) return Fail(password.error());
  auto hash = auth::HashPassword(*password);
  if (!hash) return Fail(hash.error());
  auto store = ctx.Store();
  if (!store) return Fail(store.error());
  if (auto st = (*store)->PutUser({a.name, *hash, a.scopes, ctx.Now()}); !st) return Fail(st.error());
  std::string scopes;
  for (const auto& s : a.scopes) scopes += (scopes.empty() ? "" : ", ") + s;
  std::printf("user %s: %s\n", a.name.c_str(), scopes.c_str());
  return kExitOk;
}

// The token written 0600 (its directory 0700), replacing an older one whole.
Status KeepToken(const std::string& path, const std::string& token) {
  std::error_code ec;
  const std::string dir = std::filesystem::path(path).parent_path();
  std::filesystem::create_directories(dir, ec);
  if (ec) return Err(ErrorCode::kUnavailable, "cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  const std::string tmp = path + ".new";
  std::filesystem::remove(tmp, ec);
  SP_TRY(WriteNewFile(tmp, token + "\n", 0600));
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Err(ErrorCode::kUnavailable, "cannot write " + path + ": " + ec.message());
  return Ok();
}

int Login(Context& ctx) {
  const Args& a = ctx.a;
  const std::string path = DefaultTokenPath();
  if (path.empty()) return Fail({ErrorCode::kInvalidArgument, "no $XDG_CONFIG_HOME or $HOME to keep the token in"});
  auto password = ReadPassword(("password for " + a.user + ": ").c_str());
  if (!password) return Fail(password.error());
  auto api = ctx.Api();
  if (!api) return Fail(api.error());
  Doc body{{"user", a.user}, {"password", *password}};
  if (!a.expires.empty()) {
    auto d = ParseDuration(a.expires);
    if (!d) return Fail(d.error().Wrap("--expires"));
    body["expires_in_s"] = d->count() / 1000;
  }
  auto r = (*api)->Call("POST", "/v1/login", body.dump());
  if (!r) return Fail(r.error());
  if (auto st = KeepToken(path, r->value("token", "")); !st) return Fail(st.error());
  const int64_t left_min = (r->value("expires_ms", int64_t{0}) - ctx.Now() + 30'000) / 60'000;
  std::printf("logged in to %s as %s (token %s, for %lldh%02lldm); kept in %s\n", (*api)->server().c_str(),
              a.user.c_str(), r->value("name", "").c_str(), static_cast<long long>(left_min / 60),
              static_cast<long long>(left_min % 60), path.c_str());
  return kExitOk;
}

}  // namespace

std::vector<Command> LoginCommands() {
  return {
      {{"user", "add"}, "Create a user (or set its password and scopes); the password is read from standard input",
       Kind::kWrite, Where::kLocal,
       [](CLI::App& app, Args& a) {
         app.add_option("name", a.name, "User name")->required();
         app.add_option("--scope", a.scopes, "The scopes a login gets (as token create's; repeatable)")->required();
       },
       UserAdd},
      {{"login"}, "Log in with a password (read from standard input); the token is kept in ~/.config/sallyport/token",
       Kind::kWrite, Where::kServer,
       [](CLI::App& app, Args& a) {
         app.add_option("--user", a.user, "User name")->required();
         app.add_option("--expires", a.expires, "How long the login lasts (default 12h, at most 720h)");
       },
       Login},
  };
}

}  // namespace sp::cli
