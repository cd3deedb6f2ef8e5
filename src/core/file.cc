#include "core/file.h"

#include <fcntl.h>
#include <unistd.h>

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

Status WriteNewFile(const std::string& path, const std::string& content, int mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    const int err = errno;
    return Err(err == EEXIST ? ErrorCode::kConflict : ErrorCode::kUnavailable,
               "cannot create " + path + ": " + std::strerror(err));
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return Err(ErrorCode::kUnavailable, "cannot write " + path + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    ::unlink(path.c_str());
    return Err(ErrorCode::kUnavailable, "cannot write " + path + ": " + std::strerror(errno));
  }
  return Ok();
}

std::FILE* OpenForAppend(const std::string& path, int mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
  if (fd < 0) return nullptr;
  std::FILE* f = ::fdopen(fd, "a");
  if (!f) ::close(fd);
  return f;
}

}  // namespace sp
