#include "json_reader.h"

#include <algorithm>
#include <iterator>

#include "json_util.h"

namespace toolgate {
namespace {

using json = nlohmann::json;

// An input iterator over the text that publishes how far nlohmann's lexer has
// read. SAX callbacks fire right after their token is lexed, so this offset is
// the end of the current token (plus one look-ahead character after a number).
class CountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator(const char* position, const char** published) : position_(position), published_(published) {}
  reference operator*() const { return *position_; }
  CountingIterator& operator++() {
    ++position_;
    *published_ = position_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator before = *this;
    ++*this;
    return before;
  }
  bool operator==(const CountingIterator& other) const { return position_ == other.position_; }
  bool operator!=(const CountingIterator& other) const { return position_ != other.position_; }

 private:
  const char* position_;
  const char** published_;
};

class DomBuilder {
 public:
  DomBuilder(std::string_view text, const JsonReadOptions& options, JsonReadResult& result)
      : text_(text), options_(options), result_(result), cursor_(text.data()) {}

  const char** cursor() { return &cursor_; }

  // --- nlohmann SAX interface -------------------------------------------
  bool null() { return add_scalar(json(nullptr)); }
  bool boolean(bool value) { return add_scalar(json(value)); }
  bool number_integer(json::number_integer_t value) { return add_scalar(json(value), true); }
  bool number_unsigned(json::number_unsigned_t value) { return add_scalar(json(value), true); }
  bool number_float(json::number_float_t value, const std::string&) { return add_scalar(json(value), true); }
  bool string(std::string& value) { return add_scalar(json(std::move(value))); }
  bool binary(json::binary_t&) { return false; }  // not produced by the JSON lexer

