// Regex matcher: Regex::search(), a program (regex_compile.cpp) simulated
// over the input text. This is the only part of the engine that runs on every
// call a policy decides, so it is kept apart from the parser and compiler,
// which run once, when the policy loads.
//
// Matching: the pattern compiles to a program of NFA instructions (code point
// tests, splits, jumps, zero-width assertions, match). search() simulates the
// NFA over the input, keeping the set of live instruction indices in a sparse
// set so each instruction is visited at most once per input position: the cost
// is O(program size x input length), independent of how ambiguous the pattern
// is. Since only a yes/no answer is needed, there are no captures or thread
// priorities, and laziness is irrelevant. Epsilon closures use an explicit
// stack; nothing recurses over the input.
//
// Cost in practice: roughly 20 ns per input byte per few live states on x86-64
// (-O2); search() does not allocate after its first call on a thread (scratch
// memory is thread_local, sized by the largest program seen). Two shortcuts
// keep common cases fast: a pattern whose every path starts with ^ only starts
// threads at position 0 and stops once none is alive, and when no thread is
// alive the search skips (memchr when possible) to the next byte that can
// begin a match. The worst case is still program size x input length, so a
// pattern near max_program_size (20000) over a 1 MB input can take seconds.

#include "regex_internal.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace toolgate {

namespace regex_internal {

namespace {

// ECMAScript \w without the u flag: ASCII only.
inline bool is_word_char(CodePoint cp) {
  return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp == '_';
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

}  // namespace regex_internal

bool Regex::search(std::string_view text) const {
  using namespace regex_internal;
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
