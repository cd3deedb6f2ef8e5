#include "inventory/ansible/ansible_import.h"

#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/text.h"
#include "inventory/ansible/internal.h"

namespace sp::inventory {
namespace ansible_internal {
namespace {

// ---------------------------------------------------------------------------
// INI.

// "[name]" or "[name:kind]", optionally followed by a comment.
struct SectionHeader {
  std::string name, kind;
};
std::optional<SectionHeader> ParseSectionHeader(std::string_view line) {
  if (line.empty() || line[0] != '[') return std::nullopt;
  size_t i = 1;
  while (i < line.size() && line[i] != ':' && line[i] != ']' && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
  SectionHeader h{std::string(line.substr(1, i - 1)), ""};
  if (h.name.empty()) return std::nullopt;
  if (i < line.size() && line[i] == ':') {
    const size_t start = ++i;
    while (i < line.size() && IsWordByte(line[i])) ++i;
    h.kind = std::string(line.substr(start, i - start));
    if (h.kind.empty()) return std::nullopt;
  }
  if (i >= line.size() || line[i] != ']') return std::nullopt;
  const std::string_view rest = PyStrip(line.substr(i + 1));
  if (!rest.empty() && rest[0] != '#') return std::nullopt;
  return h;
}

// A group name on a [group:children] line, optionally followed by a comment.
std::optional<std::string> ParseChildName(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && line[i] != ':' && line[i] != ']' && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
  const std::string_view rest = PyStrip(line.substr(i));
  if (i == 0 || (!rest.empty() && rest[0] != '#')) return std::nullopt;
  return std::string(line.substr(0, i));
}

// Ansible's INI inventory plugin, line by line. A [group:vars] or a child
// named before its group is declared is kept pending, and an error at the
// end if the group never is.
class IniParser {
 public:
  IniParser(std::string file, Model& model) : file_(std::move(file)), model_(model) {}

  Status Parse(const std::string& text) {
    int line_no = 0;
    for (const std::string& raw : Split(text, '\n')) {
      line_ = ++line_no;
      const std::string_view line = PyStrip(raw);
      if (line.empty() || line[0] == '#' || line[0] == ';') continue;
      if (!IsValidUtf8(line)) return Err(Fail("the line is not valid UTF-8"));
      SP_TRY(Line(line));
    }
    return FinishPending();
  }

 private:
  struct Pending {
    int line = 0;
    std::string kind;  // "vars" or "children".
    std::vector<std::string> parents;
  };

  Error Fail(const std::string& what) const {
    return Invalid(At(file_, line_), section_.empty() ? what : section_ + " " + what);
  }
  std::string Where() const { return At(file_, line_); }
  Status Wrap(Status s) const { return s ? s : Err(Fail(s.error().message)); }

  Status Line(std::string_view line) {
    if (std::optional<SectionHeader> h = ParseSectionHeader(line)) return Section(*h);
    if (line.front() == '[' && line.back() == ']') {
      section_.clear();
      return Err(Fail("invalid section header '" + std::string(line) +
                      "' (expected [group], [group:vars] or [group:children], without spaces)"));
    }
    if (kind_ == "vars") return VarLine(line);
    if (kind_ == "children") return ChildLine(line);
    return HostLine(line);
  }

  Status Section(const SectionHeader& h) {
    const std::string kind = h.kind.empty() ? "hosts" : h.kind;
    section_ = "[" + h.name + (h.kind.empty() ? "" : ":" + h.kind) + "]";
    if (kind != "hosts" && kind != "vars" && kind != "children") {
      return Err(Fail("has unknown type '" + kind + "' (expected vars or children)"));
    }
    // Group names are kept as written: Ansible 2.14 transforms invalid
    // characters only when TRANSFORM_INVALID_GROUP_CHARS asks it to (default
    // "never"); ToHostSpecs checks that they make valid tags.
    group_ = h.name;
    kind_ = kind;
    if (!model_.HasGroup(group_)) {
      // [g] or [g:children] declares a group; [g:vars] alone does not.
      if (kind == "vars" && !pending_.count(group_)) pending_[group_] = Pending{line_, "vars", {}};
      model_.AddGroup(group_);
    }
    if (kind != "vars" && pending_.count(group_)) {
      if (pending_[group_].kind == "children") return AddPendingChildren(group_);
      pending_.erase(group_);
    }
    return Ok();
  }

  Status AddPendingChildren(const std::string& group) {
    const std::vector<std::string> parents = pending_[group].parents;
    for (const std::string& parent : parents) {
      SP_TRY(Wrap(model_.AddChild(parent, group)));
      auto it = pending_.find(parent);
      if (it != pending_.end() && it->second.kind == "children") SP_TRY(AddPendingChildren(parent));
    }
    pending_.erase(group);
    return Ok();
  }

  Status HostLine(std::string_view line) {
    auto tokens = ShlexSplit(line);
    if (!tokens) return Err(Fail("cannot parse host line: " + tokens.error().message));
    if (tokens->empty() || PyStrip((*tokens)[0]).empty()) return Err(Fail("empty host name"));
    const std::string& pattern = (*tokens)[0];
    auto hosts = ExpandHostPattern(pattern);
    if (!hosts) return Err(Fail(hosts.error().message));
    if (PyStrip(pattern).back() == ':' && !hosts->port) {
      return Err(Fail("invalid host pattern '" + pattern + "': a trailing ':' must be followed by a port"));
    }
    for (const std::string& name : hosts->names) {
      if (PyStrip(name) == "---") return Err(Fail("host name '---' is a sign that this file is YAML, not INI"));
    }
    std::vector<std::pair<std::string, json>> vars;
    for (size_t i = 1; i < tokens->size(); ++i) {
      const std::string& t = (*tokens)[i];
      const size_t eq = t.find('=');
      if (eq == std::string::npos) return Err(Fail("expected key=value host variable, got '" + t + "'"));
      vars.emplace_back(t.substr(0, eq), IniValue(std::string_view(t).substr(eq + 1)));
    }
    for (const std::string& name : hosts->names) {
      model_.AddHost(name, group_, hosts->port, Where());
      for (const auto& [k, v] : vars) model_.SetHostVar(name, k, v, Where());
    }
    return Ok();
  }

  Status VarLine(std::string_view line) {
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) return Err(Fail("expected key=value, got '" + std::string(line) + "'"));
    const std::string key(PyStrip(line.substr(0, eq)));
    return Wrap(model_.SetGroupVar(group_, key, IniValue(PyStrip(line.substr(eq + 1))), Where()));
  }

  Status ChildLine(std::string_view line) {
    std::optional<std::string> child = ParseChildName(line);
    if (!child) return Err(Fail("expected a group name, got '" + std::string(line) + "'"));
    if (model_.HasGroup(*child)) return Wrap(model_.AddChild(group_, *child));
    pending_.try_emplace(*child, Pending{line_, "children", {}}).first->second.parents.push_back(group_);
    return Ok();
  }

  // The first (by line) reference to a group that was never declared.
  Status FinishPending() const {
    const Pending* first = nullptr;
    std::string name;
    for (const auto& [g, p] : pending_) {
      if (!first || p.line < first->line) {
        first = &p;
        name = g;
      }
    }
    if (!first) return Ok();
    if (first->kind == "vars") {
      return Err(Invalid(At(file_, first->line), "[" + name + ":vars] is for group '" + name +
                                                     "', which is never declared (no [" + name + "] section)"));
    }
    return Err(Invalid(At(file_, first->line), "[" + first->parents.front() + ":children] names group '" + name +
                                                   "', which is never declared (no [" + name + "] section)"));
  }

  std::string file_;
  Model& model_;
  int line_ = 0;
  std::string section_;  // "[web:vars]" as written; empty before the first one.
  std::string group_ = "ungrouped";
  std::string kind_ = "hosts";
  std::map<std::string, Pending> pending_;
};

}  // namespace
}  // namespace ansible_internal

using ansible_internal::IniParser;
using ansible_internal::Model;

Result<ImportedInventory> ParseAnsibleIni(const std::string& text, const std::string& file_name,
                                          const std::string& base_dir) {
  Model model(file_name);
  IniParser parser(file_name, model);
  SP_TRY(parser.Parse(text));
  return model.Finish(base_dir);
}

}  // namespace sp::inventory
