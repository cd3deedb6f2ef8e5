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
  std::unique_ptr<RouterClient> Client(const std::string& token = "") {
    return std::make_unique<RouterClient>(server->router(), token);
  }
  FakeClock clock;
  std::unique_ptr<SqliteStore> store;
  inventory::Service inventory;
  ApiServerOptions options;
  std::unique_ptr<ApiServer> server;
};

}  // namespace sp::test
