#include "value.h"

#include <algorithm>
#include <cstring>

#include "json_util.h"

namespace toolgate {
namespace {

using json = nlohmann::json;

Value::Type type_of(const json& node) {
  switch (node.type()) {
    case json::value_t::null: return Value::Type::null;
    case json::value_t::boolean: return Value::Type::boolean;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return Value::Type::integer;
    case json::value_t::number_float: return Value::Type::number;
    case json::value_t::string: return Value::Type::string;
    case json::value_t::array: return Value::Type::array;
    case json::value_t::object: return Value::Type::object;
    default: return Value::Type::missing;  // binary, discarded: never read from a call
  }
}

// A tape number as the DOM reader would hold it: the binary form's integers
// are safe integers, read as unsigned when non-negative, as JSON text is.
json number_node(Value::Type type, double number) {
  if (type == Value::Type::number) return json(number);
  if (number >= 0) return json(static_cast<json::number_unsigned_t>(number));
  return json(static_cast<json::number_integer_t>(number));
}

}  // namespace

int compare_bytes(std::string_view a, std::string_view b) {
  const std::size_t common = a.size() < b.size() ? a.size() : b.size();
  std::size_t i = 0;
  for (; i + 8 <= common; i += 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (x != y) break;  // the byte loop below finds the first difference in this word
  }
  for (; i < common; ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x != y) return x < y ? -1 : 1;
  }
  return a.size() == b.size() ? 0 : (a.size() < b.size() ? -1 : 1);
}

Value::Value(const json& node) : ptr_(&node), backing_(Backing::dom), type_(type_of(node)) {}

Value::Value(const CallTape& tape, std::uint32_t entry)
    : ptr_(&tape), at_(entry), backing_(Backing::tape), type_(tape.entries[entry].type) {}

Value Value::string_of(std::string_view text) {
  Value value;
  value.ptr_ = text.data();
  value.at_ = static_cast<std::uint32_t>(text.size());
  value.backing_ = Backing::text;
  value.type_ = Type::string;
  return value;
}

bool Value::boolean() const {
  if (type_ != Type::boolean) return false;
  if (backing_ == Backing::dom) return dom().get<bool>();
  return tape().entries[at_].number != 0;
}

double Value::number() const {
  if (!is_number()) return 0;
  if (backing_ == Backing::dom) return as_double(dom());
  return tape().entries[at_].number;
}

std::string_view Value::string() const {
  if (type_ != Type::string) return {};
  switch (backing_) {
    case Backing::dom: return as_string(dom());
    case Backing::text: return {static_cast<const char*>(ptr_), at_};
    default: {
      const CallTape::Entry& entry = tape().entries[at_];
      return tape().text(entry.at, entry.count);
    }
  }
}

std::size_t Value::size() const {
  if (type_ != Type::array && type_ != Type::object) return 0;
  if (backing_ == Backing::dom) return dom().size();
  return tape().entries[at_].count;
}

