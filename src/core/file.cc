#include "core/file.h"

#include <fcntl.h>
#include <sys/stat.h>
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

int RemoveFilesOlderThan(const std::string& dir, const std::string& suffix, int64_t before_wall_ms) {
  std::error_code ec;
  int removed = 0;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string path = it->path().string();
    struct stat st {};
    if (path.size() < suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const int64_t mtime_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
    if (mtime_ms >= before_wall_ms) continue;
    std::error_code rm;
    removed += std::filesystem::remove(it->path(), rm) ? 1 : 0;
  }
  return removed;
}

}  // namespace sp
