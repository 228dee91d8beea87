// Linear-time regular expressions: a parser for an ECMAScript subset, a
// Thompson-NFA compiler, and an NFA simulation (state-set, no backtracking).
//
// Supported syntax (ECMAScript RegExp with no flags, matched over code points):
//
//   Syntax               Meaning
//   -------------------  -------------------------------------------------------
//   x                    the code point x (any UTF-8 character that is not syntax)
//   .                    any code point except \n \r U+2028 U+2029
//   ^  $                 start / end of the input (no multiline mode)
//   \b  \B               ASCII word boundary / not a word boundary (zero width)
//   a|b                  alternation
//   (re)  (?:re)         grouping; captures are never reported
//   x*  x+  x?           0 or more, 1 or more, 0 or 1
//   x{n} x{n,} x{n,m}    counted repetition
//   x*? x+? x?? x{n,m}?  lazy forms: accepted, same yes/no answer as greedy
//   [abc] [^abc] [a-z]   classes, escapes allowed inside; [] matches nothing,
//                        [^] matches any code point including newlines
//   [\w-.]               a class escape next to '-' makes '-' a literal (Annex B)
//   [\b]                 backspace U+0008 (inside a class only)
//   \d \D                [0-9] and its complement
//   \w \W                [A-Za-z0-9_] and its complement
//   \s \S                ECMAScript WhiteSpace + LineTerminator: \t \n \v \f \r
//                        U+0020 U+00A0 U+1680 U+2000-U+200A U+2028 U+2029 U+202F
//                        U+205F U+3000 U+FEFF; and its complement
//   \n \r \t \f \v \0    control characters (\0 must not be followed by a digit)
//   \cA .. \cZ, \ca..    control letter (code point mod 32)
//   \xHH                 code point, exactly two hex digits
//   \uHHHH               code point, exactly four hex digits; an escaped
//                        surrogate pair \uD83D\uDE00 is one code point (U+1F600)
//   \u{H...}             code point U+0 .. U+10FFFF
//   \<non-alphanumeric>  that character literally: \. \\ \/ \- \^ \$ \| \( \)
//                        \[ \] \{ \} \* \+ \? \: \@ ... (also non-ASCII: \é)
//   {  }  ]              literals when they do not form a quantifier / close a
//                        class ("a{", "{foo}", "a{,5}", "]"), as ECMAScript
//                        Annex B does without the u flag
//
// Rejected at compile time (RegexError with a byte offset), never taken as a
// literal: backreferences \1..\9 and \k<name>; octal escapes \01; lookahead
// (?= (?!; lookbehind (?<= (?<!; named groups (?<name>); inline flags (?i);
// other (? forms; \p{..} \P{..}; any other escaped ASCII letter or digit (\q, \a,
// \z, \A, \Z, \e...); \x / \u / \c without a valid continuation; \B in a class;
// unbalanced ( ) or an unterminated [; nothing to repeat ("*a", "a**", "^*",
// "\b+", "a{2}{3}", "{1}"); {n,m} with n > m; reversed ranges [z-a]; a program
// larger than RegexOptions::max_program_size; groups nested deeper than
// RegexOptions::max_nesting; malformed UTF-8 in the pattern.
//
// Known deviations from ECMAScript without flags:
//  - Matching is over code points, not UTF-16 code units (like the u flag): "."
//    and [^a] match a whole emoji; \u{...} is a code point escape; escaped
//    surrogate pairs combine; a lone escaped surrogate matches nothing.
//  - \q, \a, \8, \1 (with no groups), \01, \k, \x4, \u12, \c1, [\B], [\c1]
//    are literals or legacy octal in ECMAScript; here they are errors, because
//    they almost always mean something else (PCRE) and silently matching a
//    literal would hide the mistake.
//  - Lookaround, backreferences and named groups are not supported (see above).
//  - Counted repetition is expanded, so a{1,100000} is rejected by
//    max_program_size although ECMAScript accepts it.
//  - Invalid UTF-8 in the searched text is read as one U+FFFD per invalid byte.
//  - V8 lets \B match between the two UTF-16 halves of an astral character
//    ("a😀a" matches /\B/ in Node); here positions are code point boundaries,
//    so it does not.
//
// Matching: the pattern compiles to a program of NFA instructions (code point
// tests, splits, jumps, zero-width assertions, match). search() simulates the
// NFA over the input, keeping the set of live instruction indices in a sparse
// set so each instruction is visited at most once per input position: the cost
// is O(program size x input length), independent of how ambiguous the pattern
// is. Since only a yes/no answer is needed, there are no captures or thread
// priorities, and laziness is irrelevant. Epsilon closures use an explicit
// stack; nothing recurses over the input. Compilation recurses over the syntax
// tree, whose depth is bounded by max_nesting.
//
// Cost in practice: roughly 20 ns per input byte per few live states on x86-64
// (-O2); search() does not allocate after its first call on a thread (scratch
// memory is thread_local, sized by the largest program seen). Two shortcuts
// keep common cases fast: a pattern whose every path starts with ^ only starts
// threads at position 0 and stops once none is alive, and when no thread is
// alive the search skips (memchr when possible) to the next byte that can
// begin a match. The worst case is still program size x input length, so a
// pattern near max_program_size (20000) over a 1 MB input can take seconds.

#include "regex.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

