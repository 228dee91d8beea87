// Small helpers shared by the stages for reading nlohmann::json values
// without ever throwing (the WebAssembly build has exceptions off).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace toolgate {

inline double as_double(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::number_integer:
      return static_cast<double>(value.get_ref<const nlohmann::json::number_integer_t&>());
    case nlohmann::json::value_t::number_unsigned:
      return static_cast<double>(value.get_ref<const nlohmann::json::number_unsigned_t&>());
    case nlohmann::json::value_t::number_float:
      return value.get_ref<const nlohmann::json::number_float_t&>();
    default:
      return 0;
  }
}

inline const std::string& as_string(const nlohmann::json& value) {
  return value.get_ref<const std::string&>();
}

// The member `name` of a JSON object, or nullptr. `object` must be an object.
inline const nlohmann::json* find_member(const nlohmann::json& object, std::string_view name) {
  const auto& members = object.get_ref<const nlohmann::json::object_t&>();
  auto it = members.find(std::string(name));
  return it == members.end() ? nullptr : &it->second;
}

// A double as JSON, written as an integer when it is one (10, not 10.0).
inline nlohmann::json number_json(double value) {
  if (value == static_cast<double>(static_cast<std::int64_t>(value)) && value > -9007199254740992.0 &&
      value < 9007199254740992.0)
    return nlohmann::json(static_cast<std::int64_t>(value));
  return nlohmann::json(value);
}

// Compact JSON text for messages; long values are shortened with "...".
inline std::string describe(const nlohmann::json& value, std::size_t max_length = 60) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > max_length) text = text.substr(0, max_length) + "...";
  return text;
}

inline std::string_view type_name(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::boolean: return "boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: return "number";
    case nlohmann::json::value_t::string: return "string";
    case nlohmann::json::value_t::array: return "array";
    case nlohmann::json::value_t::object: return "object";
    default: return "value";
  }
}

// Number of Unicode code points in UTF-8 text.
inline std::size_t code_point_count(std::string_view text) {
  std::size_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

}  // namespace toolgate
