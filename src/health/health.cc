#include "health/health.h"

#include <algorithm>

#include "core/text.h"

namespace sp {

std::string HealthProbe::Describe() const {
  if (status == 0) return error.empty() ? std::string("no response") : error;
  std::string text = "HTTP " + std::to_string(status);
  std::string b = Trim(body);
  if (b.empty()) return text;
  // Keep messages on one line.
  std::replace(b.begin(), b.end(), '\n', ' ');
  std::replace(b.begin(), b.end(), '\r', ' ');
  if (b.size() > 200) b = b.substr(0, 200) + "...";
  return text + ": " + b;
}

}  // namespace sp
