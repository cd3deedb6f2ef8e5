#include "config/branch_rules.h"

#include "core/text.h"

namespace sp {

namespace {

bool BranchChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-' || c == '/';
}

std::vector<std::string_view> Segments(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    out.push_back(s.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

}  // namespace

std::vector<BranchRule> DefaultBranchRules() {
  return {BranchRule{"integration", "integration"}, BranchRule{"remote-run/{user}/*", "personal-{user}"}};
}

bool IsValidBranchName(std::string_view b) {
  if (b.empty() || b.size() > 200) return false;
  for (char c : b) {
    if (!BranchChar(c)) return false;
  }
  if (b.front() == '-' || b.front() == '/' || b.front() == '.') return false;
  if (b.back() == '/' || b.back() == '.') return false;
  if (b.find("..") != std::string_view::npos || b.find("//") != std::string_view::npos) return false;
  if (b.find("/.") != std::string_view::npos) return false;  // No segment starting with '.'.
  if (b.size() >= 5 && b.substr(b.size() - 5) == ".lock") return false;
  return true;
}

Status CheckBranchPattern(std::string_view pattern) {
  auto segs = Segments(pattern);
  int users = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    std::string_view s = segs[i];
    if (s == "*") continue;
    if (s == "**") {
      if (i + 1 != segs.size()) return Err(ErrorCode::kInvalidArgument, "'**' must be the last segment of '" + std::string(pattern) + "'");
      continue;
    }
    if (s == "{user}") {
      if (++users > 1) return Err(ErrorCode::kInvalidArgument, "{user} twice in '" + std::string(pattern) + "'");
      continue;
    }
    if (s.empty() || !IsValidBranchName(s)) {
      return Err(ErrorCode::kInvalidArgument, "invalid branch pattern '" + std::string(pattern) +
                                                  "' (segments: literal branch text, *, ** or {user})");
    }
  }
  return Ok();
}

bool BranchMatches(std::string_view pattern, std::string_view branch, std::string* user) {
  auto pat = Segments(pattern);
  auto seg = Segments(branch);
  for (size_t i = 0; i < pat.size(); ++i) {
    if (pat[i] == "**") return seg.size() > i;  // One or more segments left.
    if (i >= seg.size() || seg[i].empty()) return false;
    if (pat[i] == "*") continue;
    if (pat[i] == "{user}") {
      if (user) *user = std::string(seg[i]);
      continue;
    }
    if (pat[i] != seg[i]) return false;
  }
  return pat.size() == seg.size();
}

Result<std::optional<BranchTarget>> MatchBranch(const std::vector<BranchRule>& rules, const std::string& branch) {
  // A {user} segment is checked before the branch as a whole, so that
  // "remote-run/$(reboot)/x" is reported for its user.
  for (const auto& rule : rules) {
    std::string user;
    if (!BranchMatches(rule.match, branch, &user)) continue;
    if (rule.match.find("{user}") != std::string::npos && !IsValidUser(user)) {
      return Err(ErrorCode::kInvalidArgument, "branch '" + Printable(branch) + "' matches '" + rule.match + "' but '" +
                                                  Printable(user) + "' is not a valid user name ([a-z0-9][a-z0-9-]{0,31})");
    }
    if (!IsValidBranchName(branch)) break;
    BranchTarget t;
    t.branch = branch;
    t.user = user;
    t.deployment = rule.deploy;
    if (size_t at = t.deployment.find("{user}"); at != std::string::npos) t.deployment.replace(at, 6, user);
    return std::optional<BranchTarget>(std::move(t));
  }
  if (!IsValidBranchName(branch)) {
    return Err(ErrorCode::kInvalidArgument, "invalid branch name '" + Printable(branch) + "'");
  }
  return std::optional<BranchTarget>();
}

bool StepRunsOn(const std::vector<std::string>& when, const std::string& branch) {
  if (when.empty()) return true;
  for (const auto& p : when) {
    if (BranchMatches(p, branch)) return true;
  }
  return false;
}

std::string SanitizedTag(std::string_view branch) {
  std::string out;
  for (char c : branch.substr(0, 128)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
    out.push_back(ok ? c : '-');
  }
  while (!out.empty() && (out.front() == '.' || out.front() == '-')) out.erase(out.begin());
  return out.empty() ? "branch" : out;
}

}  // namespace sp
