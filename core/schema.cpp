#include "schema.h"

#include <cmath>

#include "json_util.h"

namespace toolgate {
namespace {

using json = nlohmann::json;

bool type_matches(std::uint8_t types, const json& value) {
  if (types == 0) return true;
  switch (value.type()) {
    case json::value_t::null: return types & Schema::kNull;
    case json::value_t::boolean: return types & Schema::kBoolean;
    case json::value_t::object: return types & Schema::kObject;
    case json::value_t::array: return types & Schema::kArray;
    case json::value_t::string: return types & Schema::kString;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return types & (Schema::kNumber | Schema::kInteger);
    case json::value_t::number_float: {
      if (types & Schema::kNumber) return true;
      // JSON Schema counts 1.0 as an integer.
      double number = as_double(value);
      return (types & Schema::kInteger) && std::isfinite(number) && std::floor(number) == number;
    }
    default: return false;
  }
}

std::string type_list(std::uint8_t types) {
  static constexpr std::pair<std::uint8_t, const char*> kNames[] = {
      {Schema::kNull, "null"},     {Schema::kBoolean, "boolean"}, {Schema::kObject, "object"},
      {Schema::kArray, "array"},   {Schema::kNumber, "number"},   {Schema::kString, "string"},
      {Schema::kInteger, "integer"}};
  std::string out;
  for (auto [bit, name] : kNames) {
    if (!(types & bit)) continue;
    if (!out.empty()) out += " or ";
    out += name;
  }
  return out;
}

std::string number_text(double number) { return describe(number_json(number)); }

}  // namespace

std::optional<std::string> validate(const Schema& schema, const json& instance, const std::string& where) {
  if (!type_matches(schema.types, instance)) {
    return where + " must be of type " + type_list(schema.types) + ", not " + std::string(type_name(instance));
  }
  if (schema.constant && !(instance == *schema.constant)) {
    return where + " must be " + describe(*schema.constant) + " (got " + describe(instance) + ")";
  }
  if (schema.enumeration) {
    bool found = false;
    for (const json& option : *schema.enumeration) found = found || instance == option;
    if (!found) return where + " must be one of " + describe(json(*schema.enumeration)) + " (got " + describe(instance) + ")";
  }
  if (instance.is_number()) {
    double number = as_double(instance);
    if (schema.minimum && number < *schema.minimum)
      return where + ": " + describe(instance) + " is less than the minimum " + number_text(*schema.minimum);
    if (schema.maximum && number > *schema.maximum)
      return where + ": " + describe(instance) + " is greater than the maximum " + number_text(*schema.maximum);
    if (schema.exclusive_minimum && number <= *schema.exclusive_minimum)
      return where + ": " + describe(instance) + " must be greater than " + number_text(*schema.exclusive_minimum);
    if (schema.exclusive_maximum && number >= *schema.exclusive_maximum)
      return where + ": " + describe(instance) + " must be less than " + number_text(*schema.exclusive_maximum);
  } else if (instance.is_string()) {
    const std::string& text = as_string(instance);
    if (schema.min_length || schema.max_length) {
      std::size_t length = code_point_count(text);
      if (schema.min_length && length < *schema.min_length)
        return where + " must be at least " + std::to_string(*schema.min_length) + " characters long";
      if (schema.max_length && length > *schema.max_length)
        return where + " must be at most " + std::to_string(*schema.max_length) + " characters long";
    }
    if (schema.pattern && !schema.pattern->search(text))
      return where + " must match the pattern " + describe(json(schema.pattern->pattern()));
  } else if (instance.is_array()) {
    const auto& array = instance.get_ref<const json::array_t&>();
    if (schema.min_items && array.size() < *schema.min_items)
      return where + " must have at least " + std::to_string(*schema.min_items) + " items";
    if (schema.max_items && array.size() > *schema.max_items)
      return where + " must have at most " + std::to_string(*schema.max_items) + " items";
    if (schema.items) {
      for (std::size_t i = 0; i < array.size(); ++i) {
        if (auto error = validate(*schema.items, array[i], where + "." + std::to_string(i))) return error;
      }
    }
  } else if (instance.is_object()) {
    const auto& object = instance.get_ref<const json::object_t&>();
    for (const std::string& name : schema.required) {
      if (object.find(name) == object.end()) return where + "." + name + " is required";
    }
    for (const auto& [name, value] : object) {
      auto property = schema.properties.find(name);
      if (property != schema.properties.end()) {
        if (auto error = validate(property->second, value, where + "." + name)) return error;
      } else if (schema.additional_schema) {
        if (auto error = validate(*schema.additional_schema, value, where + "." + name)) return error;
      } else if (schema.additional_allowed == false) {
        return where + "." + name + " is not an allowed argument";
      }
    }
  }
  return std::nullopt;
}

}  // namespace toolgate
