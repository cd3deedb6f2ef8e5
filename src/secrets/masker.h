// Masking: every secret value handed to a job, and the forms it is most often
// printed in (base64, URL-encoded, JSON-escaped), replaced by "***" in what
// is shown or stored: build logs, rollout events, notifications, API answers,
// error text. The streaming form holds back just enough of the tail to catch
// a value split across output chunks, even one byte at a time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

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

class Masker {
 public:
  Masker() = default;
  explicit Masker(const std::vector<std::string>& values);
  void Add(std::string_view value);
  bool empty() const { return forms_.empty(); }
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
  std::vector<std::string> forms_;  // Longest first.
  bool first_[256] = {};
};

}  // namespace sp
