// Branch rules (sallyport.yml `branches:`, docs/config.md): which branches
// build and where a successful build deploys. Pure logic over strings;
// branch names come from outside (pushes, webhooks) and are validated here
// before anything else sees them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/service_config.h"
#include "core/error.h"

namespace sp {

// A branch name we accept: [A-Za-z0-9._/-] only, at most 200 bytes; no "..",
// "//", "@{", leading '-', '/' or '.', trailing '/', '.' or ".lock" (git's
// ref rules, narrowed to what needs no quoting anywhere).
bool IsValidBranchName(std::string_view branch);

// A pattern: '/'-separated segments, each a literal (branch characters),
// `*`, `**` (last segment only) or `{user}` (at most once).
Status CheckBranchPattern(std::string_view pattern);

// Does `branch` match `pattern`? `*user` receives the {user} segment (which
// may still be an invalid user name: MatchBranch checks it).
bool BranchMatches(std::string_view pattern, std::string_view branch, std::string* user = nullptr);

struct BranchTarget {
  std::string branch;
  std::string user;        // From {user}; empty when the rule has none.
  std::string deployment;  // Empty: build only.
};

// The first rule matching `branch`: nullopt when none does (not built).
// kInvalidArgument with the reason for an invalid branch name, or a rule
// whose {user} segment is not a valid user name ("remote-run/$(reboot)/x").
Result<std::optional<BranchTarget>> MatchBranch(const std::vector<BranchRule>& rules, const std::string& branch);

// Does a step with these `when` patterns run for `branch`? (Empty: yes.)
bool StepRunsOn(const std::vector<std::string>& when, const std::string& branch);

// The branch as an image tag: [A-Za-z0-9_.-], at most 128 bytes, '/' and
// others replaced by '-', never starting with '.' or '-'.
std::string SanitizedTag(std::string_view branch);

}  // namespace sp
