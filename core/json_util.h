// Small helpers shared by the stages for reading nlohmann::json values
// without ever throwing (the WebAssembly build has exceptions off).
#pragma once

#include <cmath>
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
  auto it = members.find(name);  // object_t compares with std::less<>: no std::string built
  return it == members.end() ? nullptr : &it->second;
}

// A double as JSON, written as an integer when it is one (10, not 10.0).
inline nlohmann::json number_json(double value) {
  // Range first: converting a double outside int64 (a cost_from of 1e300) is
  // undefined behaviour.
  if (value > -9007199254740992.0 && value < 9007199254740992.0 && value == std::trunc(value))
    return nlohmann::json(static_cast<std::int64_t>(value));
  return nlohmann::json(value);
}

// Compact JSON text for messages; long values are shortened with "...".
// `text` cut to `max_length` bytes with "..." when longer (describe's rule).
inline void shorten_description(std::string& text, std::size_t max_length) {
  if (text.size() > max_length) {
    // Cut between code points: a split UTF-8 sequence would make the message
    // (and any JSON carrying it) invalid UTF-8.
    std::size_t cut = max_length;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    text += "...";
  }
}

inline std::string describe(const nlohmann::json& value, std::size_t max_length = 60) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  shorten_description(text, max_length);
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

// Length of the well-formed UTF-8 sequence starting at text[at] (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0 if there is none.
inline std::size_t utf8_sequence_length(std::string_view text, std::size_t at) {
  const auto byte = [&](std::size_t i) { return i < text.size() ? static_cast<unsigned char>(text[i]) : 0u; };
  const unsigned lead = byte(at);
  if (lead < 0x80) return 1;
  std::size_t length = lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3 : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
  if (length == 0) return 0;
  const unsigned second = byte(at + 1);
  unsigned low = 0x80, high = 0xBF;
  if (lead == 0xE0) low = 0xA0;
  if (lead == 0xED) high = 0x9F;  // no surrogates
  if (lead == 0xF0) low = 0x90;
  if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  if (second < low || second > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if ((byte(at + i) & 0xC0) != 0x80) return 0;
  }
  return length;
}

// Whether `text` is well-formed UTF-8 throughout (what JSON text can carry).
inline bool is_utf8(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    std::size_t length = utf8_sequence_length(text, at);
    if (length == 0) return false;
    at += length;
  }
  return true;
}

// `text` with each byte that is not part of well-formed UTF-8 replaced by
// U+FFFD, for messages that quote input (a parser's "last read: ...").
inline std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t at = 0; at < text.size();) {
    std::size_t length = utf8_sequence_length(text, at);
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      ++at;
    } else {
      out.append(text, at, length);
      at += length;
    }
  }
  return out;
}

// Number of Unicode code points in UTF-8 text.
inline std::size_t code_point_count(std::string_view text) {
  std::size_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

}  // namespace toolgate