namespace toolgate {

namespace {

using CodePoint = std::uint32_t;
using NodeId = std::uint32_t;

constexpr CodePoint kMaxCodePoint = 0x10FFFF;
constexpr CodePoint kReplacementCharacter = 0xFFFD;

// Sizes are computed with saturating arithmetic so that nested counted
// repetition such as ((a{1000}){1000}){1000} cannot overflow before it is
// compared against max_program_size.
constexpr std::uint64_t kSizeCap = std::uint64_t{1} << 48;

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) { return std::min(kSizeCap, a + b); }

std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
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

// First byte of the UTF-8 encoding of cp (cp <= U+10FFFF). Monotonic in cp,
// which lets a code point range map to a contiguous range of lead bytes.
unsigned lead_byte(CodePoint cp) {
  if (cp < 0x80) return cp;
  if (cp < 0x800) return 0xC0 | (cp >> 6);
  if (cp < 0x10000) return 0xE0 | (cp >> 12);
  return 0xF0 | (cp >> 18);
}

// ECMAScript \w without the u flag: ASCII only.
inline bool is_word_char(CodePoint cp) {
  return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp == '_';
}

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ascii_alnum(char c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
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

CharSet digit_set() {
  CharSet set;
  set.add('0', '9');
  return set;
}

CharSet word_set() {
  CharSet set;
  set.add('0', '9');
  set.add('A', 'Z');
  set.add('_');
  set.add('a', 'z');
  return set;
}

// ECMA-262 WhiteSpace (TAB VT FF ZWNBSP USP, where USP is category Zs) plus
// LineTerminator (LF CR LS PS).
CharSet space_set() {
  CharSet set;
  set.add(0x09, 0x0D);  // \t \n \v \f \r
  set.add(0x20);
  set.add(0xA0);
  set.add(0x1680);
  set.add(0x2000, 0x200A);
  set.add(0x2028, 0x2029);
  set.add(0x202F);
  set.add(0x205F);
  set.add(0x3000);
  set.add(0xFEFF);
  return set;
}

// '.' without the s flag: anything but a LineTerminator.
CharSet dot_set() {
  CharSet set;
  set.add('\n');
  set.add('\r');
  set.add(0x2028, 0x2029);
  set.negate();
  return set;
}

// ---------------------------------------------------------------------------
// Syntax tree

enum class AssertKind : std::uint8_t { kBeginText, kEndText, kWordBoundary, kNotWordBoundary };

enum class NodeKind : std::uint8_t { kEmpty, kLiteral, kClass, kAssert, kConcat, kAlternate, kRepeat };

constexpr std::uint32_t kUnbounded = std::numeric_limits<std::uint32_t>::max();

struct Node {
  NodeKind kind = NodeKind::kEmpty;
  CodePoint literal = 0;              // kLiteral
  std::uint32_t class_index = 0;      // kClass: index into Parser::classes_
  AssertKind assertion{};             // kAssert
  std::vector<NodeId> children;       // kConcat, kAlternate; kRepeat has one child
  std::uint32_t min = 0;              // kRepeat
  std::uint32_t max = 0;              // kRepeat; kUnbounded for no upper bound
  std::uint64_t program_size = 0;     // instructions this node compiles to (saturated)
};

// Instructions emitted for `child_size`-instruction x{min,max} (see emit_repeat).
std::uint64_t repeat_program_size(std::uint64_t child_size, std::uint32_t min, std::uint32_t max) {
  if (child_size == 0 || max == 0) return 0;  // matches only the empty string
  if (max == kUnbounded) {
    if (min == 0) return saturating_add(child_size, 2);            // split, x, jump
    return saturating_add(saturating_mul(child_size, min), 1);     // x{min-1}, x, split
  }
  return saturating_add(saturating_mul(child_size, min),
                        saturating_mul(saturating_add(child_size, 1), max - min));  // (split, x) per optional
}

// ---------------------------------------------------------------------------
// Parser: pattern -> syntax tree. Iterative over the pattern (a stack of open
// groups), so a pattern of 100000 '(' fails at the max_nesting check instead of
// overflowing the stack.

class Parser {
 public:
  Parser(std::string_view pattern, const RegexOptions& options)
      : pattern_(pattern),
        max_program_size_(options.max_program_size),
        max_nesting_(options.max_nesting) {}

  // On success returns true and sets *root; on failure returns false and error() says why.
  bool parse(NodeId* root);

  const RegexError& error() const { return error_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<CharSet>& classes() const { return classes_; }

 private:
  struct Frame {
    std::size_t open_offset = 0;        // offset of '(' (0 for the whole pattern)
    std::vector<NodeId> alternatives;   // finished alternatives, before the last '|'
    std::vector<NodeId> sequence;       // items of the alternative being parsed
    bool last_is_quantifiable = false;  // may a quantifier follow sequence.back()?
  };

  // A parsed escape or class atom: a code point, a set (\d ...) or an assertion (\b \B).
  struct Atom {
    enum class Kind { kCodePoint, kSet, kAssert } kind = Kind::kCodePoint;
    CodePoint code_point = 0;
    CharSet set;
    AssertKind assertion{};
  };

  bool fail(std::size_t offset, std::string message) {
    error_.offset = offset;
    error_.message = std::move(message);
    return false;
  }

  bool at(std::size_t i, char c) const { return i < pattern_.size() && pattern_[i] == c; }

  NodeId add_node(Node node) {
    nodes_.push_back(std::move(node));
    return static_cast<NodeId>(nodes_.size() - 1);
  }
  NodeId add_literal(CodePoint cp);
  NodeId add_class(CharSet set);
  NodeId add_assert(AssertKind kind);
  NodeId make_concat(const std::vector<NodeId>& items);
  NodeId finish_frame(Frame& frame);

  // Appends a new item to the current alternative and accounts for its size.
  bool push_item(NodeId node, bool quantifiable, std::size_t offset);
  bool check_program_size(std::size_t offset, const char* what);

  bool parse_group_open();
  bool parse_group_close();
  bool parse_quantifier(std::size_t offset, std::uint32_t min, std::uint32_t max);
  bool try_parse_braces(std::uint32_t* min, std::uint32_t* max, bool* is_quantifier);
  bool parse_class();
  bool parse_class_atom(Atom* atom);
  bool parse_escape(bool in_class, Atom* atom);
  bool parse_hex_digits(std::size_t begin, std::size_t count, CodePoint* value) const;
  bool parse_unicode_escape(std::size_t escape_offset, CodePoint* cp);
  bool parse_literal_code_point(CodePoint* cp);

  std::string_view pattern_;
  std::size_t pos_ = 0;
  std::size_t max_program_size_;
  std::size_t max_nesting_;
  std::vector<Frame> frames_;
  std::vector<Node> nodes_;
  std::vector<CharSet> classes_;
  // Instructions needed so far by everything in the open frames (plus the final
  // match instruction); only ever grows, so it fails as early as possible.
  std::uint64_t program_size_ = 1;
  RegexError error_;
};

NodeId Parser::add_literal(CodePoint cp) {
  Node node;
  node.kind = NodeKind::kLiteral;
  node.literal = cp;
  node.program_size = 1;
  return add_node(std::move(node));
}

NodeId Parser::add_class(CharSet set) {
  set.normalize();
  classes_.push_back(std::move(set));
  Node node;
  node.kind = NodeKind::kClass;
  node.class_index = static_cast<std::uint32_t>(classes_.size() - 1);
  node.program_size = 1;
  return add_node(std::move(node));
}

NodeId Parser::add_assert(AssertKind kind) {
  Node node;
  node.kind = NodeKind::kAssert;
  node.assertion = kind;
  node.program_size = 1;
  return add_node(std::move(node));
}

NodeId Parser::make_concat(const std::vector<NodeId>& items) {
  if (items.empty()) return add_node(Node{});
  if (items.size() == 1) return items.front();
  Node node;
  node.kind = NodeKind::kConcat;
  node.children = items;
  for (NodeId child : items) node.program_size = saturating_add(node.program_size, nodes_[child].program_size);
  return add_node(std::move(node));
}

NodeId Parser::finish_frame(Frame& frame) {
  frame.alternatives.push_back(make_concat(frame.sequence));
  if (frame.alternatives.size() == 1) return frame.alternatives.front();
  Node node;
  node.kind = NodeKind::kAlternate;
  node.children = frame.alternatives;
  // A split and a jump per alternative but the last.
  node.program_size = 2 * (frame.alternatives.size() - 1);
  for (NodeId child : frame.alternatives) {
    node.program_size = saturating_add(node.program_size, nodes_[child].program_size);
  }
  return add_node(std::move(node));
}

bool Parser::check_program_size(std::size_t offset, const char* what) {
  if (program_size_ <= max_program_size_) return true;
  return fail(offset, std::string(what) + " makes the compiled regular expression larger than max_program_size (" +
                          std::to_string(max_program_size_) +
                          " instructions); use smaller repetition counts or a shorter pattern");
}

bool Parser::push_item(NodeId node, bool quantifiable, std::size_t offset) {
  Frame& frame = frames_.back();
  frame.sequence.push_back(node);
  frame.last_is_quantifiable = quantifiable;
  program_size_ = saturating_add(program_size_, nodes_[node].program_size);
  return check_program_size(offset, "this part of the pattern");
}

bool Parser::parse(NodeId* root) {
  frames_.push_back(Frame{});
  while (pos_ < pattern_.size()) {
    const std::size_t start = pos_;
    switch (pattern_[pos_]) {
      case '(':
        if (!parse_group_open()) return false;
        break;
      case ')':
        if (!parse_group_close()) return false;
        break;
      case '|': {
        ++pos_;
        Frame& frame = frames_.back();
        frame.alternatives.push_back(make_concat(frame.sequence));
        frame.sequence.clear();
        frame.last_is_quantifiable = false;
        program_size_ = saturating_add(program_size_, 2);
        if (!check_program_size(start, "this alternation")) return false;
        break;
      }
      case '*':
        ++pos_;
        if (!parse_quantifier(start, 0, kUnbounded)) return false;
        break;
      case '+':
        ++pos_;
        if (!parse_quantifier(start, 1, kUnbounded)) return false;
        break;
      case '?':
        ++pos_;
        if (!parse_quantifier(start, 0, 1)) return false;
        break;
      case '{': {
        std::uint32_t min = 0;
        std::uint32_t max = 0;
        bool is_quantifier = false;
        if (!try_parse_braces(&min, &max, &is_quantifier)) return false;
        if (is_quantifier) {
          if (!parse_quantifier(start, min, max)) return false;
        } else {
          // Annex B: a '{' that does not start a well-formed {n}, {n,} or
          // {n,m} is a literal, and can itself be repeated.
          ++pos_;
          if (!push_item(add_literal('{'), true, start)) return false;
        }
        break;
      }
      case '^':
        ++pos_;
        if (!push_item(add_assert(AssertKind::kBeginText), false, start)) return false;
        break;
      case '$':
        ++pos_;
        if (!push_item(add_assert(AssertKind::kEndText), false, start)) return false;
        break;
      case '.':
        ++pos_;
        if (!push_item(add_class(dot_set()), true, start)) return false;
        break;
      case '[':
        if (!parse_class()) return false;
        break;
      case '\\': {
        Atom atom;
        if (!parse_escape(false, &atom)) return false;
        NodeId node = 0;
        bool quantifiable = true;
        switch (atom.kind) {
          case Atom::Kind::kCodePoint:
            node = add_literal(atom.code_point);
            break;
          case Atom::Kind::kSet:
            node = add_class(std::move(atom.set));
            break;
          case Atom::Kind::kAssert:
            node = add_assert(atom.assertion);
            quantifiable = false;
            break;
        }
        if (!push_item(node, quantifiable, start)) return false;
        break;
      }
      default: {
        // Includes a lone ']' or '}', which ECMAScript (Annex B) takes literally.
        CodePoint cp = 0;
        if (!parse_literal_code_point(&cp)) return false;
        if (!push_item(add_literal(cp), true, start)) return false;
        break;
      }
    }
  }
  if (frames_.size() > 1) {
    return fail(frames_.back().open_offset, "unterminated group: '(' has no matching ')'");
  }
  // Only reachable with a tiny max_program_size: every push above was checked.
  if (!check_program_size(0, "the pattern")) return false;
  *root = finish_frame(frames_.back());
  assert(nodes_[*root].program_size + 1 == program_size_);
  return true;
}

bool Parser::parse_group_open() {
  const std::size_t start = pos_;
  if (at(pos_ + 1, '?')) {
    const std::size_t kind = pos_ + 2;
    if (at(kind, ':')) {
      pos_ += 3;
    } else if (at(kind, '=') || at(kind, '!')) {
      return fail(start, "lookahead assertions (?= and (?! are not supported");
    } else if (at(kind, '<') && (at(kind + 1, '=') || at(kind + 1, '!'))) {
      return fail(start, "lookbehind assertions (?<= and (?<! are not supported");
    } else if (at(kind, '<')) {
      return fail(start, "named groups (?<name>...) are not supported; use (...) or (?:...)");
    } else if (kind < pattern_.size() &&
               (pattern_[kind] == '-' || (is_ascii_alnum(pattern_[kind]) && !is_ascii_digit(pattern_[kind])))) {
      return fail(start, "inline flags and modifiers such as (?i) are not supported");
    } else {
      return fail(start, "invalid group: '(?' must be followed by ':'");
    }
  } else {
    pos_ += 1;
  }
  if (frames_.size() > max_nesting_) {  // frames_ holds the whole pattern plus each open group
    return fail(start, "groups are nested deeper than max_nesting (" + std::to_string(max_nesting_) + ")");
  }
  Frame frame;
  frame.open_offset = start;
  frames_.push_back(std::move(frame));
  return true;
}

bool Parser::parse_group_close() {
  const std::size_t start = pos_;
  if (frames_.size() == 1) return fail(start, "unmatched ')'; escape it as \\) to match a parenthesis");
  ++pos_;
  const NodeId group = finish_frame(frames_.back());
  frames_.pop_back();
  // The group's contents were counted when they were pushed; don't count them twice.
  Frame& parent = frames_.back();
  parent.sequence.push_back(group);
  parent.last_is_quantifiable = true;
  return true;
}

bool Parser::parse_quantifier(std::size_t offset, std::uint32_t min, std::uint32_t max) {
  Frame& frame = frames_.back();
  if (!frame.last_is_quantifiable) {
    return fail(offset, "nothing to repeat: a quantifier must follow a character, class or group "
                        "(not another quantifier, an anchor or \\b); escape it to match it literally");
  }
  if (at(pos_, '?')) ++pos_;  // lazy: same yes/no answer
  const NodeId atom = frame.sequence.back();
  const std::uint64_t old_size = nodes_[atom].program_size;
  Node node;
  node.kind = NodeKind::kRepeat;
  node.children = {atom};
  node.min = min;
  node.max = max;
  node.program_size = repeat_program_size(old_size, min, max);
  const std::uint64_t new_size = node.program_size;
  const NodeId repeat = add_node(std::move(node));
  frame.sequence.back() = repeat;
  frame.last_is_quantifiable = false;
  program_size_ = saturating_add(program_size_ - old_size, new_size);
  return check_program_size(offset, "this repetition");
}

// At a '{': decides whether it starts {n}, {n,} or {n,m}. If so, consumes it
// and sets *is_quantifier; otherwise leaves pos_ alone.
bool Parser::try_parse_braces(std::uint32_t* min, std::uint32_t* max, bool* is_quantifier) {
  const std::size_t start = pos_;
  std::size_t i = pos_ + 1;
  // Counts beyond 2^32-2 saturate; such a repetition is too large anyway unless
  // its operand is empty.
  const auto parse_number = [&](std::uint32_t* value) {
    const std::size_t digits_begin = i;
    std::uint64_t n = 0;
    while (i < pattern_.size() && is_ascii_digit(pattern_[i])) {
      n = std::min<std::uint64_t>(kUnbounded - 1, n * 10 + static_cast<std::uint64_t>(pattern_[i] - '0'));
      ++i;
    }
    *value = static_cast<std::uint32_t>(n);
    return i > digits_begin;
  };
  *is_quantifier = false;
  std::uint32_t lo = 0;
  std::uint32_t hi = 0;
  if (!parse_number(&lo)) return true;
  if (at(i, '}')) {
    hi = lo;
  } else if (at(i, ',')) {
    ++i;
    if (at(i, '}')) {
      hi = kUnbounded;
    } else if (!parse_number(&hi) || !at(i, '}')) {
      return true;
    }
  } else {
    return true;
  }
  if (lo > hi) return fail(start, "numbers out of order in {n,m} quantifier: n is greater than m");
  pos_ = i + 1;
  *min = lo;
  *max = hi;
  *is_quantifier = true;
  return true;
}

bool Parser::parse_class() {
  const std::size_t start = pos_;
  ++pos_;
  bool negated = false;
  if (at(pos_, '^')) {
    negated = true;
    ++pos_;
  }
  CharSet set;
  while (true) {
    if (pos_ >= pattern_.size()) {
      return fail(start, "unterminated character class: '[' has no matching ']'");
    }
    if (pattern_[pos_] == ']') {
      ++pos_;
      break;
    }
    const std::size_t atom_offset = pos_;
    Atom first;
    if (!parse_class_atom(&first)) return false;
    const bool is_range = at(pos_, '-') && pos_ + 1 < pattern_.size() && pattern_[pos_ + 1] != ']';
    if (!is_range) {
      if (first.kind == Atom::Kind::kSet) {
        set.add(first.set);
      } else {
        set.add(first.code_point);
      }
      continue;
    }
    ++pos_;  // '-'
    Atom last;
    if (!parse_class_atom(&last)) return false;
    if (first.kind == Atom::Kind::kSet || last.kind == Atom::Kind::kSet) {
      // Annex B: [\w-.] is \w, '-' and '.', not a range.
      for (const Atom* atom : {&first, &last}) {
        if (atom->kind == Atom::Kind::kSet) {
          set.add(atom->set);
        } else {
          set.add(atom->code_point);
        }
      }
      set.add('-');
      continue;
    }
    if (first.code_point > last.code_point) {
      return fail(atom_offset, "range out of order in character class: the first character of a range "
                               "must not come after the last");
    }
    set.add(first.code_point, last.code_point);
  }
  if (negated) set.negate();
  return push_item(add_class(std::move(set)), true, start);
}

bool Parser::parse_class_atom(Atom* atom) {
  if (pattern_[pos_] == '\\') return parse_escape(true, atom);
  atom->kind = Atom::Kind::kCodePoint;
  return parse_literal_code_point(&atom->code_point);
}

bool Parser::parse_literal_code_point(CodePoint* cp) {
  const DecodedChar decoded = decode_utf8(pattern_, pos_);
  if (!decoded.valid) return fail(pos_, "malformed UTF-8 in pattern");
  *cp = decoded.code_point;
  pos_ += decoded.length;
  return true;
}

bool Parser::parse_hex_digits(std::size_t begin, std::size_t count, CodePoint* value) const {
  if (begin + count > pattern_.size()) return false;
  CodePoint v = 0;
  for (std::size_t i = begin; i < begin + count; ++i) {
    const int digit = hex_value(pattern_[i]);
    if (digit < 0) return false;
    v = v * 16 + static_cast<CodePoint>(digit);
  }
  *value = v;
  return true;
}

// At "\u": \uHHHH (combining an escaped surrogate pair) or \u{H...}.
bool Parser::parse_unicode_escape(std::size_t escape_offset, CodePoint* cp) {
  const std::size_t body = escape_offset + 2;
  if (at(body, '{')) {
    std::size_t i = body + 1;
    CodePoint value = 0;
    while (i < pattern_.size() && hex_value(pattern_[i]) >= 0) {
      value = value * 16 + static_cast<CodePoint>(hex_value(pattern_[i]));
      if (value > kMaxCodePoint) return fail(escape_offset, "\\u{...} code point is above U+10FFFF");
      ++i;
    }
    if (i == body + 1 || !at(i, '}')) {
      return fail(escape_offset, "\\u{ must be followed by hex digits and '}'");
    }
    pos_ = i + 1;
    *cp = value;
    return true;
  }
  CodePoint value = 0;
  if (!parse_hex_digits(body, 4, &value)) {
    return fail(escape_offset, "\\u must be followed by four hex digits or {hex digits}");
  }
  pos_ = body + 4;
  CodePoint low = 0;
  if (value >= 0xD800 && value <= 0xDBFF && at(pos_, '\\') && at(pos_ + 1, 'u') &&
      parse_hex_digits(pos_ + 2, 4, &low) && low >= 0xDC00 && low <= 0xDFFF) {
    value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00);
    pos_ += 6;
  }
  *cp = value;
  return true;
}

bool Parser::parse_escape(bool in_class, Atom* atom) {
  const std::size_t start = pos_;
  if (start + 1 >= pattern_.size()) return fail(start, "pattern ends with a lone '\\'");
  const char c = pattern_[start + 1];
  pos_ = start + 2;
  const auto code_point = [&](CodePoint cp) {
    atom->kind = Atom::Kind::kCodePoint;
    atom->code_point = cp;
    return true;
  };
  const auto set = [&](CharSet s, bool negate) {
    if (negate) s.negate();
    atom->kind = Atom::Kind::kSet;
    atom->set = std::move(s);
    return true;
  };
  const auto assertion = [&](AssertKind kind) {
    atom->kind = Atom::Kind::kAssert;
    atom->assertion = kind;
    return true;
  };
  switch (c) {
    case 'd': return set(digit_set(), false);
    case 'D': return set(digit_set(), true);
    case 'w': return set(word_set(), false);
    case 'W': return set(word_set(), true);
    case 's': return set(space_set(), false);
    case 'S': return set(space_set(), true);
    case 'b': return in_class ? code_point(0x08) : assertion(AssertKind::kWordBoundary);
    case 'B':
      if (in_class) return fail(start, "\\B is not allowed in a character class");
      return assertion(AssertKind::kNotWordBoundary);
    case 'n': return code_point('\n');
    case 'r': return code_point('\r');
    case 't': return code_point('\t');
    case 'f': return code_point('\f');
    case 'v': return code_point('\v');
    case '0':
      if (pos_ < pattern_.size() && is_ascii_digit(pattern_[pos_])) {
        return fail(start, "octal escapes are not supported; use \\xHH");
      }
      return code_point(0);
    case 'k': return fail(start, "named backreferences (\\k<name>) are not supported");
    case 'p':
    case 'P': return fail(start, "Unicode property escapes are not supported (\\p{...}, \\P{...})");
    case 'x': {
      CodePoint value = 0;
      if (!parse_hex_digits(start + 2, 2, &value)) {
        return fail(start, "\\x must be followed by exactly two hex digits");
      }
      pos_ = start + 4;
      return code_point(value);
    }
    case 'u': {
      CodePoint value = 0;
      if (!parse_unicode_escape(start, &value)) return false;
      return code_point(value);
    }
    case 'c': {
      const char letter = pos_ < pattern_.size() ? pattern_[pos_] : '\0';
      if (!((letter >= 'a' && letter <= 'z') || (letter >= 'A' && letter <= 'Z'))) {
        return fail(start, "\\c must be followed by a letter A-Z or a-z");
      }
      ++pos_;
      return code_point(static_cast<CodePoint>(letter) % 32);
    }
    default:
      break;
  }
  if (is_ascii_digit(c)) {
    return fail(start, "backreferences (\\1 ... \\9) are not supported");
  }
  if (is_ascii_alnum(c)) {
    return fail(start, std::string("unknown escape \\") + c + "; remove the backslash to match '" + c +
                           "' literally");
  }
  // Identity escape: any other character (punctuation, space, non-ASCII) stands for itself.
  pos_ = start + 1;
  atom->kind = Atom::Kind::kCodePoint;
  return parse_literal_code_point(&atom->code_point);
}

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

CompiledClass compile_class(const CharSet& set) {
  CompiledClass compiled;
  for (const CodePointRange& r : set.ranges()) {
    for (CodePoint cp = r.lo; cp <= r.hi && cp < 0x80; ++cp) compiled.ascii[cp >> 6] |= std::uint64_t{1} << (cp & 63);
    if (r.hi >= 0x80) compiled.non_ascii.push_back({std::max<CodePoint>(r.lo, 0x80), r.hi});
  }
  compiled.contains_replacement_character = set.contains(kReplacementCharacter);
  return compiled;
}

}  // namespace

struct Regex::Program {
  std::vector<Instruction> instructions;
  std::vector<CompiledClass> classes;
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

namespace {

using Program = Regex::Program;

// Syntax tree -> program. Recursion depth is bounded by the tree depth, which
// max_nesting bounds (each group adds at most an alternation, a concatenation
// and a repetition level).
class Emitter {
 public:
  Emitter(const std::vector<Node>& nodes, Program& program) : nodes_(nodes), program_(program) {}

