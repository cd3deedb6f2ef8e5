#include "core/image_ref.h"

#include <regex>

namespace sp {
namespace {

// distribution/reference's grammar.
const std::regex& PathComponent() {
  static const std::regex re("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
  return re;
}
const std::regex& Domain() {
  static const std::regex re(
      "(?:(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*"
      "|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]{1,5})?");
  return re;
}
const std::regex& Tag() {
  static const std::regex re("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  return re;
}
const std::regex& Digest() {
  static const std::regex re("sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}");
  return re;
}

auto Bad(std::string_view ref, const std::string& why) {
  return Err(ErrorCode::kInvalidArgument,
             "invalid image reference '" + std::string(ref.substr(0, 200)) + "': " + why);
}

bool LooksLikeDomain(std::string_view first) {
  if (first == "localhost") return true;
  if (first.find_first_of(".:[") != std::string_view::npos) return true;
  // Docker also reads a first component with an uppercase letter as a host.
  for (char c : first) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

}  // namespace

std::string ImageRef::Reference() const {
  if (!digest.empty()) return digest;
  return tag.empty() ? "latest" : tag;
}

std::string ImageRef::Full() const {
  std::string s = Name();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string ImageRef::ApiHost() const { return IsDockerHub() ? "registry-1.docker.io" : domain; }

Result<ImageRef> ParseImageRef(std::string_view ref) {
  if (ref.empty()) return Bad(ref, "empty");
  if (ref.size() > 512) return Bad(ref, "longer than 512 characters");
  ImageRef out;
  std::string_view rest = ref;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    out.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!std::regex_match(out.digest, Digest())) return Bad(ref, "digest is not sha256:<64 hex> or sha512:<128 hex>");
  }
  // A tag is after the last ':' that comes after the last '/'.
  const size_t slash = rest.rfind('/');
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    out.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!std::regex_match(out.tag, Tag())) return Bad(ref, "tag '" + out.tag + "' is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  }
  std::string_view name = rest;
  if (auto first = name.find('/'); first != std::string_view::npos && LooksLikeDomain(name.substr(0, first))) {
    out.domain = std::string(name.substr(0, first));
    name = name.substr(first + 1);
    if (!std::regex_match(out.domain, Domain())) return Bad(ref, "registry host '" + out.domain + "' is not host[:port]");
    if (out.domain == "index.docker.io") out.domain = std::string(kDockerHub);
  } else {
    out.domain = std::string(kDockerHub);
  }
  if (name.empty()) return Bad(ref, "no repository name");
  size_t start = 0;
  while (true) {
    const size_t end = name.find('/', start);
    const std::string comp(name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (comp.empty()) return Bad(ref, "empty path component");
    if (!std::regex_match(comp, PathComponent())) {
      for (char c : comp) {
        if (c >= 'A' && c <= 'Z') return Bad(ref, "repository name must be lowercase");
      }
      return Bad(ref, "path component '" + comp + "' is not [a-z0-9] separated by '.', '_', '__' or '-'");
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  out.path = std::string(name);
  if (out.IsDockerHub() && out.path.find('/') == std::string::npos) out.path = "library/" + out.path;
  if (out.Name().size() > 255) return Bad(ref, "name longer than 255 characters");
  return out;
}

}  // namespace sp
