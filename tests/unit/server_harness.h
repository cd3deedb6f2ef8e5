// A server's routes in this process on an in-memory store, with a
// FakeClock: what the route and agent unit tests call through a
// RouterClient (no sockets).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/digest.h"
#include "inventory/service.h"
#include "server/api_server.h"
#include "store/sqlite/sqlite_store.h"
#include "unit/seams.h"

namespace sp::test {

struct ServerHarness {
  ServerHarness() : store(std::move(*SqliteStore::Open(":memory:"))), inventory(*store) {
    options.clock = &clock;
    options.queue = store.get();
    options.auth = store.get();
    options.journal = store.get();
    options.locks = store.get();
    server = std::make_unique<ApiServer>(inventory, options);
  }
  // A new agent token bound to `labels`; the secret the agent presents.
  std::string AgentToken(const std::string& name, std::map<std::string, std::string> labels) {
    const std::string secret = name + "-secret";
    (void)store->PutAgentToken(Sha256Hex(secret), QueueStore::AgentToken{name, std::move(labels)});
    return secret;
  }
  // A new API token with `scopes`; the secret its holder presents.
  std::string Token(const std::string& name, std::vector<std::string> scopes) {
    const std::string secret = name + "-api-secret";
    auth::ApiToken t;
    t.name = name;
    t.scopes = std::move(scopes);
    t.creator = "test";
    (void)store->PutApiToken(Sha256Hex(secret), t);
    return secret;
  }
  // A client with an admin token (made once), or with `token`.
  std::unique_ptr<RouterClient> Admin() {
    if (admin_.empty()) admin_ = Token("test-admin", {"admin"});
    return Client(admin_);
  }
  std::unique_ptr<RouterClient> Client(const std::string& token = "") {
    return std::make_unique<RouterClient>(server->router(), token);
  }
  FakeClock clock;
  std::unique_ptr<SqliteStore> store;
  inventory::Service inventory;
  ApiServerOptions options;
  std::unique_ptr<ApiServer> server;
  std::string admin_;
};

}  // namespace sp::test
