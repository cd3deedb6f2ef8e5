#include "inventory/ansible/ansible_import.h"

#include <cctype>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/file.h"
#include "core/subprocess.h"
#include "core/text.h"
#include "inventory/ansible/internal.h"

namespace sp::inventory {

namespace fs = std::filesystem;

namespace ansible_internal {

// ---------------------------------------------------------------------------
// Dynamic sources and files.

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The output of `argv extra...`, or kUnavailable naming the command.
Result<std::string> RunInventoryCommand(ProcessRunner& processes, const std::vector<std::string>& argv, Millis timeout) {
  CommandSpec spec;
  spec.argv = argv;
  spec.timeout = timeout;
  auto status = processes.Run(spec);
  if (!status) {
    return Err(ErrorCode::kUnavailable, "inventory command '" + FormatArgv(argv) + "' could not run: " + status.error().message);
  }
  if (!status->ok()) {
    return Err(ErrorCode::kUnavailable, "inventory command '" + FormatArgv(argv) + "' failed: " + status->Describe());
  }
  if (Trim(status->out).empty()) {
    return Err(ErrorCode::kInvalidArgument, "inventory command '" + FormatArgv(argv) + "' printed nothing (expected a JSON object)");
  }
  return status->out;
}

std::string DirOf(const std::string& path) {
  const fs::path dir = fs::path(path).parent_path();
  return dir.empty() ? "." : dir.string();
}

// A "key:" mapping entry (nothing or a space after the colon), which no INI
// line is: INI host lines put a port right after the colon.
bool IsYamlMappingLine(std::string_view line) {
  const size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  if (colon + 1 < line.size() && line[colon + 1] != ' ' && line[colon + 1] != '\t') return false;
  const std::string_view key = line.substr(0, colon);
  return key.find_first_of(" \t=[") == std::string_view::npos || key.front() == '"' || key.front() == '\'';
}

// The first line that is neither blank nor a comment decides.
bool LooksLikeYaml(const std::string& text) {
  for (const std::string& raw : Split(text, '\n')) {
    const std::string_view line = PyStrip(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    return line == "---" || line[0] == '{' || IsYamlMappingLine(line);
  }
  return false;
}

// The YAML inventory format written as JSON (groups whose `hosts` or
// `children` are objects), rather than a --list output (lists).
bool IsYamlFormatJson(const std::string& text) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return false;
  for (const auto& [name, group] : doc.items()) {
    if (name == "_meta" || !group.is_object()) continue;
    for (const char* key : {"hosts", "children"}) {
      if (group.contains(key) && group[key].is_object()) return true;
    }
  }
  return false;
}

}  // namespace
}  // namespace ansible_internal

using ansible_internal::DirOf;
using ansible_internal::IsYamlFormatJson;
using ansible_internal::LooksLikeYaml;
using ansible_internal::Lower;
using ansible_internal::ParseJsonText;
using ansible_internal::RunInventoryCommand;
using json = nlohmann::json;

Result<ImportedInventory> RunDynamicSource(const std::vector<std::string>& argv, Millis timeout,
                                           ProcessRunner& processes) {
  if (argv.empty() || argv[0].empty()) return Err(ErrorCode::kInvalidArgument, "dynamic inventory: empty command");
  std::vector<std::string> list = argv;
  list.push_back("--list");
  SP_ASSIGN_OR_RETURN(std::string out, RunInventoryCommand(processes, list, timeout));
  auto host_vars = [&](const std::string& host) -> Result<json> {
    std::vector<std::string> cmd = argv;
    cmd.insert(cmd.end(), {"--host", host});
    SP_ASSIGN_OR_RETURN(std::string vars, RunInventoryCommand(processes, cmd, timeout));
    return ParseJsonText(vars, "inventory command '" + FormatArgv(cmd) + "'");
  };
  const std::string base_dir = argv[0].find('/') == std::string::npos ? "" : DirOf(argv[0]);
  SP_ASSIGN_OR_RETURN(ImportedInventory inv,
                      ParseAnsibleJson(out, "inventory command '" + FormatArgv(list) + "'", host_vars, base_dir));
  if (inv.hosts.empty()) {
    return Err(ErrorCode::kUnavailable, "inventory command '" + FormatArgv(list) + "' listed no hosts");
  }
  return inv;
}

Result<ImportedInventory> LoadAnsibleInventory(const std::string& path) {
  SP_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  const std::string base_dir = DirOf(path);
  const std::string ext = Lower(fs::path(path).extension().string());
  if (ext == ".yml" || ext == ".yaml") return ParseAnsibleYaml(text, path, base_dir);
  if (ext == ".json") {
    if (IsYamlFormatJson(text)) return ParseAnsibleYaml(text, path, base_dir);
    return ParseAnsibleJson(text, path, nullptr, base_dir);
  }
  if (LooksLikeYaml(text)) return ParseAnsibleYaml(text, path, base_dir);
  return ParseAnsibleIni(text, path, base_dir);
}

}  // namespace sp::inventory
