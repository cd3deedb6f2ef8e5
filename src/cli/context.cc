#include <cstdio>
#include <cstdlib>

#include "cli/command.h"
#include "client/http_client.h"
#include "core/text.h"
#include "rollout/event_format.h"
#include "store/sqlite/store_file.h"

namespace sp::cli {

int ExitFor(const Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kNotFound:
    case ErrorCode::kUnauthenticated:
    case ErrorCode::kPermissionDenied:
      return kExitUsage;
    case ErrorCode::kConflict:
      return kExitLockHeld;
    case ErrorCode::kUnavailable:
    case ErrorCode::kTimeout:
      return kExitUnavailable;
    case ErrorCode::kCancelled:
      return kExitInterrupted;
    case ErrorCode::kInternal:
      return kExitFailed;
  }
  return kExitFailed;
}

int Fail(const Error& e) {
  std::fprintf(stderr, "error: %s\n", e.message.c_str());
  return ExitFor(e);
}

void PrintJson(const Doc& doc) {
  std::printf("%s\n", doc.dump(2).c_str());
  std::fflush(stdout);
}

void PrintJsonLine(const Doc& doc) {
  std::printf("%s\n", doc.dump().c_str());
  std::fflush(stdout);
}

std::string Ago(int64_t then_ms, int64_t now_ms) {
  if (then_ms <= 0) return "-";
  return FormatDuration(Millis(std::max<int64_t>(0, now_ms - then_ms))) + " ago";
}

void PrintEvent(const Event& e, bool json, const Masker* mask) {
  if (json) {
    std::string line = (mask ? mask->Mask(e.ToJsonLine()) : e.ToJsonLine()) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
    return;
  }
  const std::string line = mask ? mask->Mask(FormatEvent(e)) : FormatEvent(e);
  if (line.empty()) return;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

Result<Doc> ReadDoc(Context& ctx, const std::string& api_path, const std::function<Result<Doc>(SqliteStore&)>& local) {
  if (ctx.remote()) {
    SP_ASSIGN_OR_RETURN(ApiClient * api, ctx.Api());
    return api->Call("GET", api_path);
  }
  SP_ASSIGN_OR_RETURN(SqliteStore * store, ctx.Store());
  return local(*store);
}

int PrintDoc(Context& ctx, const Result<Doc>& doc, const std::function<void(const Doc&)>& text) {
  if (!doc) return Fail(doc.error());
  if (ctx.json()) {
    PrintJson(*doc);
  } else {
    text(*doc);
    std::fflush(stdout);
  }
  return kExitOk;
}

void ScopeOptions(CLI::App& app, Args& a) {
  app.add_option("-c,--config", a.config, "Service file")->capture_default_str();
  app.add_option("-i,--inventory", a.inventory,
                 "Inventory file, or 'store' (the state database's), or a server URL (http://host:port)")
      ->capture_default_str();
  app.add_option("--stack", a.stack, "Stack (default: the service file's)");
  app.add_option("-r,--release", a.release, "Release (default: the only one in the service file)");
  app.add_option("-d,--deployment", a.deployment, "Deployment (environment)")->required();
}

Context::Context(const Command& cmd, Args& args, const Extensions& extensions) : a(args), ext(extensions), cmd_(cmd) {}

Status Context::Decide() {
  if (cmd_.where == Where::kNone) return Ok();
  if (cmd_.where == Where::kLocal) {
    remote_ = false;
    return Ok();
  }
  if (a.local && !a.server.empty()) return Err(ErrorCode::kInvalidArgument, "--local and --server: choose one");
  SP_ASSIGN_OR_RETURN(client_, LoadClientConfig(a.server, a.ca));
  if (cmd_.where == Where::kServer) {
    if (client_.server.empty()) {
      return Err(ErrorCode::kInvalidArgument,
                 "this command acts through a server: give --server URL, or set $SALLYPORT_SERVER");
    }
    remote_ = true;
    return Ok();
  }
  remote_ = !a.local && !client_.server.empty();
  return Ok();
}

std::string Context::StorePath() const {
  if (!a.store.empty()) return a.store;
  if (const char* s = std::getenv("SALLYPORT_STORE"); s && *s) return s;
  return ".sallyport/state.db";
}

Result<SqliteStore*> Context::Store() {
  if (!store_) {
    SP_ASSIGN_OR_RETURN(store_, OpenStoreFile(StorePath()));
  }
  return store_.get();
}

Result<ApiClient*> Context::Api() {
  if (!api_) {
    if (client_.server.empty()) {
      SP_ASSIGN_OR_RETURN(client_, LoadClientConfig(a.server, a.ca));
    }
    if (client_.server.empty()) {
      return Err(ErrorCode::kInvalidArgument, "no server: give --server URL, or set $SALLYPORT_SERVER");
    }
    SP_ASSIGN_OR_RETURN(api_, HttpApiClient::Create({client_.server, client_.token, client_.ca}));
  }
  return api_.get();
}

}  // namespace sp::cli