  bool start_object(std::size_t) { return open(json::value_t::object); }
  bool start_array(std::size_t) { return open(json::value_t::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(std::string& name) {
    Frame& frame = frames_.back();
    frame.key_offset = token_start();
    frame.pending_key = std::move(name);
    advance_scan_point(false);
    const auto& object = frame.container->get_ref<const json::object_t&>();
    if (object.count(frame.pending_key) != 0) {
      std::string pointer = member_pointer(frame);
      add_error("json_duplicate_key", frame.key_offset,
                "duplicate key \"" + frame.pending_key +
                    "\": a key may appear only once in an object, so that every reader sees the same value",
                pointer);
      if (options_.stop_at_duplicate_key) return false;
    }
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& error) {
    std::string message = error.what();
    // nlohmann's text repeats its own line/column; keep only the explanation.
    if (auto at = message.find("syntax error"); at != std::string::npos) message = message.substr(at);
    // It quotes the text it last read, which may be the invalid UTF-8 it stopped at.
    message = valid_utf8(message);
    std::size_t offset = position == 0 ? 0 : std::min(position - 1, text_.size());
    add_error("json_syntax", offset, message + " (strict JSON: no comments, no trailing commas)",
              current_pointer());
    return false;
  }

 private:
  struct Frame {
    json* container;
    std::size_t pointer_length;  // length of pointer_ for this container
    std::size_t next_index = 0;  // arrays: index of the next element
    std::string pending_key;     // objects: key of the member being read
    std::size_t key_offset = 0;
    std::string token;           // this container's own pointer token in its parent
  };

  std::size_t consumed() const { return static_cast<std::size_t>(cursor_ - text_.data()); }

  // Tokens are separated only by whitespace, ',' and ':', so a token starts at
  // the first other character after the previous token.
  std::size_t token_start() const {
    if (!options_.record_positions) return 0;  // calls: no source map, no bookkeeping
    std::size_t at = scan_point_;
    while (at < text_.size()) {
      char c = text_[at];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ',' && c != ':') break;
      ++at;
    }
    return at;
  }

  void advance_scan_point(bool after_number) {
    if (!options_.record_positions) return;
    std::size_t end = consumed();
    // After a number the lexer has read one character of look-ahead, unless the
    // number ran to the end of the text. That character can never be part of a
    // number, which tells the two cases apart.
    if (after_number && end > 0) {
      char last = text_[end - 1];
      bool number_char = (last >= '0' && last <= '9') || last == '.' || last == 'e' || last == 'E' ||
                         last == '+' || last == '-';
      if (!number_char) --end;
    }
    scan_point_ = end;
  }

  static std::string member_token(const Frame& frame) {
    return frame.container->is_array() ? std::to_string(frame.next_index) : escape_pointer_token(frame.pending_key);
  }

  // The pointer of the innermost container, rebuilt from the frames (cheap
  // enough for errors, and free when no error happens).
  std::string container_pointer() const {
    std::string pointer;
    for (std::size_t i = 1; i < frames_.size(); ++i) pointer += "/" + frames_[i].token;
    return pointer;
  }

  std::string member_pointer(const Frame& frame) const { return container_pointer() + "/" + member_token(frame); }

  std::string current_pointer() const {
    if (frames_.empty()) return "";
    const Frame& frame = frames_.back();
    if (frame.container->is_object() && frame.pending_key.empty()) return container_pointer();
    return member_pointer(frame);
  }

  // Places `value` where the parser is, returning the slot it now occupies.
  json* place(json&& value, std::size_t value_offset) {
    json* slot = nullptr;
    if (frames_.empty()) {
      result_.value = std::move(value);
      slot = &result_.value;
      if (options_.record_positions && options_.position_keys_with == '\0')
        result_.source_map.record("", SourceSpan{value_offset, 0, false});
      pointer_.clear();
      return slot;
    }
    Frame& frame = frames_.back();
    if (options_.record_positions && frames_.size() <= options_.position_depth) {
      pointer_.resize(frame.pointer_length);
      pointer_ += '/';
      if (frame.container->is_array()) {
        pointer_ += std::to_string(frame.next_index);
      } else {
        pointer_ += escape_pointer_token(frame.pending_key);
      }
      if (options_.position_keys_with == '\0' ||
          (frame.container->is_object() && frame.pending_key.find(options_.position_keys_with) != std::string::npos))
        result_.source_map.record(pointer_, SourceSpan{value_offset, frame.key_offset, frame.container->is_object()});
    }
    if (frame.container->is_array()) {
      auto& array = frame.container->get_ref<json::array_t&>();
      array.push_back(std::move(value));
      slot = &array.back();
      ++frame.next_index;
    } else {
      auto& object = frame.container->get_ref<json::object_t&>();
      // The last duplicate wins, as in JavaScript; duplicates are already reported.
      auto [it, inserted] = object.insert_or_assign(std::move(frame.pending_key), std::move(value));
      slot = &it->second;
      frame.pending_key.clear();
    }
    return slot;
  }

  bool add_scalar(json&& value, bool is_number = false) {
    std::size_t start = token_start();
    place(std::move(value), start);
    advance_scan_point(is_number);
    return true;
  }

  bool open(json::value_t type) {
    std::size_t start = token_start();
    if (frames_.size() >= options_.max_depth) {
      add_error("json_too_deep", start,
                "JSON nested more than " + std::to_string(options_.max_depth) +
                    " levels deep; flatten the document",
                current_pointer());
      return false;
    }
    std::string token = frames_.empty() ? std::string() : member_token(frames_.back());
    json* slot = place(json(type), start);
    frames_.push_back(Frame{slot, pointer_.size(), 0, std::string(), 0, std::move(token)});
    advance_scan_point(false);
    return true;
  }

  bool close() {
    frames_.pop_back();
    advance_scan_point(false);
    return true;
  }

  void add_error(std::string code, std::size_t offset, std::string message, std::string pointer) {
    Diagnostic diagnostic;
    diagnostic.code = std::move(code);
    diagnostic.severity = Severity::error;
    diagnostic.message = std::move(message);
    diagnostic.pointer = std::move(pointer);
    auto [line, column] = result_.source_map.line_column(offset);
    diagnostic.line = line;
    diagnostic.column = column;
    result_.errors.push_back(std::move(diagnostic));
  }

  std::string_view text_;
  const JsonReadOptions& options_;
  JsonReadResult& result_;
  const char* cursor_;
  std::size_t scan_point_ = 0;
  std::string pointer_;
  std::vector<Frame> frames_;
};

}  // namespace

SourceMap::SourceMap(std::string_view text) : text_(text) {}

const SourceSpan* SourceMap::find(const std::string& pointer) const {
  auto it = spans_.find(pointer);
  return it == spans_.end() ? nullptr : &it->second;
}

namespace {
constexpr std::size_t kCheckpointSpacing = 4096;
bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }
}  // namespace