Value Value::member(std::string_view key) const {
  if (type_ != Type::object) return {};
  if (backing_ == Backing::dom) {
    const json* found = find_member(dom(), key);
    return found ? Value(*found) : Value();
  }
  // The block is sorted by key bytes (read_call_view): binary search.
  const CallTape& t = tape();
  const CallTape::Entry& entry = t.entries[at_];
  std::uint32_t low = entry.first, high = entry.first + entry.count;
  while (low < high) {
    const std::uint32_t middle = low + (high - low) / 2;
    const int order = compare_bytes(t.key(t.entries[middle]), key);
    if (order == 0) return Value(t, middle);
    if (order < 0) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return {};
}

Value Value::element(std::size_t index) const {
  if (type_ != Type::array || index >= size()) return {};
  if (backing_ == Backing::dom) return Value(dom().get_ref<const json::array_t&>()[index]);
  return Value(tape(), tape().entries[at_].first + static_cast<std::uint32_t>(index));
}

bool Value::equals(const json& other) const {
  switch (backing_) {
    case Backing::dom: return dom() == other;
    case Backing::text: return other.is_string() && as_string(other) == string();
    case Backing::none: return false;
    case Backing::tape: break;
  }
  switch (type_) {
    case Type::null: return other.is_null();
    case Type::boolean: return other.is_boolean() && other.get<bool>() == boolean();
    // Numbers go through nlohmann's own comparison (integer against double,
    // signed against unsigned): a scalar node costs no allocation.
    case Type::integer:
    case Type::number: return other.is_number() && number_node(type_, number()) == other;
    case Type::string: return other.is_string() && as_string(other) == string();
    case Type::array: {
      if (!other.is_array() || other.size() != size()) return false;
      const auto& elements = other.get_ref<const json::array_t&>();
      std::size_t i = 0;
      return each_element([&](Value element) { return element.equals(elements[i++]); });
    }
    case Type::object: {
      if (!other.is_object() || other.size() != size()) return false;
      // Keys are unique on both sides: the same size and every member of
      // `other` equal to ours is std::map's equality.
      for (const auto& [key, member] : other.get_ref<const json::object_t&>()) {
        Value mine = this->member(key);
        if (!mine || !mine.equals(member)) return false;
      }
      return true;
    }
    default: return false;
  }
}

json Value::to_json() const {
  switch (backing_) {
    case Backing::dom: return dom();
    case Backing::text: return json(std::string(string()));
    case Backing::none: return json();
    case Backing::tape: break;
  }
  switch (type_) {
    case Type::boolean: return json(boolean());
    case Type::integer:
    case Type::number: return number_node(type_, number());
    case Type::string: return json(std::string(string()));
    case Type::array: {
      json out = json::array();
      auto& elements = out.get_ref<json::array_t&>();
      elements.reserve(size());
      each_element([&](Value element) {
        elements.push_back(element.to_json());
        return true;
      });
      return out;
    }
    case Type::object: {
      json out = json::object();
      auto& members = out.get_ref<json::object_t&>();
      each_member([&](std::string_view key, Value member) {
        members.emplace(std::string(key), member.to_json());
        return true;
      });
      return out;
    }
    default: return json();
  }
}

// The text nlohmann's dump writes for a string (ensure_ascii off), for valid
// UTF-8, shortened as describe() does; dump's own replacement rules otherwise.
void append_description(std::string& out, std::string_view text, std::size_t max_length) {
  if (!is_utf8(text)) {
    out += describe(json(std::string(text)), max_length);
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  const std::size_t base = out.size();
  const std::size_t enough = base + max_length + 4;  // past the cut nothing more shows
  out += '"';
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (out.size() > enough) break;
    // A run of characters written as they are goes in one append.
    std::size_t run = i;
    while (run < text.size() && run - i < max_length + 4 && static_cast<unsigned char>(text[run]) >= 0x20 &&
           text[run] != '"' && text[run] != '\\')
      ++run;
    if (run != i) {
      out.append(text, i, run - i);
      i = run - 1;
      continue;
    }
    const char c = text[i];
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[static_cast<unsigned char>(c) >> 4];
          out += kHex[static_cast<unsigned char>(c) & 0xF];
        } else {
          out += c;
        }
    }
  }
  if (out.size() <= enough) out += '"';
  if (out.size() - base > max_length) {
    // describe()'s cut (shorten_description), on the appended part.
    std::size_t cut = base + max_length;
    while (cut > base && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
}

std::string describe(Value value, std::size_t max_length) {
  if (const json* node = value.node()) return describe(*node, max_length);
  if (value.is_string()) {
    std::string out;
    append_description(out, value.string(), max_length);
    return out;
  }
  return describe(value.to_json(), max_length);
}

std::string join(std::initializer_list<std::string_view> parts) {
  std::size_t size = 0;
  for (std::string_view part : parts) size += part.size();
  std::string out;
  out.reserve(size);
  for (std::string_view part : parts) out += part;
  return out;
}

std::string_view type_name(Value value) {
  switch (value.type()) {
    case Value::Type::null: return "null";
    case Value::Type::boolean: return "boolean";
    case Value::Type::integer:
    case Value::Type::number: return "number";
    case Value::Type::string: return "string";
    case Value::Type::array: return "array";
    case Value::Type::object: return "object";
    default: return "value";
  }
}

}  // namespace toolgate
