// The JSON Schema subset a tool entry's `args` may use: type, properties,
// required, additionalProperties, enum, const, pattern, minLength, maxLength,
// minimum, maximum, exclusiveMinimum, exclusiveMaximum, items, minItems, maxItems
// (plus the annotations title, description, default, examples, $comment, which
// never change a result). Keywords apply as in JSON Schema 2020-12: a keyword
// for one type ignores instances of other types, so pair `minimum` with
// `"type": "number"` (compile warns where that is missing).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "regex.h"
#include "value.h"

namespace toolgate {

struct Schema {
  // Bit set of allowed JSON types; 0 means any type.
  enum TypeBit : std::uint8_t {
    kNull = 1, kBoolean = 2, kObject = 4, kArray = 8, kNumber = 16, kString = 32, kInteger = 64
  };
  std::uint8_t types = 0;
  std::map<std::string, Schema, std::less<>> properties;
  std::vector<std::string> required;
  std::optional<bool> additional_allowed;       // additionalProperties: true/false
  std::unique_ptr<Schema> additional_schema;    // additionalProperties: {schema}
  std::optional<std::vector<nlohmann::json>> enumeration;
  std::optional<nlohmann::json> constant;
  std::optional<Regex> pattern;
  std::optional<std::size_t> min_length, max_length, min_items, max_items;
  std::optional<double> minimum, maximum, exclusive_minimum, exclusive_maximum;
  std::unique_ptr<Schema> items;
  std::string pointer;  // where this schema stands in the policy

  Schema() = default;
  Schema(Schema&&) = default;
  Schema& operator=(Schema&&) = default;
};

// Checks `instance` against `schema`. Returns nullopt when it satisfies it,
// else a message naming the first violation and where (e.g. "args.amount: 250
// is greater than the maximum 100").
// `where` is rendered only for a message: a valid instance builds no text.
std::optional<std::string> validate(const Schema& schema, Value instance, std::string_view where);
std::optional<std::string> validate(const Schema& schema, const nlohmann::json& instance, const std::string& where);

}  // namespace toolgate
