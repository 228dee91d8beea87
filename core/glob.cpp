#include "glob.h"

namespace toolgate {

Glob::Glob(std::string_view pattern) : pattern_(pattern) {
  std::size_t start = 0;
  while (true) {
    std::size_t star = pattern.find('*', start);
    pieces_.emplace_back(pattern.substr(start, star == std::string_view::npos ? std::string_view::npos : star - start));
    literal_length_ += pieces_.back().size();
    if (star == std::string_view::npos) break;
    start = star + 1;
  }
}

bool Glob::matches(std::string_view text) const {
  if (pieces_.size() == 1) return text == pieces_.front();
  const std::string& first = pieces_.front();
  const std::string& last = pieces_.back();
  if (text.size() < first.size() + last.size()) return false;
  if (text.substr(0, first.size()) != first) return false;
  if (text.substr(text.size() - last.size()) != last) return false;
  // With only `*` wildcards, taking each middle piece at its leftmost
  // occurrence is always right: it leaves the most text for what follows.
  std::string_view middle = text.substr(first.size(), text.size() - first.size() - last.size());
  for (std::size_t i = 1; i + 1 < pieces_.size(); ++i) {
    std::size_t at = middle.find(pieces_[i]);
    if (at == std::string_view::npos) return false;
    middle.remove_prefix(at + pieces_[i].size());
  }
  return true;
}

}  // namespace toolgate
