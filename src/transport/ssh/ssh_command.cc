#include "transport/ssh/ssh_command.h"

#include <regex>

#include "core/text.h"

namespace sp::ssh {

std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  out += "'";
  return out;
}

std::string RemoteCommandLine(const CommandSpec& spec) {
  std::string s = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH; ";
  if (!spec.cwd.empty()) s += "cd " + ShellQuote(spec.cwd) + " || exit 125; ";
  s += "exec";
  if (spec.timeout) {
    // Whole seconds, rounded up: timeout(1) on old systems takes no fractions.
    const int64_t secs = (spec.timeout->count() + 999) / 1000;
    s += " timeout --kill-after=" + std::to_string(kRemoteKillGrace.count() / 1000) + " " +
         std::to_string(secs < 1 ? 1 : secs);
  }
  if (!spec.env.empty()) {
    s += " env";
    for (const auto& [k, v] : spec.env) s += " " + ShellQuote(k + "=" + v);
  }
  for (const auto& a : spec.argv) s += " " + ShellQuote(a);
  return s;
}

std::string HostKeyProblem::Describe(const std::string& who) const {
  std::string s = kind == kChanged ? "host key of " + who + " (" + host + ") has CHANGED"
                                   : "host key of " + who + " (" + host + ") is not in known_hosts";
  if (!fingerprint.empty()) s += "; it offered " + fingerprint;
  s += kind == kChanged ? "; if the change is expected, remove the old entry (ssh-keygen -R) and run `sallyport hosts trust`"
                        : "; verify the fingerprint, then record it with `sallyport hosts trust`";
  return s;
}

std::optional<HostKeyProblem> ParseHostKeyProblem(const std::string& err) {
  static const std::regex unknown(R"(No \S+ host key is known for (\S+) and you have requested strict checking)");
  static const std::regex changed(R"(Host key for (\S+) has changed and you have requested strict checking)");
  static const std::regex offered(R"(Server host key: (\S+) (SHA256:[A-Za-z0-9+/=]+))");
  static const std::regex sent(R"(The fingerprint for the (\S+) key sent by the remote host is\s+(SHA256:[A-Za-z0-9+/=]+))");
  HostKeyProblem p;
  std::smatch m;
  if (std::regex_search(err, m, changed)) {
    p.kind = HostKeyProblem::kChanged;
    p.host = m[1];
  } else if (std::regex_search(err, m, unknown)) {
    p.kind = HostKeyProblem::kUnknown;
    p.host = m[1];
  } else if (err.find("Host key verification failed") != std::string::npos) {
    p.kind = HostKeyProblem::kUnknown;
  } else {
    return std::nullopt;
  }
  // The last server key printed is the one of the failing hop.
  for (auto it = std::sregex_iterator(err.begin(), err.end(), offered); it != std::sregex_iterator(); ++it) {
    p.fingerprint = (*it)[1].str() + " " + (*it)[2].str();
  }
  if (p.fingerprint.empty() && std::regex_search(err, m, sent)) {
    std::string f = m[2];
    if (!f.empty() && f.back() == '.') f.pop_back();
    p.fingerprint = m[1].str() + " " + f;
  }
  return p;
}

std::string SshErrorText(const std::string& err) {
  std::string out;
  for (const std::string& raw : Split(err, '\n')) {
    std::string line = Trim(raw);
    if (line.empty() || StartsWith(line, "debug") || StartsWith(line, "OpenSSH_") || StartsWith(line, "@") ||
        StartsWith(line, "Warning: Permanently added")) {
      continue;
    }
    if (!out.empty()) out += "; ";
    out += line;
  }
  if (out.size() > 600) out = "..." + out.substr(out.size() - 600);
  return out;
}

std::string KnownHostsName(const std::string& address, int port) {
  return port == 22 ? address : "[" + address + "]:" + std::to_string(port);
}

}  // namespace sp::ssh
