#include "call_buffer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "json_util.h"

namespace toolgate {
namespace {

using json = nlohmann::json;

constexpr double kMaxSafeInteger = 9007199254740991.0;

class BufferReader {
 public:
  BufferReader(std::span<const std::uint8_t> bytes, std::size_t max_depth) : bytes_(bytes), max_depth_(max_depth) {}

  // Decode only these members of the top-level "arguments" object.
  void filter_arguments(const ArgumentUse* use) { argument_use_ = use; }

  // The string value of the top-level member `name`, if the buffer holds a
  // top-level object with one; the cursor is left where it was.
  std::optional<std::string_view> peek_top_level_string(std::string_view name) {
    std::size_t start = at_;
    std::optional<std::string_view> found;
    std::uint8_t tag = 0;
    std::uint32_t count = 0;
    if (byte(tag) && tag == static_cast<std::uint8_t>(BufferTag::object) && u32(count)) {
      for (std::uint32_t i = 0; i < count && !found; ++i) {
        std::string_view key;
        if (!text(key)) break;
        if (key == name && remaining() > 0 && bytes_[at_] == static_cast<std::uint8_t>(BufferTag::string)) {
          ++at_;
          std::string_view value;
          if (text(value)) found = value;
          break;
        }
        if (!skip(1)) break;
      }
    }
    at_ = start;
    error_.clear();
    return found;
  }

  // The value at the cursor, or false with error() set.
  bool value(json& out, std::size_t depth) {
    std::uint8_t tag = 0;
    if (!byte(tag)) return false;
    switch (static_cast<BufferTag>(tag)) {
      case BufferTag::null: out = nullptr; return true;
      case BufferTag::false_: out = false; return true;
      case BufferTag::true_: out = true; return true;
      case BufferTag::integer: {
        double number = 0;
        if (!f64(number)) return false;
        // What JSON text of the same number parses to: nlohmann reads a
        // non-negative integer as unsigned and a negative one as signed.
        if (!(std::fabs(number) <= kMaxSafeInteger) || std::trunc(number) != number) return fail("an integer that is not a safe integer");
        if (number >= 0) {
          out = static_cast<json::number_unsigned_t>(number);
        } else {
          out = static_cast<json::number_integer_t>(number);
        }
        return true;
      }
      case BufferTag::number: {
        double number = 0;
        if (!f64(number)) return false;
        if (!std::isfinite(number)) return fail("a number that is not finite");
        out = number;
        return true;
      }
      case BufferTag::string: {
        out = json::value_t::string;
        return string(out.get_ref<std::string&>());
      }
      case BufferTag::array: {
        std::uint32_t count = 0;
        if (!enter(depth) || !u32(count)) return false;
        // Every element takes at least one byte: a count beyond what is left
        // is a lie, not an allocation to attempt.
        if (count > remaining()) return fail("an array longer than the buffer");
        out = json::value_t::array;
        auto& array = out.get_ref<json::array_t&>();
        array.resize(count);
        for (json& element : array) {
          if (!value(element, depth + 1)) return false;
        }
        return true;
      }
      case BufferTag::object: {
        std::uint32_t count = 0;
        if (!enter(depth) || !u32(count)) return false;
        if (count > remaining() / 5) return fail("an object longer than the buffer");
        out = json::value_t::object;
        auto& object = out.get_ref<json::object_t&>();
        // The top-level object is the call; its "arguments" member (depth 1)
        // may be filtered down to what the policy reads.
        const ArgumentUse* filter = depth == 1 && in_arguments_ ? argument_use_ : nullptr;
        for (std::uint32_t i = 0; i < count; ++i) {
          std::string key;
          if (!string(key)) return false;
          if (filter && !filter->all && !filter->reads(key)) {
            if (!skip(depth + 1)) return false;
            continue;
          }
          auto [it, inserted] = object.try_emplace(std::move(key));
          if (!inserted) return fail("the call repeats a key");
          in_arguments_ = depth == 0 && it->first == "arguments";
          bool ok = value(it->second, depth + 1);
          in_arguments_ = false;
          if (!ok) return false;
        }
        return true;
      }
    }
    return fail("an unknown value tag");
  }

