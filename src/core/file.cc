#include "core/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
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

Status ReplaceFile(const std::string& path, const std::string& content, int mode_if_new) {
  struct stat st {};
  const int mode = ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : mode_if_new;
  std::string tmp = path + ".sallyport-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Err(ErrorCode::kUnavailable, "cannot write beside " + path + ": " + std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Err(ErrorCode::kUnavailable, std::string("cannot ") + what + " " + path + ": " + std::strerror(err));
  };
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) return fail("set the mode of");
  for (size_t done = 0; done < content.size();) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("write");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Err(ErrorCode::kUnavailable, "cannot write " + path + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Err(ErrorCode::kUnavailable, "cannot replace " + path + ": " + std::strerror(err));
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
