#include "support/alertmanager_fixture.h"

#include <filesystem>

#include "core/text.h"
#include "support/http_get.h"

namespace sp::test {

Status AlertmanagerFixture::Start() {
  const std::string bin = FindProgram("prometheus-alertmanager", {"/usr/bin/prometheus-alertmanager"});
  if (bin.empty()) return Err(ErrorCode::kUnavailable, "prometheus-alertmanager not installed (scripts/deps)");
  if (!port_) port_ = FreePort();
  std::filesystem::create_directories(dir_ + "/data");
  WriteFile(dir_ + "/alertmanager.yml",
            "route:\n  receiver: none\nreceivers:\n  - name: none\n");
  try {
    daemon_ = Daemon({bin, "--config.file=" + dir_ + "/alertmanager.yml", "--storage.path=" + dir_ + "/data",
                      "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--cluster.listen-address=",
                      "--log.level=warn"},
                     dir_ + "/alertmanager.log");
  } catch (const std::exception& e) {
    return Err(ErrorCode::kUnavailable, std::string("starting alertmanager: ") + e.what());
  }
  const StartWait w = WaitForStart(
      daemon_,
      [&] {
        auto r = HttpGet(port_, "/-/ready");
        return r && r->status == 200;
      },
      std::chrono::milliseconds(20000), std::chrono::milliseconds(50));
  if (w != StartWait::kReady) {
    return Err(ErrorCode::kUnavailable, "alertmanager did not become ready:\n" + LogTail());
  }
  return Ok();
}

nlohmann::json AlertmanagerFixture::Silences() const {
  auto r = HttpGet(port_, "/api/v2/silences");
  if (!r || r->status != 200) return nlohmann::json::array();
  return nlohmann::json::parse(r->body, nullptr, false);
}

std::vector<nlohmann::json> AlertmanagerFixture::SilencesWith(const std::string& text, const std::string& state) const {
  std::vector<nlohmann::json> out;
  for (const auto& s : Silences()) {
    if (s.value("comment", std::string()).find(text) == std::string::npos) continue;
    if (!state.empty() && s["status"].value("state", std::string()) != state) continue;
    out.push_back(s);
  }
  return out;
}

std::string AlertmanagerFixture::LogTail(int lines) const { return LastLines(ReadFile(dir_ + "/alertmanager.log"), lines); }

}  // namespace sp::test