std::size_t SourceMap::continuation_bytes_before(std::size_t offset) const {
  std::size_t block = offset / kCheckpointSpacing;
  std::size_t count = continuation_checkpoints_[block];
  for (std::size_t i = block * kCheckpointSpacing; i < offset; ++i) count += is_continuation(text_[i]);
  return count;
}

std::pair<std::size_t, std::size_t> SourceMap::line_column(std::size_t offset) const {
  if (line_starts_.empty()) {
    // Built on first use: calls parsed without positions never pay for it.
    line_starts_.push_back(0);
    continuation_checkpoints_.push_back(0);
    std::size_t continuations = 0;
    for (std::size_t i = 0; i < text_.size(); ++i) {
      if (text_[i] == '\n') line_starts_.push_back(i + 1);
      continuations += is_continuation(text_[i]);
      if ((i + 1) % kCheckpointSpacing == 0) continuation_checkpoints_.push_back(continuations);
    }
  }
  offset = std::min(offset, text_.size());
  auto next_line = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  std::size_t line_index = static_cast<std::size_t>(next_line - line_starts_.begin()) - 1;
  std::size_t line_start = line_starts_[line_index];
  std::size_t code_points = (offset - line_start) -
                            (continuation_bytes_before(offset) - continuation_bytes_before(line_start));
  // A byte-order mark (which the parser skips) is not a column an editor shows.
  if (line_index == 0 && offset >= 3 && text_.substr(0, 3) == "\xEF\xBB\xBF") code_points -= 1;
  return {line_index + 1, code_points + 1};
}

std::pair<std::size_t, std::size_t> SourceMap::locate(const std::string& pointer, bool at_key) const {
  std::string probe = pointer;
  while (true) {
    if (const SourceSpan* span = find(probe)) {
      bool use_key = at_key && span->has_key && probe == pointer;
      return line_column(use_key ? span->key_offset : span->value_offset);
    }
    if (probe.empty()) return {0, 0};
    probe.resize(probe.rfind('/'));
  }
}

JsonReadResult read_json(std::string_view text, const JsonReadOptions& options) {
  JsonReadResult result;
  result.source_map = SourceMap(text);
  DomBuilder builder(text, options, result);
  // One instantiation of nlohmann's lexer and parser for every read, with or
  // without positions: a second one over plain `const char*` (slightly faster
  // per character) was 6 KB more .wasm, and read_json, which inlined both,
  // was twice the code V8 compiles on a cold start's first policy
  // (bench/README.md, "Cold start"). Without positions the published offset
  // is simply not read.
  CountingIterator first(text.data(), builder.cursor());
  CountingIterator last(text.data() + text.size(), builder.cursor());
  const bool parsed = json::sax_parse(first, last, &builder, json::input_format_t::json, /*strict=*/true);
  if (!parsed && result.errors.empty()) {
    Diagnostic diagnostic;
    diagnostic.code = "json_syntax";
    diagnostic.message = "the text is not valid JSON";
    result.errors.push_back(std::move(diagnostic));
  }
  result.complete = parsed;
  if (!parsed) result.value = json();
  return result;
}

}  // namespace toolgate
