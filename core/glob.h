// Globs for tool names (`hide`, glob keys in `tools`) and the `glob` operator:
// `*` matches any run of characters (including none); every other character,
// `?` and `[` included, matches itself. Matching is linear in the text for a
// fixed pattern and never backtracks exponentially.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace toolgate {

class Glob {
 public:
  explicit Glob(std::string_view pattern);

  bool matches(std::string_view text) const;
  bool has_wildcard() const { return pieces_.size() > 1; }
  // Non-`*` characters: more literal characters means a more specific key.
  std::size_t literal_length() const { return literal_length_; }
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::vector<std::string> pieces_;  // the literal runs between `*`s
  std::size_t literal_length_ = 0;
};

}  // namespace toolgate
