// Paths into a call: `args.files.0.name`, `grant.id`, `grant.role`.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "value.h"

namespace toolgate {

struct Grant {
  std::string id = "anonymous";
  nlohmann::json attributes = nlohmann::json::object();  // everything but "id"
};

class Path {
 public:
  enum class Root { args, grant };

  // Returns nullopt and sets `error` for a malformed path.
  static std::optional<Path> parse(std::string_view text, std::string& error);

  // The value at this path, or a missing Value. A decimal segment indexes an
  // array; on an object it is an ordinary key. `grant` holds the grant's
  // attributes (an object, or missing); a member named "id" in it is never
  // read: grant.id is `grant_id`.
  Value resolve(Value arguments, std::string_view grant_id, Value grant) const;

  const std::string& text() const { return text_; }
  Root root() const { return root_; }
  // The key this path reads first under its root (`amount` in args.amount.value).
  const std::string& first_segment() const { return segments_.front().key; }

 private:
  struct Segment {
    std::string key;
    std::optional<std::size_t> index;  // set when the segment is a decimal number
  };
  Root root_ = Root::args;
  std::vector<Segment> segments_;
  std::string text_;
};

}  // namespace toolgate
