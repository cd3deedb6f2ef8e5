#include "transport/local/local_transport.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <vector>

namespace sp {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

ErrorCode CodeForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return ErrorCode::kNotFound;
    case EACCES:
    case EPERM:
    case EROFS:
    case ENOSPC:
    case EDQUOT:
    case EIO:
      return ErrorCode::kUnavailable;
    default:
      return ErrorCode::kInternal;
  }
}

Status WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t w = ::write(fd, data, size);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      return Err(CodeForErrno(e), "write: " + ErrnoText(e));
    }
    data += w;
    size -= static_cast<size_t>(w);
  }
  return Ok();
}

// Creates a temp file beside `path`, lets `fill` write it, then fchmod, fsync,
// rename. The temp file is removed on any failure.
Status AtomicReplace(const std::string& path, int mode, const std::function<Status(int fd)>& fill) {
  if (path.empty() || path.back() == '/') return Err(ErrorCode::kInvalidArgument, "invalid file path '" + path + "'");
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string tmpl = (dir == "/" ? "" : dir) + "/." + base + ".sp-tmp-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return Err(CodeForErrno(e), "cannot create a file in " + dir + ": " + ErrnoText(e));
  }
  std::string tmp = buf.data();
  auto fail = [&](const std::string& what, int e) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return Err(CodeForErrno(e), what + " " + path + ": " + ErrnoText(e));
  };
  Status filled = fill(fd);
  if (!filled) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return Err(filled.error().Wrap("writing " + path));
  }
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) return fail("chmod", errno);
  if (::fsync(fd) != 0) return fail("fsync", errno);
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Err(CodeForErrno(e), "close " + path + ": " + ErrnoText(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Err(CodeForErrno(e), "rename to " + path + ": " + ErrnoText(e));
  }
  return Ok();
}

}  // namespace

Result<ExitStatus> LocalTransport::Run(const HostRef& host, const CommandSpec& spec) {
  auto r = processes_.Run(spec);
  if (!r) return Err(r.error().Wrap("on " + host.name));
  return r;
}

Status LocalTransport::WriteFile(const HostRef& host, const std::string& path, const std::string& content,
                                 int mode) {
  auto s = AtomicReplace(path, mode, [&](int fd) { return WriteAll(fd, content.data(), content.size()); });
  if (!s) return Err(s.error().Wrap("on " + host.name));
  return Ok();
}

Status LocalTransport::CopyFile(const HostRef& host, const std::string& local_path, const std::string& remote_path,
                                int mode) {
  int in = ::open(local_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    int e = errno;
    return Err(CodeForErrno(e), "cannot open " + local_path + ": " + ErrnoText(e));
  }
  struct stat st {};
  if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(in);
    return Err(ErrorCode::kInvalidArgument, local_path + " is not a regular file");
  }
  auto s = AtomicReplace(remote_path, mode, [&](int out) -> Status {
    std::vector<char> buf(1 << 16);
    while (true) {
      ssize_t r = ::read(in, buf.data(), buf.size());
      if (r < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        return Err(CodeForErrno(e), "read " + local_path + ": " + ErrnoText(e));
      }
      if (r == 0) return Ok();
      SP_TRY(WriteAll(out, buf.data(), static_cast<size_t>(r)));
    }
  });
  ::close(in);
  if (!s) return Err(s.error().Wrap("on " + host.name));
  return Ok();
}

Status LocalTransport::Check(const HostRef& host) { return Ok(); }

Result<std::string> LocalTransport::UnixSocket(const HostRef& host, const std::string& remote_path) {
  if (remote_path.empty() || remote_path[0] != '/') {
    return Err(ErrorCode::kInvalidArgument, "not an absolute socket path: '" + remote_path + "'");
  }
  return remote_path;
}

}  // namespace sp
