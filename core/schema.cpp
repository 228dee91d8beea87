#include "schema.h"

#include <cmath>

#include "json_util.h"

namespace toolgate {
namespace {

using json = nlohmann::json;

bool type_matches(std::uint8_t types, Value value) {
  if (types == 0) return true;
  switch (value.type()) {
    case Value::Type::null: return types & Schema::kNull;
    case Value::Type::boolean: return types & Schema::kBoolean;
    case Value::Type::object: return types & Schema::kObject;
    case Value::Type::array: return types & Schema::kArray;
    case Value::Type::string: return types & Schema::kString;
    case Value::Type::integer: return types & (Schema::kNumber | Schema::kInteger);
    case Value::Type::number: {
      if (types & Schema::kNumber) return true;
      // JSON Schema counts 1.0 as an integer.
      double number = value.number();
      return (types & Schema::kInteger) && std::isfinite(number) && std::floor(number) == number;
    }
    default: return false;
  }
}

// Where an instance stands ("args.items.0.name"), as a chain on the stack:
// rendered to text only when a message names it.
struct Where {
  const Where* parent = nullptr;
  std::string_view text;        // the root's text, or a member's key
  std::optional<std::size_t> index;  // an array element's index

  std::string render() const {
    if (!parent) return std::string(text);
    std::string out = parent->render();
    out += '.';
    if (index) {
      out += std::to_string(*index);
    } else {
      out += text;
    }
    return out;
  }
};

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

std::optional<std::string> check(const Schema& schema, Value instance, const Where& at) {
  if (!type_matches(schema.types, instance)) {
    return join({at.render(), " must be of type ", type_list(schema.types), ", not ", type_name(instance)});
  }
  if (schema.constant && !instance.equals(*schema.constant)) {
    return join({at.render(), " must be ", describe(*schema.constant), " (got ", describe(instance), ")"});
  }
  if (schema.enumeration) {
    bool found = false;
    for (const json& option : *schema.enumeration) found = found || instance.equals(option);
    if (!found) return join({at.render(), " must be one of ", describe(json(*schema.enumeration)), " (got ", describe(instance), ")"});
  }
  if (instance.is_number()) {
    double number = instance.number();
    if (schema.minimum && number < *schema.minimum)
      return join({at.render(), ": ", describe(instance), " is less than the minimum ", number_text(*schema.minimum)});
    if (schema.maximum && number > *schema.maximum)
      return join({at.render(), ": ", describe(instance), " is greater than the maximum ", number_text(*schema.maximum)});
    if (schema.exclusive_minimum && number <= *schema.exclusive_minimum)
      return join({at.render(), ": ", describe(instance), " must be greater than ", number_text(*schema.exclusive_minimum)});
    if (schema.exclusive_maximum && number >= *schema.exclusive_maximum)
      return join({at.render(), ": ", describe(instance), " must be less than ", number_text(*schema.exclusive_maximum)});
  } else if (instance.is_string()) {
    std::string_view text = instance.string();
    if (schema.min_length || schema.max_length) {
      std::size_t length = code_point_count(text);
      if (schema.min_length && length < *schema.min_length)
        return join({at.render(), " must be at least ", std::to_string(*schema.min_length), " characters long"});
      if (schema.max_length && length > *schema.max_length)
        return join({at.render(), " must be at most ", std::to_string(*schema.max_length), " characters long"});
    }
    if (schema.pattern && !schema.pattern->search(text))
      return join({at.render(), " must match the pattern ", describe(json(schema.pattern->pattern()))});
  } else if (instance.is_array()) {
    const std::size_t count = instance.size();
    if (schema.min_items && count < *schema.min_items)
      return join({at.render(), " must have at least ", std::to_string(*schema.min_items), " items"});
    if (schema.max_items && count > *schema.max_items)
      return join({at.render(), " must have at most ", std::to_string(*schema.max_items), " items"});
    if (schema.items) {
      std::optional<std::string> error;
      std::size_t i = 0;
      instance.each_element([&](Value element) {
        Where here{&at, {}, i++};
        error = check(*schema.items, element, here);
        return !error;
      });
      if (error) return error;
    }
  } else if (instance.is_object()) {
    for (const std::string& name : schema.required) {
      if (!instance.member(name)) return join({at.render(), ".", name, " is required"});
    }
    std::optional<std::string> error;
    instance.each_member([&](std::string_view name, Value value) {
      Where here{&at, name, std::nullopt};
      auto property = schema.properties.find(name);
      if (property != schema.properties.end()) {
        error = check(property->second, value, here);
      } else if (schema.additional_schema) {
        error = check(*schema.additional_schema, value, here);
      } else if (schema.additional_allowed == false) {
        error = join({here.render(), " is not an allowed argument"});
      }
      return !error;
    });
    if (error) return error;
  }
  return std::nullopt;
}


}  // namespace

std::optional<std::string> validate(const Schema& schema, Value instance, std::string_view where) {
  return check(schema, instance, Where{nullptr, where, std::nullopt});
}

std::optional<std::string> validate(const Schema& schema, const json& instance, const std::string& where) {
  return validate(schema, Value(instance), where);
}

}  // namespace toolgate
