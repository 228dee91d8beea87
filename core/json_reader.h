// Parse stage: JSON text -> nlohmann::json value, plus where each value stood.
//
// nlohmann's SAX parser does the lexing and UTF-8 validation; this reader adds
// what a policy engine needs on top of it:
//  - a source map from JSON Pointer to line:column, so diagnostics point at text;
//  - a nesting limit, so a 10 000-deep document is a clear error, not a stack
//    overflow in code that later walks the value;
//  - duplicate-key detection, so `{"amount": 1, "amount": 1e9}` can never show
//    one value to a condition and another to the upstream server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "diagnostics.h"

namespace toolgate {

struct JsonReadOptions {
  std::size_t max_depth = 256;          // arrays/objects nested deeper are an error
  bool record_positions = true;         // build the source map (policies: yes; calls: no)
  // Only values at most this deep get a source map entry (the root is depth 0,
  // /tools/run depth 2). Compiling a valid policy needs only the order of its
  // tool keys; the full map is built when there are diagnostics to locate.
  std::size_t position_depth = SIZE_MAX;
  // When not '\0': only object members whose key contains this character get
  // an entry (and not the root). Compiling a valid policy needs the positions
  // of its glob keys alone ('*'); a policy of exact names then builds no map.
  char position_keys_with = '\0';
  bool stop_at_duplicate_key = false;   // calls stop at the first duplicate; policies collect all
};

// Byte offsets of a value (and, for object members, of its key) in the text.
struct SourceSpan {
  std::size_t value_offset = 0;
  std::size_t key_offset = 0;
  bool has_key = false;
};

class SourceMap {
 public:
  explicit SourceMap(std::string_view text = {});

  void record(std::string pointer, SourceSpan span) { spans_.insert_or_assign(std::move(pointer), span); }
  const SourceSpan* find(const std::string& pointer) const;

  // Line and column (1-based, column in code points) of a byte offset.
  std::pair<std::size_t, std::size_t> line_column(std::size_t offset) const;

  // Where a diagnostic about `pointer` should point: the member's key when
  // `at_key` (unknown fields), else the value. Falls back to the nearest
  // recorded ancestor when the pointer itself was never in the text.
  std::pair<std::size_t, std::size_t> locate(const std::string& pointer, bool at_key = false) const;

 private:
  std::string_view text_;
  mutable std::vector<std::size_t> line_starts_;  // built on first use: calls rarely need it
  // UTF-8 continuation bytes before each 4 KiB boundary, so a column (in code
  // points) costs O(4 KiB) however long the line: thousands of diagnostics on
  // a one-line 10 MB policy stay linear.
  mutable std::vector<std::size_t> continuation_checkpoints_;
  std::size_t continuation_bytes_before(std::size_t offset) const;
  std::unordered_map<std::string, SourceSpan> spans_;
};

struct JsonReadResult {
  nlohmann::json value;
  SourceMap source_map;
  std::vector<Diagnostic> errors;  // syntax, depth and duplicate-key errors
  bool complete = false;           // the whole text was read (value is usable, maybe with duplicate keys)
  bool ok() const { return complete && errors.empty(); }
};

// Never throws. `text` must outlive the result's source map.
JsonReadResult read_json(std::string_view text, const JsonReadOptions& options = {});

}  // namespace toolgate
