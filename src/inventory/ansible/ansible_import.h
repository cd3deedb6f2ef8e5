// Importing Ansible inventories: static INI and YAML files, dynamic-inventory
// JSON and the scripts that print it. Hosts, group membership and effective
// variables follow Ansible 2.14 (ansible-inventory --list is the reference:
// tests/integration/ansible_import_test.cc compares against it). Sallyport
// hosts come out with each group as a tag and ansible_host/port/user as
// address/ssh_port/ssh_user. Documented in docs/inventory.md.
//
// Where Ansible only warns (an unknown key in a YAML group, a duplicate key)
// or silently drops data (an empty host range), the import fails instead,
// naming file and line (INI, YAML) or the JSON pointer (JSON): a deployment
// tool must not guess which hosts were meant.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "inventory/inventory.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/subprocess.h"

namespace sp::inventory {

struct ImportedHost {
  std::string name;            // Inventory hostname.
  std::string address;         // ansible_host (or ansible_ssh_host), else the name.
  int ssh_port = 22;           // ansible_port (or ansible_ssh_port).
  std::string ssh_user;        // ansible_user (or ansible_ssh_user); empty when unset.
  // Every group the host belongs to, directly or through :children, as
  // <group> = "true". "all" and "ungrouped" are not tags.
  std::map<std::string, std::string> tags;
  // The host's effective variables, merged as Ansible does: "all" group vars,
  // then the other groups' (parent before child, then ansible_group_priority,
  // then name), then group_vars/ files in the same order, then the host's own
  // vars, then host_vars/ files. ansible_host/port/user are included.
  std::map<std::string, nlohmann::json> vars;
};

struct ImportedInventory {
  std::vector<ImportedHost> hosts;  // Sorted by name.
};

// Ansible's INI format: [group] sections of host lines ("name[:port]
// key=value ..."), ranges web[01:10], db[a:c], n[1:9:2], [group:vars],
// [group:children]. Values are typed as Ansible types them (Python literals:
// 5, True, '[1, 2]'; anything else stays text). `base_dir` (may be empty):
// the directory holding group_vars/ and host_vars/ (files <name>,
// <name>.yml, .yaml, .json, or directories <name>/), merged as Ansible does.
// Errors are kInvalidArgument "<file_name>:<line>: [section] <what>".
Result<ImportedInventory> ParseAnsibleIni(const std::string& text, const std::string& file_name,
                                          const std::string& base_dir);

// Ansible's YAML format: top-level groups (usually `all:`), each a mapping
// with `hosts` (patterns -> vars), `vars` and `children` (nested groups).
// Scalars are typed by YAML 1.1 as Ansible's PyYAML does (yes -> true, 010
// -> 8); a file that is valid JSON is read with JSON's rules. Errors are
// kInvalidArgument "<file_name>:<line>: <path>: <what>".
Result<ImportedInventory> ParseAnsibleYaml(const std::string& text, const std::string& file_name,
                                           const std::string& base_dir);

// Dynamic-inventory JSON as a script's --list prints it: groups (with
// `hosts`, `vars`, `children`, or just a list of hosts) and an optional
// `_meta.hostvars`. When `_meta.hostvars` is absent, `host_vars(name)` is
// called once per host (a script's --host <name>) and must return a JSON
// object; without a callback such hosts have no host vars. `base_dir` (may be
// empty): as for ParseAnsibleIni (Ansible reads group_vars/ next to a script
// too). Errors are kInvalidArgument "<source_name>: <JSON pointer>: <what>",
// or "<source_name>: not valid JSON at byte <offset>: ..." for bad syntax.
Result<ImportedInventory> ParseAnsibleJson(
    const std::string& text, const std::string& source_name,
    const std::function<Result<nlohmann::json>(const std::string& host)>& host_vars = nullptr,
    const std::string& base_dir = "");

// Runs a dynamic-inventory command (argv, never through a shell) with
// `--list` appended, then with `--host <name>` per host when --list printed
// no _meta.hostvars; each run is bounded by `timeout`. When argv[0] is a path,
// group_vars/ and host_vars/ beside it apply, as in Ansible.
// Errors name the command: kUnavailable when it cannot start, exits non-zero,
// times out or lists no host at all; kInvalidArgument when it prints
// something that is not inventory JSON (with the byte offset or JSON pointer).
// It never yields an empty fleet.
Result<ImportedInventory> RunDynamicSource(const std::vector<std::string>& argv, Millis timeout,
                                           ProcessRunner& processes = SystemProcesses());

// Reads an inventory file, picking the format from its name and content:
// .yml/.yaml -> YAML; .json -> dynamic-inventory JSON (or the YAML format
// written as JSON, when groups have `hosts` mappings); anything else (.ini,
// no extension) -> INI, unless its first significant line looks like YAML
// ("---", "{", or a "key:" mapping entry such as "all:"). group_vars/ and
// host_vars/ are looked up in the file's directory.
Result<ImportedInventory> LoadAnsibleInventory(const std::string& path);

// Sallyport hosts: name, address, ssh_port, ssh_user and tags as imported.
// kInvalidArgument naming the host when its name is not [A-Za-z0-9._-]+, its
// address is not an IPv4 address or DNS name, its port is out of range, its
// user is not a login name, or a group name cannot be a tag.
Result<std::vector<HostSpec>> ToHostSpecs(const ImportedInventory& inv);

// A deployment `source:` runner for Resolve and the inventory service: the
// command's dynamic-inventory JSON as Sallyport hosts (RunDynamicSource, then
// ToHostSpecs), bounded by the source's timeout.
HostSourceRunner DynamicSourceRunner(ProcessRunner& processes = SystemProcesses());

}  // namespace sp::inventory
