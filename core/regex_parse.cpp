// Regex parser: pattern -> syntax tree (regex_internal.h), or a RegexError
// with the byte offset of the problem and how to fix it. This file decides
// what the engine accepts, so the syntax it supports, what it rejects and how
// it differs from ECMAScript are documented here, next to the code that
// decides. It also enforces RegexOptions: each node records how many
// instructions it will compile to (repeat_program_size), so a pattern too
// large for max_program_size fails at the offending part before anything is
// built, and groups deeper than max_nesting fail at their '('. What it hands
// to the compiler (regex_compile.cpp) is therefore always within both limits.
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

#include "regex_internal.h"

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace toolgate {

namespace regex_internal {

namespace {

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ascii_alnum(char c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

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
  // After a successful parse(): the tree, moved out (parse_regex() is done with the parser).
  std::vector<Node> take_nodes() { return std::move(nodes_); }
  std::vector<CharSet> take_classes() { return std::move(classes_); }

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

}  // namespace

bool parse_regex(std::string_view pattern, const RegexOptions& options, SyntaxTree* tree, RegexError* error) {
  Parser parser(pattern, options);
  if (!parser.parse(&tree->root)) {
    *error = parser.error();
    return false;
  }
  tree->nodes = parser.take_nodes();
  tree->classes = parser.take_classes();
  return true;
}

}  // namespace regex_internal

}  // namespace toolgate
