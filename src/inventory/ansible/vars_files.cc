#include "inventory/ansible/internal.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "core/file.h"

namespace sp::inventory::ansible_internal {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// group_vars/ and host_vars/ files.

namespace {

// A vars file: a mapping of variables, or nothing (an empty file).
Result<VarMap> LoadVarsFile(const std::string& path) {
  SP_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  YamlReader reader(path, RulesFor(text));
  SP_ASSIGN_OR_RETURN(YAML::Node root, reader.Load(text));
  VarMap vars;
  if (!root.IsDefined() || root.IsNull()) return vars;
  if (!root.IsMap()) return Err(reader.Fail(LineOf(root, 1), "expected a mapping of variables"));
  try {
    SP_ASSIGN_OR_RETURN(vars, reader.Vars(root, 1));
  } catch (const YAML::Exception& e) {
    return Err(reader.Fail(1, std::string("YAML error: ") + e.what()));
  }
  return vars;
}

bool IsDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

bool IsVarsExtension(const std::string& ext) { return ext.empty() || ext == ".yml" || ext == ".yaml" || ext == ".json"; }

// Files of a vars directory as Ansible's DataLoader lists them: sorted by
// name, hidden files and backups (~) skipped, subdirectories without an
// extension searched recursively.
Status ListVarsDir(const fs::path& dir, std::vector<fs::path>& out) {
  std::error_code ec;
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return Err(ErrorCode::kUnavailable, "cannot list " + dir.string() + ": " + ec.message());
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    if (name.empty() || name[0] == '.' || name.back() == '~') continue;
    const fs::path p = dir / name;
    const std::string ext = fs::path(name).extension().string();
    if (IsDir(p)) {
      if (ext.empty()) SP_TRY(ListVarsDir(p, out));
    } else if (IsVarsExtension(ext)) {
      out.push_back(p);
    }
  }
  return Ok();
}

}  // namespace

Result<VarMap> VarsFiles::For(const std::string& subdir, const std::string& name) {
  const std::string key = subdir + "/" + name;
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  SP_ASSIGN_OR_RETURN(VarMap vars, Load(subdir, name));
  cache_[key] = vars;
  return vars;
}

Result<VarMap> VarsFiles::Load(const std::string& subdir, const std::string& name) const {
  VarMap vars;
  // Like Ansible, skip names that are absolute paths ("chroot" hosts).
  if (base_.empty() || name.empty() || name[0] == '/' || !IsDir(fs::path(base_) / subdir)) return vars;
  std::vector<fs::path> files;
  for (const char* ext : {"", ".yml", ".yaml", ".json"}) {
    const fs::path p = fs::path(base_) / subdir / (name + ext);
    if (!Exists(p)) continue;
    if (IsDir(p)) {
      SP_TRY(ListVarsDir(p, files));
    } else {
      files.push_back(p);
    }
    break;
  }
  for (const fs::path& f : files) {
    SP_ASSIGN_OR_RETURN(VarMap file_vars, LoadVarsFile(f.string()));
    Merge(vars, file_vars);
  }
  return vars;
}

}  // namespace sp::inventory::ansible_internal
