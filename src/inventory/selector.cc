#include "inventory/selector.h"

#include "core/text.h"

namespace sp {

bool IsValidTagText(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':')) {
      return false;
    }
  }
  return true;
}

bool Selector::Matches(const std::map<std::string, std::string>& tags) const {
  for (const auto& t : terms) {
    auto it = tags.find(t.key);
    switch (t.op) {
      case SelectorTerm::kExists:
        if (it == tags.end()) return false;
        break;
      case SelectorTerm::kEquals:
        if (it == tags.end() || it->second != t.value) return false;
        break;
      case SelectorTerm::kNotEquals:
        if (it != tags.end() && it->second == t.value) return false;
        break;
    }
  }
  return true;
}

std::string Selector::ToString() const {
  std::string out;
  for (const auto& t : terms) {
    if (!out.empty()) out += ",";
    out += t.key;
    if (t.op == SelectorTerm::kEquals) out += "=" + t.value;
    if (t.op == SelectorTerm::kNotEquals) out += "!=" + t.value;
  }
  return out;
}

Result<Selector> ParseSelector(const std::string& text) {
  Selector sel;
  if (Trim(text).empty()) return sel;
  for (const auto& raw : Split(text, ',')) {
    const std::string term = Trim(raw);
    auto bad = [&](const std::string& why) {
      return Err(ErrorCode::kInvalidArgument, "selector '" + text + "': term '" + term + "' " + why);
    };
    SelectorTerm t;
    size_t ne = term.find("!=");
    size_t eq = term.find('=');
    if (ne != std::string::npos) {
      t.op = SelectorTerm::kNotEquals;
      t.key = term.substr(0, ne);
      t.value = term.substr(ne + 2);
    } else if (eq != std::string::npos) {
      t.op = SelectorTerm::kEquals;
      t.key = term.substr(0, eq);
      t.value = term.substr(eq + 1);
    } else {
      t.key = term;
    }
    if (!IsValidTagText(t.key)) return bad("has an invalid key (letters, digits and - _ . / : only)");
    if (t.op != SelectorTerm::kExists && !IsValidTagText(t.value)) {
      return bad("has an invalid value (letters, digits and - _ . / : only)");
    }
    sel.terms.push_back(std::move(t));
  }
  return sel;
}

}  // namespace sp
