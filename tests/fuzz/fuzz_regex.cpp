// libFuzzer target: the linear-time regex engine (core/regex.*).
//
// Input: pattern '\0' subject (no '\0': the subject is the pattern itself;
// only the subject's first 256 bytes are searched).
// The first pattern byte also picks tight compile options sometimes, so the
// size and nesting limits are hit often.
//
// Invariants: compile never crashes and an error's offset lies within the
// pattern; compiling is deterministic; a pattern that compiles answers the
// same as (?:pattern) and pattern|pattern (when those compile); a match
// without anchors or word boundaries survives text added around the subject.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "regex.h"

namespace {

using namespace toolgate;

bool has_assertion(std::string_view pattern) {
  // ^ $ \b \B make a match depend on what surrounds it.
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '^' || pattern[i] == '$') return true;
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      if (pattern[i + 1] == 'b' || pattern[i + 1] == 'B') return true;
      ++i;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t split = input.find('\0');
  std::string_view pattern = input.substr(0, split);
  std::string_view subject = split == std::string_view::npos ? pattern : input.substr(split + 1);
  // Matching costs O(program size x subject length) by design (core/README.md,
  // "Limits of the implementation"); short subjects keep executions fast and
  // lose nothing a longer one would show.
  subject = subject.substr(0, 256);

  RegexOptions options;
  if (!pattern.empty() && (static_cast<unsigned char>(pattern[0]) % 16) == 0) {
    options.max_program_size = 64;
    options.max_nesting = 4;
  }
  RegexCompileResult compiled = compile_regex(pattern, options);
  FUZZ_CHECK(compiled.regex.has_value() != compiled.error.has_value(), "exactly one of regex and error");
  if (compiled.error) {
    FUZZ_CHECK(compiled.error->offset <= pattern.size(), "error offset %zu past the pattern (%zu bytes)",
               compiled.error->offset, pattern.size());
    FUZZ_CHECK(!compiled.error->message.empty(), "error without a message");
    if (fuzz::is_utf8(pattern))
      FUZZ_CHECK(fuzz::is_utf8(compiled.error->message), "error message not valid UTF-8: %s",
                 compiled.error->message.c_str());
    RegexCompileResult again = compile_regex(pattern, options);
    FUZZ_CHECK(again.error && again.error->offset == compiled.error->offset &&
                   again.error->message == compiled.error->message,
               "compiling twice differs");
    return 0;
  }
  const Regex& regex = *compiled.regex;
  FUZZ_CHECK(regex.pattern() == pattern, "pattern() differs");
  bool matched = regex.search(subject);
  FUZZ_CHECK(regex.search(subject) == matched, "search is not deterministic");
  regex.search("");
  regex.search(pattern);

  std::string subject_text(subject);
  for (const std::string& variant : {"(?:" + std::string(pattern) + ")", std::string(pattern) + "|" + std::string(pattern)}) {
    RegexCompileResult wrapped = compile_regex(variant, options);
    if (wrapped.regex) {
      FUZZ_CHECK(wrapped.regex->search(subject) == matched, "%s answers differently from the pattern",
                 variant.c_str());
    }
  }
  if (matched && !has_assertion(pattern)) {
    FUZZ_CHECK(regex.search("x" + subject_text + "\n\xC3\xA9"), "a match lost by text around the subject");
  }
  return 0;
}
