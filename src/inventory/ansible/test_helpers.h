// Helpers shared by the Ansible import's unit tests (the *_test.cc files of
// this folder): parse a text that must parse, or that must fail, and look at
// the hosts that came out.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "inventory/ansible/ansible_import.h"

namespace sp::inventory::ansible_test {

using json = nlohmann::json;

// The hosts' names, in the inventory's order (sorted).
inline std::vector<std::string> Names(const ImportedInventory& inv) {
  std::vector<std::string> out;
  for (const auto& h : inv.hosts) out.push_back(h.name);
  return out;
}

// The host called `name`; a test failure (and an empty host) when there is none.
inline const ImportedHost& Host(const ImportedInventory& inv, const std::string& name) {
  for (const auto& h : inv.hosts) {
    if (h.name == name) return h;
  }
  ADD_FAILURE() << "no host " << name;
  static const ImportedHost kNone;
  return kNone;
}

// The host's tags (its groups); a test failure when a tag's value is not "true".
inline std::vector<std::string> Tags(const ImportedHost& h) {
  std::vector<std::string> out;
  for (const auto& [k, v] : h.tags) {
    EXPECT_EQ(v, "true") << k;
    out.push_back(k);
  }
  return out;
}

// The host's vars as one JSON object (keys sorted): easy to compare whole.
inline json Vars(const ImportedHost& h) {
  json out = json::object();
  for (const auto& [k, v] : h.vars) out[k] = v;
  return out;
}

// `text` as an INI inventory "hosts.ini" that must parse.
inline ImportedInventory Ini(const std::string& text, const std::string& base_dir = "") {
  auto inv = ParseAnsibleIni(text, "hosts.ini", base_dir);
  EXPECT_TRUE(inv) << inv.error().message;
  return inv ? *inv : ImportedInventory{};
}

// The kInvalidArgument message of an INI inventory that must not parse.
inline std::string IniError(const std::string& text) {
  auto inv = ParseAnsibleIni(text, "hosts.ini", "");
  EXPECT_FALSE(inv) << "parsed:\n" << text;
  if (inv) return "";
  EXPECT_EQ(inv.error().code, ErrorCode::kInvalidArgument);
  return inv.error().message;
}

// `text` as a YAML inventory "inventory.yml" that must parse.
inline ImportedInventory Yaml(const std::string& text, const std::string& base_dir = "") {
  auto inv = ParseAnsibleYaml(text, "inventory.yml", base_dir);
  EXPECT_TRUE(inv) << inv.error().message;
  return inv ? *inv : ImportedInventory{};
}

// The error message of a YAML inventory that must not parse.
inline std::string YamlError(const std::string& text) {
  auto inv = ParseAnsibleYaml(text, "inventory.yml", "");
  EXPECT_FALSE(inv) << "parsed:\n" << text;
  return inv ? "" : inv.error().message;
}

// The kInvalidArgument message of dynamic-inventory JSON "inv.json" that must not parse.
inline std::string JsonError(const std::string& text) {
  auto inv = ParseAnsibleJson(text, "inv.json");
  EXPECT_FALSE(inv) << "parsed:\n" << text;
  if (inv) return "";
  EXPECT_EQ(inv.error().code, ErrorCode::kInvalidArgument);
  return inv.error().message;
}

}  // namespace sp::inventory::ansible_test
