// A read-only view of one JSON value, whatever holds it: a node of an
// nlohmann DOM (calls read from JSON text), a value of the binary call form
// (call_buffer.h) indexed by a CallTape, or a string held elsewhere (the
// grant id). Everything that reads a call's values (paths, conditions, the
// `args` schema, counter keys and costs) reads them through Value, so there is
// one evaluator whichever way the call came in.
//
// Why: building and freeing the call's DOM (a heap node per value, a std::map
// per object, a std::string per key and string) was most of a WebAssembly
// decision; evaluation itself was a small part. A binary call is now checked
// and indexed in one pass into a CallTape whose storage is reused from call
// to call, and read in place: the common path allocates nothing for it.
//
// A Value is two words and a tag, copied freely; it borrows what it views
// (the DOM, or the tape and the bytes it indexes), which must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace toolgate {

class CallTape;

class Value {
 public:
  // integer: a number a JSON reader holds as an integer (nlohmann's
  // number_integer / number_unsigned); number: one it holds as a double.
  // JSON Schema's "integer" and nlohmann's equality tell them apart.
  enum class Type : std::uint8_t { missing, null, boolean, integer, number, string, array, object };

  Value() = default;  // missing: a path that leads nowhere
  explicit Value(const nlohmann::json& node);
  Value(const CallTape& tape, std::uint32_t entry);
  static Value string_of(std::string_view text);

  Type type() const { return type_; }
  bool present() const { return type_ != Type::missing; }
  explicit operator bool() const { return present(); }
  bool is_null() const { return type_ == Type::null; }
  bool is_boolean() const { return type_ == Type::boolean; }
  bool is_number() const { return type_ == Type::integer || type_ == Type::number; }
  bool is_string() const { return type_ == Type::string; }
  bool is_array() const { return type_ == Type::array; }
  bool is_object() const { return type_ == Type::object; }

  bool boolean() const;          // false unless a boolean
  double number() const;         // as a double (as_double); 0 unless a number
  std::string_view string() const;  // empty unless a string
  std::size_t size() const;      // members or elements; 0 otherwise

  // The member named `key` of an object, or missing.
  Value member(std::string_view key) const;
  // Element `index` of an array, or missing.
  Value element(std::size_t index) const;

  // Each member as (key, value), ordered by key bytes (as nlohmann's
  // object_t, a std::map, orders them); stops when `visit` returns false.
  // Returns false when stopped.
  template <typename Visit>
  bool each_member(Visit&& visit) const;
  // Each element in order; stops when `visit` returns false.
  template <typename Visit>
  bool each_element(Visit&& visit) const;

  // nlohmann's operator== between the value this views and `other`: numbers
  // compare across integer and double as nlohmann does, objects by members.
  bool equals(const nlohmann::json& other) const;

  // The value as a DOM, for the rare paths that need one (traces, messages
  // quoting a value, approval ids): never on an allowed call's path.
  nlohmann::json to_json() const;

  // The DOM node viewed, or nullptr for other backings.
  const nlohmann::json* node() const { return backing_ == Backing::dom ? static_cast<const nlohmann::json*>(ptr_) : nullptr; }

 private:
  enum class Backing : std::uint8_t { none, dom, tape, text };
  const void* ptr_ = nullptr;   // dom: the node; tape: the CallTape; text: the characters
  std::uint32_t at_ = 0;        // tape: the entry; text: the length
  Backing backing_ = Backing::none;
  Type type_ = Type::missing;

  const nlohmann::json& dom() const { return *static_cast<const nlohmann::json*>(ptr_); }
  const CallTape& tape() const { return *static_cast<const CallTape*>(ptr_); }
};

// The index of one binary call (call_buffer.h), written by read_call_view:
// an entry per value the evaluation may read, each container's children in
// one contiguous block (an object's sorted by key, so member lookup is a
// binary search and iteration is in DOM order). Reused from call to call, it
// keeps its capacity: after the first calls, indexing allocates nothing.
class CallTape {
 public:
  struct Entry {
    double number = 0;               // integer, number; boolean: 0 or 1
    std::uint32_t key_at = 0;        // an object member's key: offset in the bytes
    std::uint32_t key_length = 0;
    std::uint32_t at = 0;            // string: offset of its bytes
    std::uint32_t count = 0;         // string: its length; array, object: children
    std::uint32_t first = 0;         // array, object: entry of the first child
    Value::Type type = Value::Type::missing;
  };

  std::span<const std::uint8_t> bytes;  // the buffer the entries point into
  // entries[0, used) index this call, entries[0] the top-level value. The
  // vector only grows (its size is the high-water mark of the calls read):
  // a call's entries are written over those of the last one, every field of
  // each, instead of the vector value-initialising (zeroing) a block for
  // each container on every call.
  std::vector<Entry> entries;
  std::uint32_t used = 0;

  std::string_view text(std::uint32_t at, std::uint32_t length) const {
    return {reinterpret_cast<const char*>(bytes.data()) + at, length};
  }
  std::string_view key(const Entry& entry) const { return text(entry.key_at, entry.key_length); }
};

// a.compare(b) of std::string_view (bytes compared as unsigned char, then
// the lengths), stepping over equal words eight bytes at a time: the .wasm's
// memcmp compares byte by byte, and sorting and looking up an object's keys
// compare short keys many times per call. Out of line: one copy in the .wasm.
int compare_bytes(std::string_view a, std::string_view b);

// Compact JSON text of a value for messages, as describe() (json_util.h)
// writes it, long values shortened with "...".
std::string describe(Value value, std::size_t max_length = 60);
// Appends describe() of the string `text` to `out` (a denial quoting a tool
// name): no DOM node, no allocation once `out` has room.
void append_description(std::string& out, std::string_view text, std::size_t max_length = 60);
std::string_view type_name(Value value);

// The parts joined: messages of cold paths (a refused call) are built with
// this one function rather than each with its own inlined string code (the
// size of the .wasm).
std::string join(std::initializer_list<std::string_view> parts);

template <typename Visit>
bool Value::each_member(Visit&& visit) const {
  if (type_ != Type::object) return true;
  if (backing_ == Backing::dom) {
    for (const auto& [key, member] : dom().get_ref<const nlohmann::json::object_t&>()) {
      if (!visit(std::string_view(key), Value(member))) return false;
    }
    return true;
  }
  const CallTape::Entry& entry = tape().entries[at_];
  for (std::uint32_t i = 0; i < entry.count; ++i) {
    const std::uint32_t child = entry.first + i;
    if (!visit(tape().key(tape().entries[child]), Value(tape(), child))) return false;
  }
  return true;
}

template <typename Visit>
bool Value::each_element(Visit&& visit) const {
  if (type_ != Type::array) return true;
  if (backing_ == Backing::dom) {
    for (const nlohmann::json& element : dom().get_ref<const nlohmann::json::array_t&>()) {
      if (!visit(Value(element))) return false;
    }
    return true;
  }
  const CallTape::Entry& entry = tape().entries[at_];
  for (std::uint32_t i = 0; i < entry.count; ++i) {
    if (!visit(Value(tape(), entry.first + i))) return false;
  }
  return true;
}

}  // namespace toolgate
