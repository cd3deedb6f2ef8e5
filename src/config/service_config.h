// The service file `sallyport.yml` (version: 1). Schema: docs/config.md.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/text.h"
#include "health/health.h"

namespace sp {

struct RegistrySpec {
  std::string address;        // "127.0.0.1:5000"; empty = no login.
  std::string username;
  // Secret reference for the password: "file:/path" or "env:NAME". Never the value.
  std::string password_ref;
};

struct StrategySpec {
  CountOrPercent batch{1, false};
  CountOrPercent max_failures{0, false};
  Millis drain_timeout{30'000};
  Millis ready_timeout{10'000};   // LB must report UP within this.
};

// How one release of this service runs on its hosts.
struct ReleaseSpec {
  std::string name;
  std::string runtime = "docker";  // "docker" | "process"
  int port = 8080;                 // Default app port (hosts may override).
  std::vector<std::string> command;            // Args after the image/executable.
  std::map<std::string, std::string> env;
  std::vector<std::string> volumes;            // "host_path:container_path[:ro]"
  HealthCheckSpec health;
  std::vector<std::string> smoke;              // Optional argv run on the host after health.
  Millis stop_timeout{10'000};
  StrategySpec strategy;
};

struct ServiceConfig {
  std::string file;        // Path it was read from (for messages).
  std::string service;
  std::string stack;
  std::string image_repository;  // "127.0.0.1:5000/hello" (no tag); empty when no release uses docker.
  std::string image_dockerfile = "Dockerfile";  // Relative to the repository root.
  std::string image_context = ".";              // Build context, relative to the repository root.
  RegistrySpec registry;
  std::map<std::string, ReleaseSpec> releases;
};

// Parses and validates. Errors name file, line and field path, e.g.
// "sallyport.yml:12: releases.web.health.interval: invalid duration 'x'".
// Unknown and duplicate keys are errors.
Result<ServiceConfig> ParseServiceConfig(const std::string& yaml_text, const std::string& file_name);
Result<ServiceConfig> LoadServiceConfig(const std::string& path);

}  // namespace sp