  // The value at the cursor into tape.entries[slot], checked exactly as
  // value() checks it (same order, same reasons), building nothing but
  // entries: a container's children get one block at the end of the tape,
  // an object's sorted by key. The filtered arguments keep only the members
  // the plan reads, as value() does.
  //
  // The tape's entries are reused from call to call (CallTape::used): every
  // field but the key is written here for every entry, the key by the
  // object holding it (0 for array elements and the top level).
  bool index(CallTape& tape, std::uint32_t slot, std::size_t depth) {
    std::uint8_t tag = 0;
    if (!byte(tag)) return false;
    // The value's fields but the key; the entry is looked up again after a
    // container grew the tape (its storage may have moved).
    auto set = [&tape, slot](Value::Type type, double number, std::uint32_t at, std::uint32_t count, std::uint32_t first) {
      CallTape::Entry& entry = tape.entries[slot];
      entry.type = type;
      entry.number = number;
      entry.at = at;
      entry.count = count;
      entry.first = first;
    };
    switch (static_cast<BufferTag>(tag)) {
      case BufferTag::null: set(Value::Type::null, 0, 0, 0, 0); return true;
      case BufferTag::false_:
      case BufferTag::true_:
        set(Value::Type::boolean, tag == static_cast<std::uint8_t>(BufferTag::true_) ? 1 : 0, 0, 0, 0);
        return true;
      case BufferTag::integer: {
        double number = 0;
        if (!f64(number)) return false;
        if (!(std::fabs(number) <= kMaxSafeInteger) || std::trunc(number) != number) return fail("an integer that is not a safe integer");
        set(Value::Type::integer, number == 0 ? 0 : number, 0, 0, 0);  // -0 reads as the integer 0, as value() makes it
        return true;
      }
      case BufferTag::number: {
        double number = 0;
        if (!f64(number)) return false;
        if (!std::isfinite(number)) return fail("a number that is not finite");
        set(Value::Type::number, number, 0, 0, 0);
        return true;
      }
      case BufferTag::string: {
        std::string_view view;
        if (!text(view)) return false;
        set(Value::Type::string, 0, offset_of(view), static_cast<std::uint32_t>(view.size()), 0);
        return true;
      }
      case BufferTag::array: {
        std::uint32_t count = 0;
        if (!enter(depth) || !u32(count)) return false;
        if (count > remaining()) return fail("an array longer than the buffer");
        const std::uint32_t first = grow(tape, count);
        set(Value::Type::array, 0, 0, count, first);
        for (std::uint32_t i = 0; i < count; ++i) {
          CallTape::Entry& element = tape.entries[first + i];
          element.key_at = 0;
          element.key_length = 0;
          if (!index(tape, first + i, depth + 1)) return false;
        }
        return true;
      }
      case BufferTag::object: {
        std::uint32_t count = 0;
        if (!enter(depth) || !u32(count)) return false;
        if (count > remaining() / 5) return fail("an object longer than the buffer");
        const ArgumentUse* filter = depth == 1 && in_arguments_ ? argument_use_ : nullptr;
        const std::uint32_t first = grow(tape, count);
        set(Value::Type::object, 0, 0, 0, first);  // count: the members kept, below
        std::uint32_t kept = 0;
        for (std::uint32_t i = 0; i < count; ++i) {
          std::string_view key;
          if (!text(key)) return repeated_before(tape, first, kept);
          if (filter && !filter->all && !filter->reads(key)) {
            if (!skip(depth + 1)) return repeated_before(tape, first, kept);
            continue;
          }
          CallTape::Entry& member = tape.entries[first + kept++];
          member.key_at = offset_of(key);
          member.key_length = static_cast<std::uint32_t>(key.size());
          in_arguments_ = depth == 0 && key == "arguments";
          bool ok = index(tape, first + kept - 1, depth + 1);
          in_arguments_ = false;
          if (!ok) return repeated_before(tape, first, kept);
        }
        tape.entries[slot].count = kept;
        // Sorted by key bytes, as a DOM object (std::map) holds its members:
        // lookups are binary searches, and a repeated key sits next to its twin.
        if (sort_by_key(tape, first, kept)) return fail("the call repeats a key");
        return true;
      }
    }
    return fail("an unknown value tag");
  }

