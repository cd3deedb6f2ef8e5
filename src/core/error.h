// One error type for the whole code base: Result<T> = tl::expected<T, Error>.
// What the world does to us (an unreachable socket, a failed command, bad
// config) is returned as an Error; a broken invariant of our own is a bug and
// aborts (SP_CHECK).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace sp {

enum class ErrorCode {
  kInvalidArgument,
  kNotFound,
  kConflict,
  kUnavailable,
  kTimeout,
  kCancelled,
  kInternal,
  kUnauthenticated,   // No or unknown credentials (HTTP 401).
  kPermissionDenied,  // Known, but not allowed (HTTP 403).
};

std::string_view ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // "message" prefixed by context: Wrap("pull on app1") -> "pull on app1: <message>".
  Error Wrap(std::string_view context) const {
    return Error{code, std::string(context) + ": " + message};
  }
};

template <typename T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> Err(ErrorCode code, std::string message) {
  return tl::make_unexpected(Error{code, std::move(message)});
}
inline tl::unexpected<Error> Err(Error error) { return tl::make_unexpected(std::move(error)); }
inline Status Ok() { return {}; }

}  // namespace sp

// Early return on error. SP_TRY(status_expr); SP_ASSIGN_OR_RETURN(var, result_expr);
#define SP_CONCAT_INNER(a, b) a##b
#define SP_CONCAT(a, b) SP_CONCAT_INNER(a, b)
#define SP_TRY(expr)                                            \
  do {                                                          \
    auto sp_try_result_ = (expr);                               \
    if (!sp_try_result_) return ::sp::Err(sp_try_result_.error()); \
  } while (0)
#define SP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)   \
  auto tmp = (expr);                               \
  if (!tmp) return ::sp::Err(tmp.error());         \
  lhs = std::move(*tmp)
#define SP_ASSIGN_OR_RETURN(lhs, expr) \
  SP_ASSIGN_OR_RETURN_IMPL(SP_CONCAT(sp_assign_tmp_, __LINE__), lhs, expr)

// Invariant of our own code: a violation is a bug, so abort loudly.
#define SP_CHECK(cond)                                                              \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "SP_CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
