// Tag selectors: how a release picks hosts from its deployment's pool, the
// way cloud dynamic inventories select instances.
//
//   "role=api,az=b"   every term must hold: tag role is "api" and tag az is "b"
//   "web"             tag web is present (any value; Ansible groups become such tags)
//   "role!=batch"     tag role is absent or not "batch"
//
// Keys and values: letters, digits and - _ . / : (no spaces, no commas).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/error.h"

namespace sp {

struct SelectorTerm {
  enum Op { kEquals, kNotEquals, kExists } op = kExists;
  std::string key, value;
};

struct Selector {
  std::vector<SelectorTerm> terms;  // Empty: matches every host.
  bool Matches(const std::map<std::string, std::string>& tags) const;
  std::string ToString() const;
};

// kInvalidArgument naming the bad term.
Result<Selector> ParseSelector(const std::string& text);

// A tag key or value as selectors accept it.
bool IsValidTagText(const std::string& s);

}  // namespace sp
