#include "secrets/masker.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace sp {
namespace {

std::string Base64(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8 |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  // The last one or two bytes: only the characters they fully decide (the
  // next is shared with whatever follows in a longer text).
  if (i + 1 == in.size()) {
    out += kAlphabet[static_cast<unsigned char>(in[i]) >> 2];
  } else if (i + 2 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 8 | static_cast<unsigned char>(in[i + 1]);
    out += kAlphabet[v >> 10];
    out += kAlphabet[(v >> 4) & 63];
  }
  return out;
}

std::string UrlEncoded(std::string_view in, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

}  // namespace

bool MaskableValue(std::string_view value) { return value.size() >= kMinMaskedBytes; }

std::vector<std::string> MaskedForms(std::string_view value) {
  std::vector<std::string> out;
  if (!MaskableValue(value)) return out;
  std::string json = nlohmann::json(std::string(value)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  json = json.substr(1, json.size() - 2);
  for (std::string f : {std::string(value), Base64(value), UrlEncoded(value, true), UrlEncoded(value, false), json}) {
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
