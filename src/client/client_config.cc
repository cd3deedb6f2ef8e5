#include "client/client_config.h"

#include <cstdlib>
#include <filesystem>

#include "config/client_config.h"
#include "core/file.h"
#include "core/text.h"

namespace sp {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// $XDG_CONFIG_HOME/sallyport, else ~/.config/sallyport; "" when neither is known.
std::string ConfigDir() {
  if (std::string xdg = Env("XDG_CONFIG_HOME"); !xdg.empty()) return xdg + "/sallyport";
  if (std::string home = Env("HOME"); !home.empty()) return home + "/.config/sallyport";
  return "";
}

std::string DefaultConfigPath() {
  const std::string dir = ConfigDir();
  return dir.empty() ? "" : dir + "/config.yml";
}

}  // namespace

std::string DefaultTokenPath() {
  const std::string dir = ConfigDir();
  return dir.empty() ? "" : dir + "/token";
}

Result<ClientConfig> LoadClientConfig(const std::string& server_flag, const std::string& ca_flag) {
  ClientConfig c;
  std::string path = Env("SALLYPORT_CONFIG");
  const bool named = !path.empty();
  if (!named) path = DefaultConfigPath();
  ClientFile file;
  std::error_code ec;
  if (!path.empty() && (named || std::filesystem::exists(path, ec))) {
    SP_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
    SP_ASSIGN_OR_RETURN(file, ParseClientConfig(text, path));
    c.file = path;
  }
  c.server = !server_flag.empty() ? server_flag : !Env("SALLYPORT_SERVER").empty() ? Env("SALLYPORT_SERVER") : file.server;
  c.ca = !ca_flag.empty() ? ca_flag : !Env("SALLYPORT_CA").empty() ? Env("SALLYPORT_CA") : file.ca;
  c.token = Env("SALLYPORT_TOKEN");
  if (c.token.empty() && !file.token_file.empty()) {
    SP_ASSIGN_OR_RETURN(std::string token, ReadTextFile(file.token_file));
    c.token = Trim(token);
  }
  if (const std::string login = DefaultTokenPath(); c.token.empty() && !login.empty()) {
    if (auto token = ReadTextFile(login)) c.token = Trim(*token);  // `sallyport login`'s, when there is one.
  }
  return c;
}

}  // namespace sp