  void emit(NodeId id) {
    const Node& node = nodes_[id];
    switch (node.kind) {
      case NodeKind::kEmpty:
        break;
      case NodeKind::kLiteral:
        push(Op::kLiteral, node.literal);
        break;
      case NodeKind::kClass:
        push(Op::kClass, node.class_index);
        break;
      case NodeKind::kAssert:
        push(Op::kAssert, static_cast<std::uint32_t>(node.assertion));
        break;
      case NodeKind::kConcat:
        for (NodeId child : node.children) emit(child);
        break;
      case NodeKind::kAlternate:
        emit_alternate(node);
        break;
      case NodeKind::kRepeat:
        emit_repeat(node);
        break;
    }
  }

 private:
  std::uint32_t here() const { return static_cast<std::uint32_t>(program_.instructions.size()); }

  std::uint32_t push(Op op, std::uint32_t arg = 0, std::uint32_t arg2 = 0) {
    program_.instructions.push_back({op, arg, arg2});
    return here() - 1;
  }

  //     split L1, L2
  // L1: a
  //     jump END
  // L2: split L3, L4
  // L3: b
  //     jump END
  // L4: c
  // END:
  void emit_alternate(const Node& node) {
    std::vector<std::uint32_t> jumps;
    for (std::size_t i = 0; i + 1 < node.children.size(); ++i) {
      const std::uint32_t split = push(Op::kSplit, here() + 1);
      emit(node.children[i]);
      jumps.push_back(push(Op::kJump));
      program_.instructions[split].arg2 = here();
    }
    emit(node.children.back());
    for (std::uint32_t jump : jumps) program_.instructions[jump].arg = here();
  }

