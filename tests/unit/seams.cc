#include "unit/seams.h"

#include <filesystem>
#include <fstream>

#include "client/api_client.h"
#include "core/text.h"

namespace sp::test {

Result<ExitStatus> FakeProcessRunner::Run(const CommandSpec& spec) {
  std::lock_guard lk(mu);
  calls.push_back(spec.argv);
  stdin_seen.push_back(spec.stdin_data);
  std::string key = spec.argv.empty() ? "" : std::filesystem::path(spec.argv[0]).filename().string();
  if (spec.argv.size() > 1) key += " " + spec.argv[1];
  if (auto it = cannot_start.find(key); it != cannot_start.end()) return Err(it->second);
  ExitStatus st;
  st.exit_code = 0;
  if (auto it = answers.find(key); it != answers.end()) st = it->second;
  if (spec.on_line) {
    for (const auto& l : Split(st.out, '\n')) {
      if (!l.empty()) spec.on_line(false, l);
    }
  }
  return st;
}

Result<ExitStatus> FakeStepRunner::Run(const StepCommand& cmd) {
  calls.push_back(cmd);
  std::string key = cmd.argv.empty() ? "" : std::filesystem::path(cmd.argv[0]).filename().string();
  if (key == "docker" && cmd.argv.size() > 1) key += " " + cmd.argv[1];
  if (on_run) on_run(cmd);
  for (const auto& l : lines[key]) cmd.on_line(false, l);
  ExitStatus st;
  st.exit_code = 0;
  if (auto it = answers.find(key); it != answers.end()) st = it->second;
  if (cmd.cancel && cmd.cancel->load()) st.canceled = true;
  return st;
}

Result<std::vector<RemoteHead>> FakeVcs::ListHeads(const std::string& url, Millis, const GitAccess&) {
  calls.push_back("ls " + url);
  return heads;
}

Status FakeVcs::Checkout(const std::string& url, const std::string& branch, const std::string& sha,
                         const std::string& dir, Millis, const LineCallback& on_line, const GitAccess&) {
  calls.push_back("checkout " + url + " " + branch + " " + sha);
  if (checkout_error) return Err(*checkout_error);
  std::filesystem::create_directories(dir);
  for (const auto& [path, content] : files) {
    std::filesystem::create_directories(std::filesystem::path(dir + "/" + path).parent_path());
    std::ofstream(dir + "/" + path) << content;
  }
  if (on_line) on_line(false, "checked out " + sha.substr(0, 12));
  return Ok();
}

Result<CommitInfo> FakeVcs::ReadCommit(const std::string&) { return CommitInfo{"Ada", "the commit"}; }

void RouterClient::Fail(const std::string& key, Error e, bool once) {
  std::lock_guard lk(mu_);
  faults_[key] = Fault{std::move(e), once};
}

std::vector<std::string> RouterClient::Calls() {
  std::lock_guard lk(mu_);
  return calls_;
}

int RouterClient::Count(const std::string& key) {
  std::lock_guard lk(mu_);
  int n = 0;
  for (const auto& c : calls_) n += c.rfind(key, 0) == 0;
  return n;
}

http::Response RouterClient::Send(const std::string& method, const std::string& path, const std::string& body) {
  const std::string key = method + " " + path;
  {
    std::lock_guard lk(mu_);
    calls_.push_back(key);
    for (auto it = faults_.begin(); it != faults_.end(); ++it) {
      if (key.rfind(it->first, 0) != 0) continue;
      http::Response res;
      res.Error(it->second.error);
      if (it->second.once) faults_.erase(it);
      return res;
    }
  }
  http::Request req;
  req.method = method == "GET" ? http::Method::kGet
               : method == "PUT" ? http::Method::kPut
               : method == "DELETE" ? http::Method::kDelete
                                    : http::Method::kPost;
  const size_t q = path.find('?');
  req.path = path.substr(0, q);
  if (q != std::string::npos) {
    for (const auto& kv : Split(path.substr(q + 1), '&')) {
      const size_t eq = kv.find('=');
      req.params.emplace(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
    }
  }
  req.body = body;
  if (!token_.empty()) req.headers["authorization"] = "Bearer " + token_;
  return router_.Handle(std::move(req));
}

Result<ApiDoc> RouterClient::Call(const std::string& method, const std::string& path, const std::string& body) {
  http::Response res = Send(method, path, body);
  if (res.status == 204) return ApiDoc();
  ApiDoc doc = ApiDoc::parse(res.body, nullptr, false);
  if (res.status >= 300) {
    const bool api_error = doc.is_object() && doc.contains("error");
    return Err(api_error ? ErrorCodeFromName(doc["error"].value("code", "")) : ErrorCode::kUnavailable,
               api_error ? doc["error"].value("message", "") : res.body);
  }
  return doc;
}

Result<std::string> RouterClient::GetText(const std::string& path) {
  http::Response res = Send("GET", path, "");
  if (res.status != 200) return Err(ErrorCode::kUnavailable, path + ": HTTP " + std::to_string(res.status));
  if (!res.stream) return res.body;
  std::string out;
  bool done = false;
  http::StreamSink sink{[&](const char* d, size_t n) { return out.append(d, n), true; }, [&] { done = true; },
                        [] { return true; }};
  while (!done && res.stream(sink)) {
  }
  return out;
}

Status RouterClient::Stream(const std::string& path, const std::function<bool(const char* data, size_t n)>& on_data) {
  auto text = GetText(path);
  if (!text) return Err(text.error());
  on_data(text->data(), text->size());
  return Ok();
}

}  // namespace sp::test
