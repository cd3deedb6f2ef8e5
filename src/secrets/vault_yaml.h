// Vault values inline in YAML (`key: !vault |` and an indented envelope), as
// `ansible-vault encrypt_string` writes them and Ansible's group_vars hold
// them. Found and replaced in the text itself, so a file keeps its layout,
// comments and key order when its values are re-encrypted or shown.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace sp {

// One `!vault` value of a YAML text.
struct InlineVault {
  int line = 0;            // 1-based line of the `!vault` tag.
  std::string key;         // The mapping key before the tag ("" for a list item).
  size_t tag_begin = 0;    // Offset of `!vault`.
  size_t end = 0;          // Offset just past the envelope's last line (its newline included).
  std::string indent;      // The envelope lines' indentation.
  std::string envelope;    // Dedented, one line per envelope line, ending with '\n'.
};

// Every `!vault` value of `yaml`, in order. A tag whose block holds no
// envelope is an error naming its line.
Result<std::vector<InlineVault>> FindInlineVaults(const std::string& yaml);

// `yaml` with each value replaced by what `replace` returns for it: the text
// that takes the place of `!vault |` and its block (see the two below).
Result<std::string> RewriteInlineVaults(
    const std::string& yaml, const std::function<Result<std::string>(const InlineVault&)>& replace);

// The replacement that keeps a value encrypted: `!vault |` and `envelope`
// indented as `v` was.
std::string InlineBlock(const InlineVault& v, const std::string& envelope);

// The replacement that shows a value: a YAML double-quoted scalar.
std::string QuotedScalar(const std::string& value);

// `name: !vault |` and the envelope indented by ten spaces, as
// `ansible-vault encrypt_string --name` prints it.
std::string EncryptedStringEntry(const std::string& name, const std::string& envelope);

}  // namespace sp
