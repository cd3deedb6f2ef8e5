#include "build/vcs.h"

#include "config/branch_rules.h"
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

namespace {

Result<ExitStatus> Git(const std::vector<std::string>& args, Millis timeout, const LineCallback& on_line = nullptr) {
  CommandSpec c;
  c.argv = {"git"};
  c.argv.insert(c.argv.end(), args.begin(), args.end());
  c.timeout = timeout;
  c.on_line = on_line;
  // Never prompt for credentials, never read the user's config hooks.
  c.env = {{"GIT_TERMINAL_PROMPT", "0"}, {"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_ASKPASS", "/bin/false"}};
  SP_ASSIGN_OR_RETURN(ExitStatus st, RunCommand(c));
  return st;
}

}  // namespace

Result<std::vector<RemoteHead>> ListHeads(const std::string& url, Millis timeout) {
  if (!IsValidGitUrl(url)) return Err(ErrorCode::kInvalidArgument, "invalid git URL '" + Printable(url) + "'");
  SP_ASSIGN_OR_RETURN(ExitStatus st, Git({"ls-remote", "--heads", "--", url}, timeout));
  if (!st.ok()) return Err(ErrorCode::kUnavailable, "git ls-remote " + url + ": " + st.Describe());
  std::vector<RemoteHead> out;
  for (const auto& line : Split(st.out, '\n')) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::string sha = line.substr(0, tab), ref = Trim(line.substr(tab + 1));
    if (!IsCommitSha(sha) || !StartsWith(ref, "refs/heads/")) continue;
    out.push_back(RemoteHead{ref.substr(11), sha});
  }
  return out;
}

Status CheckoutCommit(const std::string& url, const std::string& branch, const std::string& sha, const std::string& dir,
                      Millis timeout, const LineCallback& on_line) {
  if (!IsValidGitUrl(url)) return Err(ErrorCode::kInvalidArgument, "invalid git URL '" + Printable(url) + "'");
  if (!IsCommitSha(sha)) return Err(ErrorCode::kInvalidArgument, "invalid commit '" + Printable(sha) + "'");
  if (!IsValidBranchName(branch)) return Err(ErrorCode::kInvalidArgument, "invalid branch '" + Printable(branch) + "'");
  auto run = [&](const std::vector<std::string>& args) -> Status {
    SP_ASSIGN_OR_RETURN(ExitStatus st, Git(args, timeout, on_line));
    if (!st.ok()) return Err(ErrorCode::kUnavailable, "git " + args[0] + ": " + st.Describe());
    return Ok();
  };
  SP_TRY(run({"init", "-q", "--", dir}));
  // The commit itself (servers that allow it), else the branch's history.
  if (!run({"-C", dir, "fetch", "-q", "--no-tags", "--depth", "1", "--", url, sha})) {
    SP_TRY(run({"-C", dir, "fetch", "-q", "--no-tags", "--", url, "refs/heads/" + branch}));
  }
  SP_TRY(run({"-C", dir, "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", sha}));
  return Ok();
}

Result<CommitInfo> ReadCommit(const std::string& dir) {
  SP_ASSIGN_OR_RETURN(ExitStatus st, Git({"-C", dir, "log", "-1", "--format=%an%n%s"}, Millis(10'000)));
  if (!st.ok()) return Err(ErrorCode::kUnavailable, "git log: " + st.Describe());
  auto lines = Split(st.out, '\n');
  CommitInfo c;
  if (!lines.empty()) c.author = lines[0];
  if (lines.size() > 1) c.subject = lines[1];
  return c;
}

}  // namespace sp