  // x*      L: split L+1, END; x; jump L; END:
  // x{n,}   x (n-1 times); L: x; split L, END; END:
  // x{n,m}  x (n times); then m-n times "split NEXT, END; x", all splits exiting to END.
  // Sizes must agree with repeat_program_size().
  void emit_repeat(const Node& node) {
    const NodeId child = node.children.front();
    if (nodes_[child].program_size == 0 || node.max == 0) return;
    if (node.max == kUnbounded) {
      if (node.min == 0) {
        const std::uint32_t split = push(Op::kSplit, here() + 1);
        emit(child);
        push(Op::kJump, split);
        program_.instructions[split].arg2 = here();
        return;
      }
      for (std::uint32_t i = 0; i + 1 < node.min; ++i) emit(child);
      const std::uint32_t loop = here();
      emit(child);
      push(Op::kSplit, loop, here() + 1);
      return;
    }
    for (std::uint32_t i = 0; i < node.min; ++i) emit(child);
    std::vector<std::uint32_t> splits;
    for (std::uint32_t i = node.min; i < node.max; ++i) {
      splits.push_back(push(Op::kSplit, here() + 1));
      emit(child);
    }
    for (std::uint32_t split : splits) program_.instructions[split].arg2 = here();
  }

  const std::vector<Node>& nodes_;
  Program& program_;
};

// Instructions reachable from `start` without consuming input. `follow_begin`
// says whether to continue through ^ assertions (other assertions are always
// followed: this is a static over-approximation).
template <typename Visit>
void for_each_epsilon_reachable(const Program& program, bool follow_begin, Visit visit) {
  std::vector<bool> seen(program.instructions.size(), false);
  std::vector<std::uint32_t> stack{program.start};
  seen[program.start] = true;
  const auto push = [&](std::uint32_t pc) {
    if (!seen[pc]) {
      seen[pc] = true;
      stack.push_back(pc);
    }
  };
  while (!stack.empty()) {
    const std::uint32_t pc = stack.back();
    stack.pop_back();
    const Instruction& inst = program.instructions[pc];
    visit(pc, inst);
    switch (inst.op) {
      case Op::kJump:
        push(inst.arg);
        break;
      case Op::kSplit:
        push(inst.arg);
        push(inst.arg2);
        break;
      case Op::kAssert:
        if (follow_begin || static_cast<AssertKind>(inst.arg) != AssertKind::kBeginText) push(pc + 1);
        break;
      default:
        break;
    }
  }
}

void analyze(Program& program) {
  bool reaches_input_without_begin = false;
  for_each_epsilon_reachable(program, false, [&](std::uint32_t, const Instruction& inst) {
    if (inst.op == Op::kLiteral || inst.op == Op::kClass || inst.op == Op::kMatch) reaches_input_without_begin = true;
  });
  program.anchored_start = !reaches_input_without_begin;

  bool usable = true;
  std::array<bool, 256> bytes{};
  for_each_epsilon_reachable(program, true, [&](std::uint32_t, const Instruction& inst) {
    if (inst.op == Op::kMatch) {
      usable = false;
    } else if (inst.op == Op::kLiteral) {
      const CodePoint cp = inst.arg;
      if (cp == kReplacementCharacter) usable = false;
      // Surrogates and out-of-range code points never occur in decoded text.
      if (cp <= kMaxCodePoint && !(cp >= 0xD800 && cp <= 0xDFFF)) bytes[lead_byte(cp)] = true;
    } else if (inst.op == Op::kClass) {
      const CompiledClass& cls = program.classes[inst.arg];
      if (cls.contains_replacement_character) usable = false;
      for (unsigned b = 0; b < 0x80; ++b) {
        if ((cls.ascii[b >> 6] >> (b & 63)) & 1) bytes[b] = true;
      }
      for (const CodePointRange& r : cls.non_ascii) {
        for (unsigned b = lead_byte(r.lo); b <= lead_byte(std::min(r.hi, kMaxCodePoint)); ++b) bytes[b] = true;
      }
    }
  });
  const auto count = static_cast<std::size_t>(std::count(bytes.begin(), bytes.end(), true));
  // Skipping pays off only when most bytes cannot start a match.
  program.use_first_bytes = usable && count <= 128;
  program.first_bytes = bytes;
  if (program.use_first_bytes && count == 1) {
    program.single_first_byte = static_cast<int>(std::find(bytes.begin(), bytes.end(), true) - bytes.begin());
  }
}

// ---------------------------------------------------------------------------
// Search

// Per-thread scratch space, so search() does not allocate once warmed up and
// Regex itself stays immutable and shareable across threads. Holds five arrays
// of one entry per instruction (see Searcher).
struct SearchScratch {
  std::vector<std::uint32_t> storage;
  std::size_t capacity = 0;

