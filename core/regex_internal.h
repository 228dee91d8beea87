// Internals of the regex engine (core/regex.h): what its three source files
// share, and nothing else uses. Not part of the public API.
//
// The engine is a pipeline of three jobs, one file each, so that each can be
// read (and changed) without holding the others in mind:
//
//   regex_parse.cpp    pattern -> SyntaxTree, or a RegexError with a byte
//                      offset. Decides what syntax is accepted (the syntax
//                      table, the rejected forms and the deviations from
//                      ECMAScript are at its top) and enforces RegexOptions'
//                      max_program_size and max_nesting as it goes.
//   regex_compile.cpp  SyntaxTree -> Regex::Program (Thompson NFA
//                      instructions and compiled classes) plus the facts the
//                      matcher uses to skip work; compile_regex(), the public
//                      entry point, runs the parser and then this.
//   regex_match.cpp    Regex::search(): simulates a Program over the input,
//                      linear in the input whatever the pattern.
//
// Below: code points and UTF-8 decoding (the parser reads the pattern with it,
// the matcher the text), character sets, the syntax tree, and the program.
#pragma once

#include "regex.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

namespace toolgate {

namespace regex_internal {

using CodePoint = std::uint32_t;
using NodeId = std::uint32_t;

constexpr CodePoint kMaxCodePoint = 0x10FFFF;
constexpr CodePoint kReplacementCharacter = 0xFFFD;

// Sizes are computed with saturating arithmetic so that nested counted
// repetition such as ((a{1000}){1000}){1000} cannot overflow before it is
// compared against max_program_size.
constexpr std::uint64_t kSizeCap = std::uint64_t{1} << 48;

inline std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) { return std::min(kSizeCap, a + b); }

inline std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
  if (a == 0 || b == 0) return 0;
  if (a > kSizeCap / b) return kSizeCap;
  return std::min(kSizeCap, a * b);
}

// ---------------------------------------------------------------------------
// UTF-8

struct DecodedChar {
  CodePoint code_point;
  std::uint32_t length;  // bytes consumed, >= 1
  bool valid;
};

// Decodes the code point starting at s[i] (i < s.size()). A byte that does not
// start a well-formed sequence (stray continuation, overlong form, surrogate,
// above U+10FFFF, truncated) decodes as U+FFFD of length 1, so every ASCII byte
// and every lead byte of a well-formed sequence is a code point boundary.
inline DecodedChar decode_utf8(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) -> CodePoint { return static_cast<unsigned char>(s[k]); };
  const CodePoint b0 = byte(i);
  if (b0 < 0x80) return {b0, 1, true};
  constexpr DecodedChar kInvalid{kReplacementCharacter, 1, false};
  const std::size_t available = s.size() - i;
  const auto continuation = [&](std::size_t k) { return k < available && (byte(i + k) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (!continuation(1)) return kInvalid;
    return {((b0 & 0x1F) << 6) | (byte(i + 1) & 0x3F), 2, true};
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!continuation(1) || !continuation(2)) return kInvalid;
    const CodePoint b1 = byte(i + 1);
    if (b0 == 0xE0 && b1 < 0xA0) return kInvalid;   // overlong
    if (b0 == 0xED && b1 >= 0xA0) return kInvalid;  // UTF-16 surrogate
    return {((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (byte(i + 2) & 0x3F), 3, true};
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!continuation(1) || !continuation(2) || !continuation(3)) return kInvalid;
    const CodePoint b1 = byte(i + 1);
    if (b0 == 0xF0 && b1 < 0x90) return kInvalid;   // overlong
    if (b0 == 0xF4 && b1 >= 0x90) return kInvalid;  // above U+10FFFF
    return {((b0 & 0x07) << 18) | ((b1 & 0x3F) << 12) | ((byte(i + 2) & 0x3F) << 6) | (byte(i + 3) & 0x3F), 4,
            true};
  }
  return kInvalid;
}

// ---------------------------------------------------------------------------
// Character sets

struct CodePointRange {
  CodePoint lo;
  CodePoint hi;  // inclusive
};

// A set of code points as ranges; normalize() sorts and merges them.
class CharSet {
 public:
  void add(CodePoint lo, CodePoint hi) { ranges_.push_back({lo, hi}); }
  void add(CodePoint cp) { add(cp, cp); }
  void add(const CharSet& other) { ranges_.insert(ranges_.end(), other.ranges_.begin(), other.ranges_.end()); }

  void normalize() {
    std::sort(ranges_.begin(), ranges_.end(),
              [](const CodePointRange& a, const CodePointRange& b) { return a.lo < b.lo; });
    std::vector<CodePointRange> merged;
    merged.reserve(ranges_.size());
    for (const CodePointRange& r : ranges_) {
      if (!merged.empty() && r.lo <= merged.back().hi + 1) {
        merged.back().hi = std::max(merged.back().hi, r.hi);
      } else {
        merged.push_back(r);
      }
    }
    ranges_ = std::move(merged);
  }

