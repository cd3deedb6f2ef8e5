#include "build/vcs.h"

#include "core/text.h"

namespace sp {

bool IsValidGitUrl(const std::string& url) {
  if (url.empty() || url.size() > 1000 || url[0] == '-' || !IsSafeValue(url)) return false;
  for (const char* p : {"git://", "http://", "https://", "ssh://", "file://", "/"}) {
    if (StartsWith(url, p)) return url.find(' ') == std::string::npos;
  }
  return false;
}

bool IsCommitSha(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace sp
