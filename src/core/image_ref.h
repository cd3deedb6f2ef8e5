// Image references as `docker` reads them (distribution's reference grammar
// and its normalisation): "busybox" is docker.io/library/busybox:latest,
// "myteam/api:tag" is docker.io/myteam/api:tag, a first component with a
// '.' or ':' (or "localhost") names the registry host. One parser for every
// place an image reference is checked or taken apart.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace sp {

inline constexpr std::string_view kDockerHub = "docker.io";

struct ImageRef {
  std::string domain;  // "docker.io", "ghcr.io", "localhost:5000", "127.0.0.1:5000"
  std::string path;    // "library/busybox", "org/app"
  std::string tag;     // "" when the reference has none
  std::string digest;  // "sha256:<hex>" or ""

  // What to ask the registry for: the digest, else the tag, else "latest".
  std::string Reference() const;
  // The fully qualified name: domain/path[:tag][@digest].
  std::string Full() const;
  // domain/path (no tag, no digest).
  std::string Name() const { return domain + "/" + path; }
  // The host (and port) to speak the registry API to: Docker Hub's API is
  // registry-1.docker.io.
  std::string ApiHost() const;
  bool IsDockerHub() const { return domain == kDockerHub; }
};

// kInvalidArgument naming what is wrong (uppercase repository, bad tag,
// bad digest, empty component, too long). Nothing that parses starts with
// '-' or holds a character outside [A-Za-z0-9._:/@\[\]-].
Result<ImageRef> ParseImageRef(std::string_view ref);

}  // namespace sp
