// Linear-time regular expressions for the `regex` condition operator and the
// JSON Schema `pattern` keyword.
//
// Why not std::regex: it backtracks, so a pattern such as (a+)+$ against a long
// input takes exponential time and can exhaust the stack. This engine compiles
// a pattern to a Thompson NFA and simulates it over the input, so matching is
// O(pattern size x input length) in the worst case, whatever the pattern.
//
// Syntax: a subset of ECMAScript (what JSON Schema `pattern` uses), matched over
// Unicode code points of UTF-8 text. Anything outside the subset (backreferences,
// lookaround, named groups, flags) is rejected at compile time with an offset,
// never silently treated as a literal. The full syntax table, the rejected forms
// and the known deviations from ECMAScript are at the top of core/regex_parse.cpp
// (the engine: regex_parse.cpp, regex_compile.cpp, regex_match.cpp; what they
// share is in regex_internal.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace toolgate {

struct RegexOptions {
  // Upper bound on compiled NFA states; counted repetition such as (a{1000}){1000}
  // is refused instead of exhausting memory.
  std::size_t max_program_size = 20000;
  // Upper bound on nesting of groups, so the compiler's recursion stays bounded
  // (its depth is a small multiple of this; keep it in the hundreds).
  std::size_t max_nesting = 100;
};

class Regex {
 public:
  // Unanchored search, like ECMAScript RegExp.prototype.test without flags:
  // true when the pattern matches anywhere in `text` (use ^ and $ to anchor).
  // `text` should be valid UTF-8 (JSON strings always are); an invalid byte is
  // read as one U+FFFD. Safe to call concurrently on one Regex: scratch space is
  // per thread, so after the first call on a thread it does not allocate.
  // A default-constructed Regex matches nothing.
  bool search(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

  struct Program;  // defined in regex_internal.h

 private:
  friend struct RegexCompiler;
  std::string pattern_;
  std::shared_ptr<const Program> program_;
};

struct RegexError {
  std::string message;  // says what is unsupported or malformed and how to fix it
  std::size_t offset = 0;  // byte offset in the pattern
};

struct RegexCompileResult {
  std::optional<Regex> regex;  // set on success
  std::optional<RegexError> error;  // set on failure
};

RegexCompileResult compile_regex(std::string_view pattern, const RegexOptions& options = {});

}  // namespace toolgate
