#include "cli/rollout_stores.h"

#include "client/http_client.h"
#include "core/text.h"

namespace sp::cli {

bool InventoryFromServer(const Args& a) {
  return StartsWith(a.inventory, "http://") || StartsWith(a.inventory, "https://");
}

Result<Stores> StoresFor(Context& ctx, const std::string& stack, const std::string& release,
                         const std::string& deployment) {
  Stores s;
  if (!InventoryFromServer(ctx.a)) {
    SP_ASSIGN_OR_RETURN(SqliteStore * store, ctx.Store());
    s.journal = store;
    s.locks = store;
    return s;
  }
  SP_ASSIGN_OR_RETURN(s.api, HttpApiClient::Create({ctx.a.inventory, ctx.client().token, ctx.client().ca}));
  const std::string path = "/v1/journal/" + UrlQuery(stack) + "/" + UrlQuery(release) + "/" + UrlQuery(deployment);
  s.remote = std::make_unique<RemoteJobStore>(
      [api = s.api.get(), path](const nlohmann::json& body) -> Result<nlohmann::json> {
        SP_ASSIGN_OR_RETURN(Doc answer, api->Call("POST", path, body.dump()));
        return nlohmann::json::parse(answer.dump());
      });
  s.journal = s.remote.get();
  s.locks = s.remote.get();
  return s;
}

}  // namespace sp::cli
