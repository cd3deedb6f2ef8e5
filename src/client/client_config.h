// Where a CLI command finds its server, CA and token, in one order for
// every command: the flag (--server, --ca), else the environment
// ($SALLYPORT_SERVER, $SALLYPORT_CA, $SALLYPORT_TOKEN), else the client configuration file
// ($SALLYPORT_CONFIG, else $XDG_CONFIG_HOME/sallyport/config.yml, else
// ~/.config/sallyport/config.yml; config/client_config.h).
#pragma once

#include <string>

#include "core/error.h"

namespace sp {

struct ClientConfig {
  std::string server;  // Empty: no server configured (commands act locally).
  std::string ca;
  std::string token;
  std::string file;    // The configuration file read, if any (for messages).
};

// Where `sallyport login` keeps its token: $XDG_CONFIG_HOME/sallyport/token,
// else ~/.config/sallyport/token ("" when neither is known). Read after
// $SALLYPORT_TOKEN and the configuration's token_file.
std::string DefaultTokenPath();

// A file named by $SALLYPORT_CONFIG must exist; the default one may not.
Result<ClientConfig> LoadClientConfig(const std::string& server_flag, const std::string& ca_flag = "");

}  // namespace sp
