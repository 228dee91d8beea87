#include "path.h"

#include <charconv>

namespace toolgate {

std::optional<Path> Path::parse(std::string_view text, std::string& error) {
  Path path;
  path.text_ = std::string(text);
  std::string_view rest;
  if (text.rfind("args.", 0) == 0) {
    path.root_ = Root::args;
    rest = text.substr(5);
  } else if (text.rfind("grant.", 0) == 0) {
    path.root_ = Root::grant;
    rest = text.substr(6);
  } else {
    error = "path \"" + std::string(text) +
            "\" must start with \"args.\" (the call's arguments) or \"grant.\" (grant.id or a grant attribute)";
    return std::nullopt;
  }
  while (true) {
    std::size_t dot = rest.find('.');
    std::string_view token = rest.substr(0, dot);
    if (token.empty()) {
      error = "path \"" + std::string(text) + "\" has an empty segment; write segments separated by single dots";
      return std::nullopt;
    }
    Segment segment{std::string(token), std::nullopt};
    bool decimal = token.size() <= 15 && (token == "0" || token.front() != '0');
    for (char c : token) decimal = decimal && c >= '0' && c <= '9';
    if (decimal) {
      std::size_t index = 0;
      std::from_chars(token.data(), token.data() + token.size(), index);
      segment.index = index;
    }
    path.segments_.push_back(std::move(segment));
    if (dot == std::string_view::npos) break;
    rest = rest.substr(dot + 1);
  }
  return path;
}

Value Path::resolve(Value arguments, std::string_view grant_id, Value grant) const {
  Value current = arguments;
  if (root_ == Root::grant) {
    if (segments_.front().key == "id") {
      // grant.id is a string: it has no members of its own.
      if (segments_.size() != 1) return {};
      return Value::string_of(grant_id);
    }
    current = grant;
  }
  for (const Segment& segment : segments_) {
    if (current.is_object()) {
      current = current.member(segment.key);
    } else if (current.is_array() && segment.index) {
      current = current.element(*segment.index);
    } else {
      return {};
    }
    if (!current) return {};
  }
  return current;
}

}  // namespace toolgate
