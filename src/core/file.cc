#include "core/file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sp {

Result<std::string> ReadTextFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Err(ErrorCode::kInvalidArgument, "cannot read " + path + ": is a directory");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return Err(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
               "cannot read " + path + ": " + (err ? std::strerror(err) : "open failed"));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return Err(ErrorCode::kUnavailable, "cannot read " + path + ": read failed");
  return out.str();
}

}  // namespace sp
