// A client of a Sallyport server's HTTP API: the seam between the agent and
// the CLI on one side and the server on the other. HttpApiClient is the
// real one; unit tests route calls to a fake or to the server's router.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"

namespace sp {

using ApiDoc = nlohmann::ordered_json;

class ApiClient {
 public:
  virtual ~ApiClient() = default;
  // One request with a JSON body ("" for none). An API error becomes an
  // Error with the server's code and message; 204 gives null.
  virtual Result<ApiDoc> Call(const std::string& method, const std::string& path, const std::string& body = "") = 0;
  // The body of a GET as it is (logs).
  virtual Result<std::string> GetText(const std::string& path) = 0;
  // A GET whose body is handed over chunk by chunk as it arrives, until the
  // server ends it or `on_data` returns false.
  virtual Status Stream(const std::string& path, const std::function<bool(const char* data, size_t n)>& on_data) = 0;
  // "http://host:port", for messages.
  virtual std::string server() const = 0;
};

// The API error codes' wire names (ErrorCodeName) back to codes; unknown
// ones are kUnavailable.
ErrorCode ErrorCodeFromName(const std::string& name);

}  // namespace sp
