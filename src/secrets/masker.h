// Masking: every secret value handed to a job, and the forms it is most often
// printed in (base64, URL-encoded, JSON-escaped), replaced by "***" in what
// is shown or stored: build logs, rollout events, notifications, API answers,
// error text. The streaming form holds back just enough of the tail to catch
// a value split across output chunks, even one byte at a time.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sp {

inline constexpr char kMask[] = "***";
// Shorter values are not masked (a one-letter secret would blank every log);
// MaskableValue says so.
inline constexpr size_t kMinMaskedBytes = 4;
bool MaskableValue(std::string_view value);

// The printed forms of `value` that are masked: itself, its base64 (without
// padding, which depends on what follows), its URL encoding (upper and lower
// case hex) and its JSON-escaped form; each once, longest first.
std::vector<std::string> MaskedForms(std::string_view value);

// Thread-safe: values may be added while other threads mask.
class Masker {
 public:
  Masker() = default;
  explicit Masker(const std::vector<std::string>& values);
  void Add(std::string_view value);
  bool empty() const {
    std::lock_guard l(mu_);
    return forms_.empty();
  }
  // `text` with every form replaced.
  std::string Mask(std::string_view text) const;

  // A stream: Feed returns what is safe to show now; the held-back tail is
  // at most one form's length minus one. Flush returns the rest.
  class Stream {
   public:
    explicit Stream(const Masker& m) : m_(m) {}
    std::string Feed(std::string_view chunk);
    std::string Flush();

   private:
    const Masker& m_;
    std::string held_;
  };

 private:
  // Replaces matches in `buf` from the start; with `hold`, stops where the
  // rest could still become a match and leaves that in `rest`.
  std::string Scan(std::string_view buf, bool hold, std::string* rest) const;
  mutable std::mutex mu_;
  std::vector<std::string> forms_;  // Longest first.
  bool first_[256] = {};
};

// Every string (and key) of a JSON document masked in place.
template <typename Json>
void MaskJson(const Masker& m, Json& doc) {
  if (m.empty()) return;
  if (doc.is_string()) {
    doc = m.Mask(doc.template get_ref<const std::string&>());
  } else if (doc.is_array()) {
    for (auto& v : doc) MaskJson(m, v);
  } else if (doc.is_object()) {
    Json out = Json::object();
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      Json v = it.value();
      MaskJson(m, v);
      out[m.Mask(it.key())] = std::move(v);
    }
    doc = std::move(out);
  }
}

}  // namespace sp