  std::uint32_t* reserve(std::size_t instructions) {
    if (capacity < instructions) {
      storage.assign(5 * instructions, 0);
      capacity = instructions;
    }
    return storage.data();
  }
};

SearchScratch& thread_scratch() {
  thread_local SearchScratch scratch;
  return scratch;
}

// What zero-width assertions can observe at one input position.
struct PositionContext {
  bool at_begin;
  bool at_end;
  bool word_boundary;
};

// The NFA simulation state for one search: the consuming instructions alive at
// the current position and at the next one, and the set of instructions already
// visited while building the next position's list.
class Searcher {
 public:
  Searcher(const Program& program, std::uint32_t* memory, std::size_t capacity)
      : instructions_(program.instructions.data()),
        classes_(program.classes.data()),
        sparse_(memory),
        dense_(memory + capacity),
        stack_(memory + 2 * capacity),
        current_(memory + 3 * capacity),
        next_(memory + 4 * capacity) {}

  // Starts building the list for a new position.
  void new_step() {
    visited_count_ = 0;
    next_count_ = 0;
  }

  // Adds the epsilon closure of `pc`, at a position described by `context`, to
  // the next list. Returns true if it reaches the match instruction. Each
  // instruction enters at most once per step (sparse set), so a step costs
  // O(program size) however the closures overlap, and the explicit stack never
  // holds more than one entry per instruction.
  bool add_closure(std::uint32_t pc, const PositionContext& context) {
    if (visited(pc)) return false;
    mark(pc);
    std::size_t top = 0;
    stack_[top++] = pc;
    while (top > 0) {
      const std::uint32_t at = stack_[--top];
      const Instruction& inst = instructions_[at];
      switch (inst.op) {
        case Op::kMatch:
          return true;
        case Op::kLiteral:
        case Op::kClass:
          next_[next_count_++] = at;
          break;
        case Op::kJump:
          push_if_new(inst.arg, &top);
          break;
        case Op::kSplit:
          push_if_new(inst.arg2, &top);
          push_if_new(inst.arg, &top);
          break;
        case Op::kAssert:
          if (holds(static_cast<AssertKind>(inst.arg), context)) push_if_new(at + 1, &top);
          break;
      }
    }
    return false;
  }

