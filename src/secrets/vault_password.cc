#include "secrets/vault_password.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>

#include "core/fd.h"
#include "core/file.h"
#include "core/text.h"

namespace sp {
namespace {

std::string Named(const VaultSource& s) { return s.id.empty() ? "the vault password" : "vault id " + s.id + "'s password"; }

Result<std::string> Prompt(const VaultSource& s) {
  const int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return Err(ErrorCode::kInvalidArgument, "no terminal to ask " + Named(s) +
                                                " on: give --vault-password-file, --vault-password-env or --vault-id");
  }
  UniqueFd tty(fd);
  const std::string ask = "Vault password" + (s.id.empty() ? std::string() : " (" + s.id + ")") + ": ";
  (void)!::write(fd, ask.data(), ask.size());
  termios old{};
  const bool term = ::tcgetattr(fd, &old) == 0;
  if (term) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(fd, TCSANOW, &quiet);
  }
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line += c;
  if (term) ::tcsetattr(fd, TCSANOW, &old);
  (void)!::write(fd, "\n", 1);
  while (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Result<std::string> RunScript(const VaultSource& s, ProcessRunner& processes) {
  CommandSpec spec;
  spec.argv = {s.source};
  if (s.source.ends_with("-client")) spec.argv.insert(spec.argv.end(), {"--vault-id", s.id.empty() ? "default" : s.id});
  spec.timeout = Millis{30'000};
  SP_ASSIGN_OR_RETURN(ExitStatus st, processes.Run(spec));
  if (!st.ok()) {
    // Its stderr may say why; its stdout (a password) is never shown.
    return Err(ErrorCode::kUnavailable, "vault password script " + s.source + " failed: " + st.Describe());
  }
  return StripLineBreaks(std::move(st.out));
}

}  // namespace

Result<VaultSource> ParseVaultId(const std::string& spec) {
  VaultSource s;
  const size_t at = spec.find('@');
  s.source = at == std::string::npos ? spec : spec.substr(at + 1);
  if (at != std::string::npos) s.id = spec.substr(0, at);
  if (s.id == "default") s.id.clear();
  if (s.source.empty()) return Err(ErrorCode::kInvalidArgument, "--vault-id " + spec + ": no password source");
  if (s.id.find_first_of(";\r\n ") != std::string::npos) {
    return Err(ErrorCode::kInvalidArgument, "--vault-id " + spec + ": an id cannot hold ';', blanks or line breaks");
  }
  return s;
}

Result<VaultSecret> ReadVaultSecret(const VaultSource& s, ProcessRunner& processes) {
  std::string password;
  if (s.source == "prompt") {
    SP_ASSIGN_OR_RETURN(password, Prompt(s));
  } else if (s.source.starts_with("env:")) {
    const char* v = std::getenv(s.source.substr(4).c_str());
    if (!v) return Err(ErrorCode::kInvalidArgument, "environment variable " + s.source.substr(4) + " is not set");
    password = v;
  } else {
    struct stat st{};
    if (::stat(s.source.c_str(), &st) != 0) {
      return Err(ErrorCode::kNotFound, "vault password file " + s.source + " does not exist");
    }
    if (S_ISREG(st.st_mode) && (st.st_mode & 0111) && ::access(s.source.c_str(), X_OK) == 0) {
      SP_ASSIGN_OR_RETURN(password, RunScript(s, processes));
    } else {
      SP_ASSIGN_OR_RETURN(password, ReadTextFile(s.source));
      password = Trim(password);
    }
  }
  if (password.empty()) return Err(ErrorCode::kInvalidArgument, Named(s) + " from " + s.source + " is empty");
  return VaultSecret{s.id, std::move(password)};
}

Result<std::vector<VaultSecret>> ReadVaultSecrets(const std::vector<VaultSource>& sources, ProcessRunner& processes) {
  std::vector<VaultSecret> out;
  for (const auto& s : sources) {
    SP_ASSIGN_OR_RETURN(auto secret, ReadVaultSecret(s, processes));
    out.push_back(std::move(secret));
  }
  return out;
}

}  // namespace sp