  // Complement within [0, U+10FFFF].
  void negate() {
    normalize();
    std::vector<CodePointRange> complement;
    CodePoint next = 0;
    for (const CodePointRange& r : ranges_) {
      if (r.lo > next) complement.push_back({next, r.lo - 1});
      next = r.hi + 1;
    }
    if (next <= kMaxCodePoint) complement.push_back({next, kMaxCodePoint});
    ranges_ = std::move(complement);
  }

  bool contains(CodePoint cp) const {
    for (const CodePointRange& r : ranges_) {
      if (cp >= r.lo && cp <= r.hi) return true;
    }
    return false;
  }

  const std::vector<CodePointRange>& ranges() const { return ranges_; }

 private:
  std::vector<CodePointRange> ranges_;
};

// ---------------------------------------------------------------------------
// Syntax tree

enum class AssertKind : std::uint8_t { kBeginText, kEndText, kWordBoundary, kNotWordBoundary };

enum class NodeKind : std::uint8_t { kEmpty, kLiteral, kClass, kAssert, kConcat, kAlternate, kRepeat };

constexpr std::uint32_t kUnbounded = std::numeric_limits<std::uint32_t>::max();

struct Node {
  NodeKind kind = NodeKind::kEmpty;
  CodePoint literal = 0;              // kLiteral
  std::uint32_t class_index = 0;      // kClass: index into SyntaxTree::classes
  AssertKind assertion{};             // kAssert
  std::vector<NodeId> children;       // kConcat, kAlternate; kRepeat has one child
  std::uint32_t min = 0;              // kRepeat
  std::uint32_t max = 0;              // kRepeat; kUnbounded for no upper bound
  std::uint64_t program_size = 0;     // instructions this node compiles to (saturated)
};

// Instructions emitted for `child_size`-instruction x{min,max} (see emit_repeat).
inline std::uint64_t repeat_program_size(std::uint64_t child_size, std::uint32_t min, std::uint32_t max) {
  if (child_size == 0 || max == 0) return 0;  // matches only the empty string
  if (max == kUnbounded) {
    if (min == 0) return saturating_add(child_size, 2);            // split, x, jump
    return saturating_add(saturating_mul(child_size, min), 1);     // x{min-1}, x, split
  }
  return saturating_add(saturating_mul(child_size, min),
                        saturating_mul(saturating_add(child_size, 1), max - min));  // (split, x) per optional
}

// What the parser produces: nodes[root] is the whole pattern; kClass nodes
// index `classes`. Each node's program_size is the number of instructions it
// compiles to (never saturated: the parser refuses anything larger than
// max_program_size), so the compiler emits nodes[root].program_size + 1
// instructions, the last one match, and asserts that it did.
struct SyntaxTree {
  std::vector<Node> nodes;
  std::vector<CharSet> classes;
  NodeId root = 0;
};

// Parses `pattern` (regex_parse.cpp). On success returns true and fills *tree;
// on failure returns false and sets *error (message and byte offset).
bool parse_regex(std::string_view pattern, const RegexOptions& options, SyntaxTree* tree, RegexError* error);

// ---------------------------------------------------------------------------
// Program

enum class Op : std::uint8_t {
  kLiteral,  // consume code point `arg`
  kClass,    // consume a code point in classes[arg]
  kSplit,    // continue at both `arg` and `arg2`
  kJump,     // continue at `arg`
  kAssert,   // continue at pc + 1 if AssertKind(arg) holds here
  kMatch,
};

struct Instruction {
  Op op;
  std::uint32_t arg;
  std::uint32_t arg2;
};

// A class as matched at run time: a bitmap for ASCII (the common case) and
// sorted, disjoint ranges for the rest.
struct CompiledClass {
  std::array<std::uint64_t, 2> ascii{};
  std::vector<CodePointRange> non_ascii;
  bool contains_replacement_character = false;

  bool matches(CodePoint cp) const {
    if (cp < 0x80) return (ascii[cp >> 6] >> (cp & 63)) & 1;
    // First range whose hi >= cp; matches if it starts at or before cp.
    auto it = std::lower_bound(non_ascii.begin(), non_ascii.end(), cp,
                               [](const CodePointRange& r, CodePoint value) { return r.hi < value; });
    return it != non_ascii.end() && it->lo <= cp;
  }
};

}  // namespace regex_internal

struct Regex::Program {
  std::vector<regex_internal::Instruction> instructions;
  std::vector<regex_internal::CompiledClass> classes;
  std::uint32_t start = 0;
  // Every path from `start` passes ^ before consuming input or matching, so
  // threads only need to start at position 0.
  bool anchored_start = false;
  // When no thread is alive, a match can only begin at a byte in first_bytes
  // (the possible first bytes of the first consumed code point), so the search
  // may skip ahead. Only set when the empty string cannot match and U+FFFD
  // (an invalid byte) cannot be the first code point.
  bool use_first_bytes = false;
  std::array<bool, 256> first_bytes{};
  int single_first_byte = -1;  // >= 0 when first_bytes holds exactly one byte: use memchr
};

namespace regex_internal {

using Program = Regex::Program;

}  // namespace regex_internal

}  // namespace toolgate