  // `count` entries at the end of the tape's used part; the first one's
  // index. They hold whatever an earlier call left there: index() writes
  // every field of those it uses. The vector grows (and value-initialises)
  // only past its high-water mark, doubling. `count` is bounded by the
  // buffer's size (the callers' checks), so this cannot overflow.
  static std::uint32_t grow(CallTape& tape, std::uint32_t count) {
    const std::uint32_t first = tape.used;
    const std::size_t needed = static_cast<std::size_t>(first) + count;
    if (needed > tape.entries.size()) tape.entries.resize(std::max(needed, 2 * tape.entries.size()));
    tape.used = static_cast<std::uint32_t>(needed);
    return first;
  }

  bool at_end() const { return at_ == bytes_.size(); }
  const std::string& error() const { return error_; }
  bool fail(const char* what) {
    if (error_.empty()) error_ = std::string("the encoded call is malformed: ") + what + ".";
    return false;
  }

 private:
  std::size_t remaining() const { return bytes_.size() - at_; }

  std::uint32_t offset_of(std::string_view view) const {
    return static_cast<std::uint32_t>(reinterpret_cast<const std::uint8_t*>(view.data()) - bytes_.data());
  }

  // Sorts entries [first, first + count) by key bytes; true when two keys are
  // equal. A heap sort: O(n log n) whatever order a client sends keys in, and
  // a fraction of std::sort's code in the .wasm; objects of a call are small,
  // where insertion sort is used. Insertion sort compares every pair that
  // ends up adjacent (an element is placed after one it compared not-less and
  // before one it compared less), and equal keys end up adjacent: its own
  // comparisons find a repeat, without a second pass over the keys.
  static bool sort_by_key(CallTape& tape, std::uint32_t first, std::uint32_t count) {
    CallTape::Entry* entries = tape.entries.data() + first;
    auto less = [&tape](const CallTape::Entry& a, const CallTape::Entry& b) { return compare_bytes(tape.key(a), tape.key(b)) < 0; };
    if (count <= 16) {
      bool repeated = false;
      for (std::uint32_t i = 1; i < count; ++i) {
        for (std::uint32_t j = i; j > 0; --j) {
          const int order = compare_bytes(tape.key(entries[j]), tape.key(entries[j - 1]));
          if (order >= 0) {
            repeated = repeated || order == 0;
            break;
          }
          std::swap(entries[j], entries[j - 1]);
        }
      }
      return repeated;
    }
    auto sift_down = [&](std::uint32_t root, std::uint32_t end) {
      while (2 * root + 1 < end) {
        std::uint32_t child = 2 * root + 1;
        if (child + 1 < end && less(entries[child], entries[child + 1])) ++child;
        if (!less(entries[root], entries[child])) return;
        std::swap(entries[root], entries[child]);
        root = child;
      }
    };
    for (std::uint32_t i = count / 2; i-- > 0;) sift_down(i, count);
    for (std::uint32_t end = count; end-- > 1;) {
      std::swap(entries[0], entries[end]);
      sift_down(0, end);
    }
    for (std::uint32_t i = 1; i < count; ++i) {
      if (tape.key(entries[i - 1]) == tape.key(entries[i])) return true;
    }
    return false;
  }

  // The reader that builds a DOM stops at a key repeated in an object before
  // it reads that key's value: when an object's reading fails, a repeat among
  // the `kept` keys read so far is the reason it gives, whatever failed later
  // (the outermost such object wins, as it would have stopped first). Always
  // false; only on a failing call.
  bool repeated_before(CallTape& tape, std::uint32_t first, std::uint32_t kept) {
    std::vector<std::string_view> keys;
    keys.reserve(kept);
    for (std::uint32_t i = 0; i < kept; ++i) keys.push_back(tape.key(tape.entries[first + i]));
    std::sort(keys.begin(), keys.end());
    if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) {
      error_ = "the encoded call is malformed: the call repeats a key.";
    }
    return false;
  }

  // Steps over one value: bounds and nesting are checked, nothing is built.
  bool skip(std::size_t depth) {
    std::uint8_t tag = 0;
    if (!byte(tag)) return false;
    std::uint32_t count = 0;
    switch (static_cast<BufferTag>(tag)) {
      case BufferTag::null:
      case BufferTag::false_:
      case BufferTag::true_: return true;
      case BufferTag::integer:
      case BufferTag::number:
        if (remaining() < 8) return fail("it ends early");
        at_ += 8;
        return true;
      case BufferTag::string:
        if (!u32(count)) return false;
        if (count > remaining()) return fail("a string longer than the buffer");
        at_ += count;
        return true;
      case BufferTag::array:
        if (!enter(depth) || !u32(count)) return false;
        for (std::uint32_t i = 0; i < count; ++i) {
          if (!skip(depth + 1)) return false;
        }
        return true;
      case BufferTag::object:
        if (!enter(depth) || !u32(count)) return false;
        for (std::uint32_t i = 0; i < count; ++i) {
          std::uint32_t length = 0;
          if (!u32(length)) return false;
          if (length > remaining()) return fail("a string longer than the buffer");
          at_ += length;
          if (!skip(depth + 1)) return false;
        }
        return true;
    }
    return fail("an unknown value tag");
  }

