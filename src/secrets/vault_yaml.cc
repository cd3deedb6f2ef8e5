#include "secrets/vault_yaml.h"

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "secrets/vault.h"

namespace sp {
namespace {

size_t IndentOf(const std::string& line) {
  const size_t at = line.find_first_not_of(' ');
  return at == std::string::npos ? line.size() : at;
}

bool Blank(const std::string& line) { return Trim(line).empty(); }

// The block indicator after the tag: "|", "|-", "|+", ">"... and nothing
// else on the line but a comment.
bool BlockIndicator(std::string rest) {
  rest = Trim(rest.substr(0, rest.find(" #")));
  return !rest.empty() && (rest[0] == '|' || rest[0] == '>') && rest.size() <= 3;
}

}  // namespace

Result<std::vector<InlineVault>> FindInlineVaults(const std::string& yaml) {
  std::vector<InlineVault> out;
  std::vector<size_t> starts{0};
  for (size_t i = 0; i < yaml.size(); ++i) {
    if (yaml[i] == '\n') starts.push_back(i + 1);
  }
  auto line_at = [&](size_t k) {
    const size_t b = starts[k];
    const size_t e = k + 1 < starts.size() ? starts[k + 1] : yaml.size();
    return StripLineBreaks(yaml.substr(b, e - b));
  };
  for (size_t k = 0; k < starts.size(); ++k) {
    const std::string line = line_at(k);
    const size_t tag = line.find("!vault");
    if (tag == std::string::npos || line.find('#') < tag) continue;
    const std::string after = line.substr(tag + 6);
    if (!after.empty() && after[0] != ' ' && after[0] != '\t') continue;  // "!vaultish".
    if (!BlockIndicator(after)) {
      return Err(ErrorCode::kInvalidArgument, "line " + std::to_string(k + 1) +
                                                  ": a !vault value must be a block (`!vault |`) holding the envelope");
    }
    InlineVault v;
    v.line = static_cast<int>(k + 1);
    v.tag_begin = starts[k] + tag;
    std::string head = Trim(line.substr(0, tag));
    if (!head.empty() && head.back() == ':') v.key = Trim(head.substr(0, head.size() - 1));
    const size_t base = IndentOf(line);
    size_t last = k;
    for (size_t j = k + 1; j < starts.size(); ++j) {
      const std::string l = line_at(j);
      if (Blank(l)) continue;
      if (IndentOf(l) <= base) break;
      if (v.indent.empty()) v.indent = l.substr(0, IndentOf(l));
      v.envelope += Trim(l) + "\n";
      last = j;
    }
    if (!IsVaultText(v.envelope)) {
      return Err(ErrorCode::kInvalidArgument,
                 "line " + std::to_string(k + 1) + ": the !vault block holds no $ANSIBLE_VAULT envelope");
    }
    v.end = last + 1 < starts.size() ? starts[last + 1] : yaml.size();
    out.push_back(std::move(v));
    k = last;
  }
  return out;
}

Result<std::string> RewriteInlineVaults(const std::string& yaml,
                                        const std::function<Result<std::string>(const InlineVault&)>& replace) {
  SP_ASSIGN_OR_RETURN(auto values, FindInlineVaults(yaml));
  std::string out;
  size_t at = 0;
  for (const auto& v : values) {
    SP_ASSIGN_OR_RETURN(std::string with, replace(v));
    out += yaml.substr(at, v.tag_begin - at) + with;
    if (!with.empty() && with.back() != '\n') out += '\n';
    at = v.end;
  }
  return out + yaml.substr(at);
}

std::string InlineBlock(const InlineVault& v, const std::string& envelope) {
  std::string out = "!vault |\n";
  for (const auto& l : Split(envelope, '\n')) {
    if (!l.empty()) out += v.indent + l + "\n";
  }
  return out;
}

std::string QuotedScalar(const std::string& value) {
  return nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string EncryptedStringEntry(const std::string& name, const std::string& envelope) {
  std::string out = name + ": !vault |\n";
  for (const auto& l : Split(envelope, '\n')) {
    if (!l.empty()) out += "          " + l + "\n";
  }
  return out;
}

}  // namespace sp
