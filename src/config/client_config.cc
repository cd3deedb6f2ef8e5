#include "config/client_config.h"

#include "config/yaml_util.h"

namespace sp {

Result<ClientFile> ParseClientConfig(const std::string& text, const std::string& file_name) {
  yaml::Reader r(file_name);
  SP_ASSIGN_OR_RETURN(yaml::Map m, r.LoadTop(text, {"version", "server", "ca", "token_file"}));
  ClientFile out;
  if (const yaml::Val* v = m.Get("server")) {
    SP_ASSIGN_OR_RETURN(out.server, r.AsNonEmptyString(*v));
    if (out.server.rfind("http://", 0) != 0 && out.server.rfind("https://", 0) != 0) {
      return Err(r.Fail(*v, "expected an http:// or https:// URL"));
    }
  }
  if (const yaml::Val* v = m.Get("ca")) {
    SP_ASSIGN_OR_RETURN(out.ca, r.AsAbsolutePath(*v));
  }
  if (const yaml::Val* v = m.Get("token_file")) {
    SP_ASSIGN_OR_RETURN(out.token_file, r.AsAbsolutePath(*v));
  }
  return out;
}

}  // namespace sp
