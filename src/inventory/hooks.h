// Hooks (HookSpec, inventory.h): their checks, their YAML form in the
// inventory file and their JSON form (the inventory service's documents,
// resolve answers and frozen plans). Docs: docs/inventory.md "Hooks".
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "inventory/inventory.h"

namespace sp {
namespace yaml {
class Reader;
struct Val;
}  // namespace yaml

// The hook points, in the order a rollout meets them, as the file names them.
inline constexpr std::string_view kHookPoints[] = {"pre_rollout", "pre_host", "post_host", "on_failure",
                                                   "post_rollout"};
const std::vector<HookSpec>& HooksAt(const HooksSpec& h, std::string_view point);
std::vector<HookSpec>& HooksAt(HooksSpec& h, std::string_view point);

// Everything a hook must be wherever it comes from (the file, a stored
// document, a plan an agent received): a name, exactly one of a command and
// a URL, a known method, http(s) with a host, single-line header names and
// values, a secret reference sent in clear only to loopback, a timeout of
// 1 ms .. 10 min. The error says which field is wrong.
Status CheckHook(const HookSpec& h);
// CheckHook on each, and names unique within each point; CheckSilence.
Status CheckHooks(const HooksSpec& h);
// An alert silence: an http(s) URL with a host, a duration of 10s .. 10m,
// a timeout of 1ms .. 1m, label names and single-line values.
Status CheckSilence(const SilenceSpec& s);
// The matchers of a silence that names none: release="{release}",
// deployment="{deployment}", host=~"{hosts}".
std::vector<SilenceMatcher> DefaultSilenceMatchers();

// The `hooks:` mapping of a deployment in the inventory file (its hook
// points and its `silence`).
Result<HooksSpec> ParseHooks(const yaml::Reader& r, const yaml::Val& v);

// The file's shape as JSON (empty points left out) and back (types only;
// throws nlohmann::json::exception on another shape, like inventory/wire.h).
nlohmann::ordered_json HooksToJson(const HooksSpec& h);
HooksSpec HooksFromJson(const nlohmann::json& j);

}  // namespace sp
