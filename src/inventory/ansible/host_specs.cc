#include "inventory/ansible/ansible_import.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "core/text.h"
#include "inventory/ansible/internal.h"

namespace sp::inventory {
namespace ansible_internal {

// ---------------------------------------------------------------------------
// Sallyport hosts.

namespace {

// Unix login names as the inventory file accepts them: [a-z_][a-z0-9_-]{0,31}.
bool IsUserName(const std::string& s) {
  if (s.empty() || s.size() > 32 || !(std::islower(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || IsDigit(c) || c == '_' || c == '-';
  });
}

// Tag keys as selectors accept them: letters, digits and - _ . / :.
bool IsTagKey(const std::string& s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':';
  });
}

}  // namespace
}  // namespace ansible_internal

using ansible_internal::IsTagKey;
using ansible_internal::IsUserName;

Result<std::vector<HostSpec>> ToHostSpecs(const ImportedInventory& inv) {
  std::vector<HostSpec> out;
  for (const ImportedHost& h : inv.hosts) {
    auto bad = [&](const std::string& what) {
      return Err(ErrorCode::kInvalidArgument, "host '" + h.name + "': " + what);
    };
    if (!IsValidHostName(h.name)) return bad("invalid host name (expected letters, digits, '-', '.', '_')");
    if (!IsValidAddress(h.address)) {
      return bad("address '" + h.address + "' (ansible_host) is not an IPv4 address or DNS name");
    }
    if (h.ssh_port < 1 || h.ssh_port > 65535) return bad("ssh port " + std::to_string(h.ssh_port) + " is out of range");
    if (!h.ssh_user.empty() && !IsUserName(h.ssh_user)) {
      return bad("ansible_user '" + h.ssh_user + "' is not a login name ([a-z_][a-z0-9_-]*, at most 32 characters)");
    }
    HostSpec spec;
    spec.name = h.name;
    spec.address = h.address;
    spec.ssh_port = h.ssh_port;
    spec.ssh_user = h.ssh_user;
    for (const auto& [group, value] : h.tags) {
      if (!IsTagKey(group)) return bad("group '" + group + "' cannot be a tag (letters, digits and - _ . / : only)");
      spec.tags[group] = value;
    }
    out.push_back(std::move(spec));
  }
  return out;
}

HostSourceRunner DynamicSourceRunner(ProcessRunner& processes) {
  return [&processes](const HostSourceSpec& src) -> Result<std::vector<HostSpec>> {
    SP_ASSIGN_OR_RETURN(ImportedInventory inv, RunDynamicSource(src.command, Millis(src.timeout_ms), processes));
    return ToHostSpecs(inv);
  };
}

}  // namespace sp::inventory
