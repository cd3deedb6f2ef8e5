// The client configuration every CLI command reads (docs/cli.md): which
// server it acts through, the CA that server's certificate is checked
// against, and the token it presents. A YAML file:
//   version: 1
//   server: http://build.example:8700
//   ca: /etc/sallyport/ca.pem          # checked once the server speaks TLS
//   token_file: ~/.config/sallyport/token
#pragma once

#include <string>

#include "core/error.h"

namespace sp {

struct ClientFile {
  std::string server;      // Empty: none configured.
  std::string ca;          // Absolute path; empty: the system store.
  std::string token_file;  // Absolute path; empty: none.
};

// Errors name file, line and field; unknown keys are errors.
Result<ClientFile> ParseClientConfig(const std::string& yaml_text, const std::string& file_name);

}  // namespace sp
