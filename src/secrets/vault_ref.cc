#include "secrets/vault_ref.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>
#include <mutex>

#include "core/file.h"
#include "core/text.h"
#include "secrets/vault_yaml.h"

namespace sp {
namespace {

bool KeyChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'; }

// Top-level `key`'s scalar in a decrypted YAML text.
Result<std::string> KeyOf(const std::string& yaml, const std::string& key, const std::string& where) {
  try {
    const YAML::Node doc = YAML::Load(yaml);
    const YAML::Node v = doc.IsMap() ? doc[key] : YAML::Node();
    if (!v) return Err(ErrorCode::kNotFound, where + " has no top-level key '" + key + "'");
    if (!v.IsScalar()) return Err(ErrorCode::kInvalidArgument, where + ": '" + key + "' is not a single value");
    return v.Scalar();
  } catch (const YAML::Exception& e) {
    // The parser's message may quote the text: only its position is said.
    return Err(ErrorCode::kInvalidArgument, where + " is not YAML once decrypted (line " +
                                                std::to_string(e.mark.line + 1) + ")");
  }
}


}  // namespace

Result<std::string> OpenVaultValue(const std::string& path, const std::string& key,
                                   const std::vector<VaultSecret>& secrets) {
  auto text = ReadTextFile(path);
  if (!text) return Err(ErrorCode::kNotFound, "vault file " + path + " cannot be read");
  if (IsVaultText(*text)) {
    auto plain = VaultDecrypt(*text, secrets);
    if (!plain) return Err(plain.error().Wrap("vault file " + path));
    if (key.empty()) return StripLineBreaks(std::move(*plain));
    return KeyOf(*plain, key, "vault file " + path);
  }
  if (key.empty()) {
    return Err(ErrorCode::kInvalidArgument, path + " is not vault-encrypted as a whole: name a key (vault:" + path +
                                                "#KEY)");
  }
  SP_ASSIGN_OR_RETURN(auto values, FindInlineVaults(*text));
  for (const auto& v : values) {
    if (v.key != key) continue;
    auto plain = VaultDecrypt(v.envelope, secrets);
    if (!plain) return Err(plain.error().Wrap(path + ":" + std::to_string(v.line) + ": " + key));
    return plain;
  }
  return Err(ErrorCode::kNotFound, path + " has no !vault value under key '" + key + "'");
}


bool IsValidVaultRef(std::string_view ref) {
  if (!ref.starts_with("vault:/")) return false;
  const std::string_view rest = ref.substr(6);
  const size_t hash = rest.find('#');
  const std::string_view path = rest.substr(0, hash);
  if (path.size() < 2 || path.find('\n') != std::string_view::npos || path.find('\0') != std::string_view::npos) {
    return false;
  }
  if (hash == std::string_view::npos) return true;
  const std::string_view key = rest.substr(hash + 1);
  return !key.empty() && key.size() <= 128 && std::all_of(key.begin(), key.end(), KeyChar);
}

RefReader WithVaultRefs(RefReader inner, std::vector<VaultSecret> secrets) {
  struct Cached {
    int64_t mtime_ns = 0, size = 0;
    std::string value;
  };
  struct State {
    std::vector<VaultSecret> secrets;
    std::mutex mu;
    std::map<std::string, Cached> cache;
    std::map<std::string, std::string> opened;  // Stored secrets' envelopes, opened.
  };
  auto state = std::make_shared<State>();
  state->secrets = std::move(secrets);
  return [inner = std::move(inner), state](const std::string& ref) -> Result<std::string> {
    if (ref.starts_with(kVaultTextRef)) {
      if (state->secrets.empty()) {
        return Err(ErrorCode::kUnavailable,
                   "a stored secret is vault-encrypted and this server has no vault password "
                   "(server --vault-password-file or --vault-id)");
      }
      const std::string envelope = ref.substr(std::string_view(kVaultTextRef).size());
      std::lock_guard l(state->mu);
      if (auto it = state->opened.find(envelope); it != state->opened.end()) return it->second;
      SP_ASSIGN_OR_RETURN(std::string value, VaultDecrypt(envelope, state->secrets));
      if (state->opened.size() >= 4096) state->opened.clear();
      state->opened.emplace(envelope, value);
      return value;
    }
    if (!ref.starts_with("vault:")) return inner(ref);
    if (!IsValidVaultRef(ref)) return Err(ErrorCode::kInvalidArgument, "not a vault reference: vault:/path[#key]");
    if (state->secrets.empty()) {
      return Err(ErrorCode::kUnavailable, "credential " + ref +
                                              " is vault-encrypted and this server has no vault password "
                                              "(server --vault-password-file or --vault-id)");
    }
    const size_t hash = ref.find('#');
    const std::string path = ref.substr(6, hash == std::string::npos ? std::string::npos : hash - 6);
    const std::string key = hash == std::string::npos ? "" : ref.substr(hash + 1);
    struct stat st {};
    const bool seen = ::stat(path.c_str(), &st) == 0;
    const int64_t mtime = seen ? int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec : 0;
    std::lock_guard l(state->mu);
    auto it = state->cache.find(ref);
    if (seen && it != state->cache.end() && it->second.mtime_ns == mtime && it->second.size == st.st_size) {
      return it->second.value;
    }
    SP_ASSIGN_OR_RETURN(std::string value, OpenVaultValue(path, key, state->secrets));
    if (seen) state->cache[ref] = Cached{mtime, static_cast<int64_t>(st.st_size), value};
    return value;
  };
}

}  // namespace sp