  bool enter(std::size_t depth) {
    if (depth >= max_depth_) {
      error_ = "JSON nested more than " + std::to_string(max_depth_) + " levels deep; flatten the document";
      return false;
    }
    return true;
  }

  bool byte(std::uint8_t& out) {
    if (remaining() < 1) return fail("it ends early");
    out = bytes_[at_++];
    return true;
  }

  // Little-endian fields: one load on a little-endian machine (WebAssembly
  // is one), byte by byte elsewhere.
  bool u32(std::uint32_t& out) {
    if (remaining() < 4) return fail("it ends early");
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&out, bytes_.data() + at_, 4);
    } else {
      out = static_cast<std::uint32_t>(bytes_[at_]) | static_cast<std::uint32_t>(bytes_[at_ + 1]) << 8 |
            static_cast<std::uint32_t>(bytes_[at_ + 2]) << 16 | static_cast<std::uint32_t>(bytes_[at_ + 3]) << 24;
    }
    at_ += 4;
    return true;
  }

  bool f64(double& out) {
    if (remaining() < 8) return fail("it ends early");
    std::uint64_t bits = 0;
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&bits, bytes_.data() + at_, 8);
    } else {
      for (int i = 7; i >= 0; --i) bits = bits << 8 | bytes_[at_ + static_cast<std::size_t>(i)];
    }
    std::memcpy(&out, &bits, sizeof out);
    at_ += 8;
    return true;
  }

  bool string(std::string& out) {
    std::string_view view;
    if (!text(view)) return false;
    out.assign(view);
    return true;
  }

  // A string at the cursor, checked (bounds, UTF-8), as a view of the bytes.
  bool text(std::string_view& out) {
    std::uint32_t length = 0;
    if (!u32(length)) return false;
    if (length > remaining()) return fail("a string longer than the buffer");
    std::string_view text(reinterpret_cast<const char*>(bytes_.data() + at_), length);
    // Strings reach messages, hashes and the upstream: they must be UTF-8, as
    // the JSON lexer guarantees on the text path. Most keys and values are
    // ASCII: eight bytes with no high bit set are checked at once.
    for (std::size_t i = 0; i < text.size();) {
      if (i + 8 <= text.size()) {
        std::uint64_t word = 0;
        std::memcpy(&word, text.data() + i, 8);
        if ((word & 0x8080808080808080ULL) == 0) {
          i += 8;
          continue;
        }
      }
      if (static_cast<unsigned char>(text[i]) < 0x80) {
        ++i;
        continue;
      }
      std::size_t sequence = utf8_sequence_length(text, i);
      if (sequence == 0) return fail("a string that is not UTF-8");
      i += sequence;
    }
    out = text;
    at_ += length;
    return true;
  }

  std::span<const std::uint8_t> bytes_;
  std::size_t max_depth_;
  std::size_t at_ = 0;
  std::string error_;
  const ArgumentUse* argument_use_ = nullptr;
  bool in_arguments_ = false;
};

void put_u32(std::vector<std::uint8_t>& out, std::size_t value) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

void put_f64(std::vector<std::uint8_t>& out, double value) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  for (int shift = 0; shift < 64; shift += 8) out.push_back(static_cast<std::uint8_t>(bits >> shift));
}