  // Advances every thread of the current list over `cp` into the next list,
  // whose position is described by `context`. Returns true on a match.
  bool step(CodePoint cp, const PositionContext& context) {
    for (std::size_t i = 0; i < current_count_; ++i) {
      const std::uint32_t pc = current_[i];
      const Instruction& inst = instructions_[pc];
      const bool consumed = inst.op == Op::kLiteral ? inst.arg == cp : classes_[inst.arg].matches(cp);
      if (consumed && add_closure(pc + 1, context)) return true;
    }
    return false;
  }

  bool next_is_empty() const { return next_count_ == 0; }

  // The next list becomes the current one.
  void advance() {
    std::swap(current_, next_);
    current_count_ = next_count_;
    next_count_ = 0;
  }

 private:
  static bool holds(AssertKind kind, const PositionContext& context) {
    switch (kind) {
      case AssertKind::kBeginText: return context.at_begin;
      case AssertKind::kEndText: return context.at_end;
      case AssertKind::kWordBoundary: return context.word_boundary;
      case AssertKind::kNotWordBoundary: return !context.word_boundary;
    }
    return false;
  }

  // Sparse set: pc is visited iff sparse_[pc] < visited_count_ and
  // dense_[sparse_[pc]] == pc, so clearing it is O(1) and stale contents of
  // the scratch memory are harmless.
  bool visited(std::uint32_t pc) const {
    const std::uint32_t index = sparse_[pc];
    return index < visited_count_ && dense_[index] == pc;
  }
  void mark(std::uint32_t pc) {
    sparse_[pc] = visited_count_;
    dense_[visited_count_++] = pc;
  }
  void push_if_new(std::uint32_t pc, std::size_t* top) {
    if (visited(pc)) return;
    mark(pc);
    stack_[(*top)++] = pc;
  }

