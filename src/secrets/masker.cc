#include "secrets/masker.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "core/text.h"

namespace sp {
namespace {

// The characters of `value`'s base64 that it alone decides (the last one or
// two depend on whatever follows it in a longer text).
std::string DecidedBase64(std::string_view value) {
  return Base64(value).substr(0, 4 * (value.size() / 3) + value.size() % 3);
}

// UrlQuery with lower-case hex digits.
std::string LowerHexEscapes(std::string s) {
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    if (s[i] != '%') continue;
    s[i + 1] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i + 1])));
    s[i + 2] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i + 2])));
  }
  return s;
}

}  // namespace

bool MaskableValue(std::string_view value) { return value.size() >= kMinMaskedBytes; }

std::vector<std::string> MaskedForms(std::string_view value) {
  std::vector<std::string> out;
  if (!MaskableValue(value)) return out;
  std::string json = nlohmann::json(std::string(value)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  json = json.substr(1, json.size() - 2);
  for (std::string f : {std::string(value), DecidedBase64(value), UrlQuery(value), LowerHexEscapes(UrlQuery(value)), json}) {
    if (f.size() >= kMinMaskedBytes && std::find(out.begin(), out.end(), f) == out.end()) out.push_back(std::move(f));
  }
  return out;
}

Masker::Masker(const std::vector<std::string>& values) {
  for (const auto& v : values) Add(v);
}

void Masker::Add(std::string_view value) {
  std::lock_guard l(mu_);
  for (auto& f : MaskedForms(value)) {
    if (std::find(forms_.begin(), forms_.end(), f) != forms_.end()) continue;
    first_[static_cast<unsigned char>(f[0])] = true;
    forms_.push_back(std::move(f));
  }
  std::stable_sort(forms_.begin(), forms_.end(), [](const std::string& a, const std::string& b) {
    return a.size() > b.size();
  });
}

std::string Masker::Scan(std::string_view buf, bool hold, std::string* rest) const {
  std::string out;
  out.reserve(buf.size());
  size_t i = 0;
  while (i < buf.size()) {
    if (!first_[static_cast<unsigned char>(buf[i])]) {
      out += buf[i++];
      continue;
    }
    const std::string_view tail = buf.substr(i);
    const std::string* hit = nullptr;
    for (const auto& f : forms_) {  // Longest first.
      if (tail.starts_with(f)) {
        hit = &f;
        break;
      }
      if (hold && tail.size() < f.size() && std::string_view(f).starts_with(tail)) {
        // A longer value may still be arriving: hold the tail back.
        if (rest) *rest = std::string(tail);
        return out;
      }
    }
    if (hit) {
      out += kMask;
      i += hit->size();
    } else {
      out += buf[i++];
    }
  }
  if (rest) rest->clear();
  return out;
}

std::string Masker::Mask(std::string_view text) const {
  std::lock_guard l(mu_);
  if (forms_.empty()) return std::string(text);
  return Scan(text, false, nullptr);
}

std::string Masker::Stream::Feed(std::string_view chunk) {
  std::lock_guard l(m_.mu_);
  if (m_.forms_.empty()) return std::string(chunk);
  const std::string buf = held_ + std::string(chunk);
  return m_.Scan(buf, true, &held_);
}

std::string Masker::Stream::Flush() {
  std::string out = m_.Mask(held_);
  held_.clear();
  return out;
}

}  // namespace sp
