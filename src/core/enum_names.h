// Typed states with one wire name each. Every enum that crosses a boundary
// (journal, store, API, CLI output) declares one table of {value, name}
// pairs beside it; Name and Parse read only that table, so a state's
// spelling lives in exactly one place.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace sp {

template <typename E>
struct EnumName {
  E value;
  std::string_view name;
};

// The wire name of `v`; "" when the table lacks it (a bug: every value is listed).
template <typename E, std::size_t N>
constexpr std::string_view NameIn(const std::array<EnumName<E>, N>& table, E v) {
  for (const auto& e : table) {
    if (e.value == v) return e.name;
  }
  return {};
}

// The value named `s`; nullopt for a name not in the table.
template <typename E, std::size_t N>
constexpr std::optional<E> ParseIn(const std::array<EnumName<E>, N>& table, std::string_view s) {
  for (const auto& e : table) {
    if (e.name == s) return e.value;
  }
  return std::nullopt;
}

}  // namespace sp