void put_string(std::vector<std::uint8_t>& out, const std::string& text) {
  put_u32(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
}

bool put_value(std::vector<std::uint8_t>& out, const json& value) {
  switch (value.type()) {
    case json::value_t::null: out.push_back(static_cast<std::uint8_t>(BufferTag::null)); return true;
    case json::value_t::boolean:
      out.push_back(static_cast<std::uint8_t>(value.get<bool>() ? BufferTag::true_ : BufferTag::false_));
      return true;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: {
      double number = as_double(value);
      bool exact = value.is_number_unsigned()
                       ? value.get<std::uint64_t>() <= static_cast<std::uint64_t>(kMaxSafeInteger)
                       : value.get<std::int64_t>() >= -static_cast<std::int64_t>(kMaxSafeInteger) &&
                             value.get<std::int64_t>() <= static_cast<std::int64_t>(kMaxSafeInteger);
      if (!exact) return false;
      out.push_back(static_cast<std::uint8_t>(BufferTag::integer));
      put_f64(out, number);
      return true;
    }
    case json::value_t::number_float:
      out.push_back(static_cast<std::uint8_t>(BufferTag::number));
      put_f64(out, value.get<double>());
      return true;
    case json::value_t::string:
      out.push_back(static_cast<std::uint8_t>(BufferTag::string));
      put_string(out, as_string(value));
      return true;
    case json::value_t::array:
      out.push_back(static_cast<std::uint8_t>(BufferTag::array));
      put_u32(out, value.size());
      for (const json& element : value.get_ref<const json::array_t&>()) {
        if (!put_value(out, element)) return false;
      }
      return true;
    case json::value_t::object:
      out.push_back(static_cast<std::uint8_t>(BufferTag::object));
      put_u32(out, value.size());
      for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
        put_string(out, key);
        if (!put_value(out, member)) return false;
      }
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<std::vector<std::uint8_t>> encode_call_buffer(const json& value) {
  std::vector<std::uint8_t> out;
  if (!put_value(out, value)) return std::nullopt;
  return out;
}

namespace {

CallRead read_with(BufferReader& reader, const CallReadOptions& options) {
  json value;
  if (!reader.value(value, 0)) {
    CallRead result;
    result.error = reader.error();
    return result;
  }
  if (!reader.at_end()) {
    reader.fail("bytes after the call");
    CallRead result;
    result.error = reader.error();
    return result;
  }
  return read_call_value(std::move(value), options);
}

}  // namespace

CallRead read_call_buffer(std::span<const std::uint8_t> bytes, const CallReadOptions& options) {
  BufferReader reader(bytes, options.max_depth);
  return read_with(reader, options);
}

CallRead read_call_buffer(std::span<const std::uint8_t> bytes, const CallReadOptions& options, const Plan& plan) {
  BufferReader reader(bytes, options.max_depth);
  // Without a tool name the call is malformed anyway: decode all of it, so the
  // reason given is the same as on the text path.
  auto tool = reader.peek_top_level_string("tool");
  if (tool) reader.filter_arguments(&plan.argument_use(*tool));
  return read_with(reader, options);
}

namespace {

bool read_view(std::span<const std::uint8_t> bytes, const CallReadOptions& options, const Plan* plan, CallTape& tape,
               CallView& call, std::string& error) {
  BufferReader reader(bytes, options.max_depth);
  std::optional<std::string_view> tool;
  ToolMatch match;
  if (plan) {
    tool = reader.peek_top_level_string("tool");
    if (tool) {
      match = plan->match_tool(*tool);
      reader.filter_arguments(&plan->argument_use(match));
    }
  }
  tape.bytes = bytes;
  tape.used = 0;  // the entries are written over (index()); the vector keeps them
  const std::uint32_t top = BufferReader::grow(tape, 1);
  tape.entries[top].key_at = 0;
  tape.entries[top].key_length = 0;
  if (!reader.index(tape, 0, 0)) {
    error = reader.error();
    return false;
  }
  if (!reader.at_end()) {
    reader.fail("bytes after the call");
    error = reader.error();
    return false;
  }
  if (!read_call_view(Value(tape, 0), options, call, error)) return false;
  if (tool) {  // evaluate_into takes this match while call.tool is this same view
    call.matched_by = plan;
    call.matched_tool = *tool;
    call.match = match;
  }
  return true;
}

}  // namespace

bool read_call_view(std::span<const std::uint8_t> bytes, const CallReadOptions& options, const Plan& plan, CallTape& tape,
                    CallView& call, std::string& error) {
  return read_view(bytes, options, &plan, tape, call, error);
}

bool read_call_view(std::span<const std::uint8_t> bytes, const CallReadOptions& options, CallTape& tape, CallView& call,
                    std::string& error) {
  return read_view(bytes, options, nullptr, tape, call, error);
}

}  // namespace toolgate
