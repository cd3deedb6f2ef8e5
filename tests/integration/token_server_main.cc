// sp-token-server: the test token server (support/token_server.h) as a
// program, for the lab, whose registry runs in a network namespace.
//   sp-token-server --listen ADDR:PORT --cert F --key F --signer-cert F --signer-key F
//                   --user U --password-file F [--issuer I]
// Runs until SIGTERM; logs one line per token request on stderr.
#include <csignal>
#include <cstdio>
#include <map>
#include <string>

#include "core/text.h"
#include "support/test_util.h"
#include "support/token_server.h"

namespace {
sp::test::TokenServer* g_server = nullptr;
}

int main(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 1; i + 1 < argc; i += 2) a[argv[i]] = argv[i + 1];
  for (const char* k : {"--listen", "--cert", "--key", "--signer-cert", "--signer-key", "--user", "--password-file"}) {
    if (!a.count(k)) {
      std::fprintf(stderr, "sp-token-server: %s is required\n", k);
      return 2;
    }
  }
  const std::string listen = a["--listen"];
  const size_t colon = listen.rfind(':');
  sp::test::TokenServer::Options o;
  o.host = listen.substr(0, colon);
  o.port = std::stoi(listen.substr(colon + 1));
  o.user = a["--user"];
  o.password = sp::Trim(sp::test::ReadFile(a["--password-file"]));
  if (a.count("--issuer")) o.issuer = a["--issuer"];
  o.log = true;
  sp::test::TlsFiles tls{"", a["--cert"], a["--key"]};
  auto server = sp::test::TokenServer::Start(tls, a["--signer-key"], a["--signer-cert"], o);
  if (!server) {
    std::fprintf(stderr, "sp-token-server: %s\n", server.error().message.c_str());
    return 1;
  }
  g_server = server->get();
  std::signal(SIGTERM, [](int) { g_server->Stop(); });
  std::signal(SIGINT, [](int) { g_server->Stop(); });
  std::fprintf(stderr, "sp-token-server: %s\n", (*server)->realm().c_str());
  (*server)->Wait();
  return 0;
}
