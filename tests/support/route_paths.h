// Concrete paths for the server's route patterns, for tests that walk every
// route: captures filled in order with plausible values ("demo", "web",
// "dev" for names: a lock's stack/release/deployment), optional groups taken.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sp::test {

inline std::string PathFor(std::string pattern) {
  for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
           {R"((\d+))", "1"}, {"(heartbeat|complete|fail|handback)", "heartbeat"}, {"(retry|cancel)", "retry"},
           {"([A-Za-z0-9_.-]+)", "r-1"}, {"([a-z0-9][a-z0-9-]{0,62})", "web"}, {"(releases|hosts)", "releases"}}) {
    for (size_t at; (at = pattern.find(from)) != std::string::npos;) pattern.replace(at, from.size(), to);
  }
  const char* names[] = {"demo", "web", "dev"};
  int n = 0;
  for (const std::string from : {"([^/]+)", "[^/]+"}) {
    for (size_t at; (at = pattern.find(from)) != std::string::npos;) pattern.replace(at, from.size(), names[n++ % 3]);
  }
  std::string out;
  for (char c : pattern) {
    if (c != '(' && c != ')' && c != '?') out += c;
  }
  return out;
}

}  // namespace sp::test
