#include "support/http_get.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "core/text.h"

namespace sp::test {

std::optional<HttpReply> HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string resp;
  char buf[4096];
  size_t header_end = std::string::npos;
  long content_length = -1;
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
    if (header_end == std::string::npos && (header_end = resp.find("\r\n\r\n")) != std::string::npos) {
      std::string headers = resp.substr(0, header_end);
      std::transform(headers.begin(), headers.end(), headers.begin(), ::tolower);
      auto p = headers.find("content-length:");
      if (p != std::string::npos) content_length = std::strtol(headers.c_str() + p + 15, nullptr, 10);
    }
    if (header_end != std::string::npos && content_length >= 0 &&
        resp.size() >= header_end + 4 + static_cast<size_t>(content_length)) {
      break;
    }
  }
  ::close(fd);
  if (header_end == std::string::npos || !StartsWith(resp, "HTTP/1.")) return std::nullopt;
  HttpReply reply;
  reply.status = std::atoi(resp.c_str() + resp.find(' ') + 1);
  reply.body = resp.substr(header_end + 4);
  return reply;
}

}  // namespace sp::test