  const Instruction* instructions_;
  const CompiledClass* classes_;
  std::uint32_t* sparse_;
  std::uint32_t* dense_;
  std::uint32_t* stack_;
  std::uint32_t* current_;
  std::uint32_t* next_;
  std::uint32_t visited_count_ = 0;
  std::size_t current_count_ = 0;
  std::size_t next_count_ = 0;
};

// decode_utf8 with the ASCII case inlined: most policy text is ASCII.
inline DecodedChar decode_at(std::string_view text, std::size_t i) {
  const auto byte = static_cast<unsigned char>(text[i]);
  if (byte < 0x80) return {byte, 1, true};
  return decode_utf8(text, i);
}

// First position >= from whose byte may begin a match, or npos.
std::size_t find_candidate(const Program& program, std::string_view text, std::size_t from) {
  if (from >= text.size()) return std::string_view::npos;
  if (program.single_first_byte >= 0) {
    const void* hit = std::memchr(text.data() + from, program.single_first_byte, text.size() - from);
    if (hit == nullptr) return std::string_view::npos;
    return static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
  }
  for (std::size_t i = from; i < text.size(); ++i) {
    if (program.first_bytes[static_cast<unsigned char>(text[i])]) return i;
  }
  return std::string_view::npos;
}

// Whether the code point ending just before `pos` is a word character. Word
// characters are ASCII and an ASCII byte is always a whole code point, so
// looking at one byte is enough (used after skipping ahead).
bool word_char_before(std::string_view text, std::size_t pos) {
  return pos > 0 && is_word_char(static_cast<unsigned char>(text[pos - 1]));
}

}  // namespace

struct RegexCompiler {
  static Regex make(std::string_view pattern, std::shared_ptr<const Regex::Program> program) {
    Regex regex;
    regex.pattern_ = std::string(pattern);
    regex.program_ = std::move(program);
    return regex;
  }
};

RegexCompileResult compile_regex(std::string_view pattern, const RegexOptions& options) {
  RegexCompileResult result;
  RegexOptions effective = options;
  // Instruction indices are 32-bit.
  effective.max_program_size = std::min<std::size_t>(options.max_program_size, std::size_t{1} << 30);
  Parser parser(pattern, effective);
  NodeId root = 0;
  if (!parser.parse(&root)) {
    result.error = parser.error();
    return result;
  }
  auto program = std::make_shared<Program>();
  program->classes.reserve(parser.classes().size());
  for (const CharSet& set : parser.classes()) program->classes.push_back(compile_class(set));
  const std::uint64_t expected_size = parser.nodes()[root].program_size + 1;
  program->instructions.reserve(static_cast<std::size_t>(expected_size));
  Emitter(parser.nodes(), *program).emit(root);
  program->instructions.push_back({Op::kMatch, 0, 0});
  assert(program->instructions.size() == expected_size);
  (void)expected_size;
  program->start = 0;
  analyze(*program);
  result.regex = RegexCompiler::make(pattern, std::move(program));
  return result;
}

bool Regex::search(std::string_view text) const {
  if (!program_) return false;  // default-constructed: matches nothing
  const Program& program = *program_;
  const std::size_t size = program.instructions.size();
  Searcher searcher(program, thread_scratch().reserve(size), size);
  const std::size_t length = text.size();
  const bool skip_ahead = program.use_first_bytes && !program.anchored_start;

  std::size_t pos = 0;
  if (skip_ahead) {
    pos = find_candidate(program, text, 0);
    if (pos == std::string_view::npos) return false;  // the empty string cannot match
  }
  // `here` is the code point at `pos` (unused when pos == length).
  DecodedChar here = pos < length ? decode_at(text, pos) : DecodedChar{0, 0, false};
  const PositionContext first_context{pos == 0, pos == length,
                                      word_char_before(text, pos) != (pos < length && is_word_char(here.code_point))};
  searcher.new_step();
  if (searcher.add_closure(program.start, first_context)) return true;
  searcher.advance();

  // Invariant: the current list holds the consuming instructions alive at `pos`.
  while (pos < length) {
    const std::size_t next_pos = pos + here.length;
    DecodedChar after = next_pos < length ? decode_at(text, next_pos) : DecodedChar{0, 0, false};
    PositionContext context{false, next_pos == length,
                            is_word_char(here.code_point) != (next_pos < length && is_word_char(after.code_point))};
    searcher.new_step();
    if (searcher.step(here.code_point, context)) return true;
    pos = next_pos;
    here = after;
    if (searcher.next_is_empty()) {
      // No thread alive: the answer depends only on where the next attempt starts.
      if (program.anchored_start) return false;
      if (skip_ahead) {
        const std::size_t candidate = find_candidate(program, text, pos);
        if (candidate == std::string_view::npos) return false;
        if (candidate != pos) {
          // A different position: closures computed for the old one don't apply.
          searcher.new_step();
          pos = candidate;
          here = decode_at(text, pos);
          context = {false, false, word_char_before(text, pos) != is_word_char(here.code_point)};
        }
      }
    }
    if (!program.anchored_start && searcher.add_closure(program.start, context)) return true;
    searcher.advance();
  }
  return false;
}

}  // namespace toolgate
