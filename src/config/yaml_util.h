// Strict reading of YAML config files on top of yaml-cpp 0.7. Private to
// src/config: public headers never include yaml-cpp.
//
// yaml-cpp reports 0-based marks, says only "bad conversion", accepts
// duplicate keys and throws. This layer returns Result<T>, reports 1-based
// lines, names the field path of every error ("file:14: releases.web.port:
// ..."), rejects duplicate keys (naming both lines) and unknown keys.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/text.h"

namespace sp::yaml {

// A value in the document with where it sits: its field path and the 1-based
// line to report (the key's line for a mapping entry, the item's line for a
// list item).
struct Val {
  YAML::Node node;
  std::string path;
  int line = 1;
};

// A mapping whose keys were checked (strings, none unknown).
struct Map {
  Val self;
  std::vector<std::pair<std::string, Val>> entries;  // Document order.

  // The entry for `key`, or nullptr when absent.
  const Val* Get(std::string_view key) const;
};

// Reads values of one file; every error is kInvalidArgument with the message
// "<file>:<line>: <path>: <what>".
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }

  // Parses `text` as exactly one YAML document (an empty file is an error),
  // then rejects duplicate keys anywhere in it. Never throws.
  Result<Val> Load(const std::string& text) const;

  Error Fail(int line, const std::string& path, const std::string& what) const;
  Error Fail(const Val& v, const std::string& what) const { return Fail(v.line, v.path, what); }

  // A mapping with string keys, each one of `allowed` (empty = any key).
  Result<Map> AsMap(const Val& v, const std::vector<std::string>& allowed = {}) const;
  Result<std::vector<Val>> AsList(const Val& v) const;
  // Any scalar, as written (numbers and booleans included); not null.
  Result<std::string> AsString(const Val& v) const;
  // A single-line string (IsSafeValue).
  Result<std::string> AsSafeString(const Val& v) const;
  // A non-empty single-line string.
  Result<std::string> AsNonEmptyString(const Val& v) const;
  Result<int> AsInt(const Val& v, int min, int max) const;
  Result<bool> AsBool(const Val& v) const;
  Result<Millis> AsDuration(const Val& v) const;
  Result<CountOrPercent> AsCountOrPercent(const Val& v) const;
  // A name matching IsValidName ([a-z0-9][a-z0-9-]{0,62}).
  Result<std::string> AsName(const Val& v) const;
  // Checks `name` (a mapping key, reported at `at`) against IsValidName.
  Status CheckName(const Val& at, const std::string& name) const;
  Result<int> AsPort(const Val& v) const { return AsInt(v, 1, 65535); }
  // An absolute path (starts with '/'), single line.
  Result<std::string> AsAbsolutePath(const Val& v) const;
  // A list of single-line strings.
  Result<std::vector<std::string>> AsStringList(const Val& v) const;
  // Env vars: keys IsValidEnvName, values single-line scalars.
  Result<std::map<std::string, std::string>> AsEnv(const Val& v) const;
  // A mapping of strings to single-line strings (keys unchecked).
  Result<std::map<std::string, std::string>> AsStringMap(const Val& v) const;

  // kInvalidArgument "missing required field" for `key` of `m`.
  Error Missing(const Map& m, const std::string& key, const std::string& hint = "") const;

  // "host:port" (port required) or "host[:port]"; host must be IsValidAddress.
  Result<std::string> AsHostPort(const Val& v, bool port_required) const;

  // Checks that `root` is a mapping holding `version: 1`. Run before the
  // schema so that a future version gets a clear message rather than
  // unknown-key errors.
  Status CheckVersion(const Val& root) const;

  // A whole file's top mapping: parsed, `version: 1` checked, only `allowed`
  // keys (what every parser of a Sallyport file starts with).
  Result<Map> LoadTop(const std::string& text, const std::vector<std::string>& allowed) const;

 private:
  std::string file_;
};

// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
std::string Join(const std::string& path, const std::string& key);
// "a, b, c".
std::string JoinNames(const std::vector<std::string>& names);

}  // namespace sp::yaml
