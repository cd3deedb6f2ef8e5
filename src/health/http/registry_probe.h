// Preflight check that an image can be pulled: asks the registry's HTTP API
// (GET/HEAD /v2/<repo>/manifests/<ref>) with basic auth, without pulling.
#pragma once

#include <optional>
#include <string>

#include "core/clock.h"
#include "core/error.h"

namespace sp {

struct ImageRef {
  std::string registry;    // "127.0.0.1:5000"; empty = Docker Hub (unsupported here).
  std::string repository;  // "team/app"
  std::string reference;   // tag or "sha256:..."
};
Result<ImageRef> ParseImageRef(const std::string& ref);

// Ok if the manifest exists. kUnavailable when the registry cannot be
// reached, kInvalidArgument when credentials are rejected, kNotFound when the
// image is missing. The password never appears in the error.
// `unix_socket`, when set, is a local socket reaching the registry (an SSH
// forward through a bastion); the URL and Host header still name the registry.
Status CheckManifest(const std::string& image, const std::string& username, const std::string& password,
                     Millis timeout = Millis(5000), const std::string& unix_socket = "");

}  // namespace sp
