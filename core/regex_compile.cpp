// Regex compiler: syntax tree (regex_parse.cpp) -> program, and
// compile_regex(), the public entry point that runs the parser and then this.
// A Thompson construction: each node becomes NFA instructions (code point
// tests, splits, jumps, zero-width assertions), and the program ends in match.
// The parser computed every node's size with the same layouts (see
// emit_repeat and repeat_program_size), so the program is exactly as large as
// the parser checked against max_program_size. analyze() then records what
// the matcher (regex_match.cpp) uses to skip work: whether every path starts
// with ^, and which bytes can begin a match. Compilation recurses over the
// syntax tree, whose depth is bounded by max_nesting.

#include "regex_internal.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace toolgate {

namespace regex_internal {

namespace {

// First byte of the UTF-8 encoding of cp (cp <= U+10FFFF). Monotonic in cp,
// which lets a code point range map to a contiguous range of lead bytes.
unsigned lead_byte(CodePoint cp) {
  if (cp < 0x80) return cp;
  if (cp < 0x800) return 0xC0 | (cp >> 6);
  if (cp < 0x10000) return 0xE0 | (cp >> 12);
  return 0xF0 | (cp >> 18);
}

CompiledClass compile_class(const CharSet& set) {
  CompiledClass compiled;
  for (const CodePointRange& r : set.ranges()) {
    for (CodePoint cp = r.lo; cp <= r.hi && cp < 0x80; ++cp) compiled.ascii[cp >> 6] |= std::uint64_t{1} << (cp & 63);
    if (r.hi >= 0x80) compiled.non_ascii.push_back({std::max<CodePoint>(r.lo, 0x80), r.hi});
  }
  compiled.contains_replacement_character = set.contains(kReplacementCharacter);
  return compiled;
}

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

}  // namespace

}  // namespace regex_internal

struct RegexCompiler {
  static Regex make(std::string_view pattern, std::shared_ptr<const Regex::Program> program) {
    Regex regex;
    regex.pattern_ = std::string(pattern);
    regex.program_ = std::move(program);
    return regex;
  }
};

RegexCompileResult compile_regex(std::string_view pattern, const RegexOptions& options) {
  using namespace regex_internal;
  RegexCompileResult result;
  RegexOptions effective = options;
  // Instruction indices are 32-bit.
  effective.max_program_size = std::min<std::size_t>(options.max_program_size, std::size_t{1} << 30);
  SyntaxTree tree;
  RegexError error;
  if (!parse_regex(pattern, effective, &tree, &error)) {
    result.error = std::move(error);
    return result;
  }
  auto program = std::make_shared<Program>();
  program->classes.reserve(tree.classes.size());
  for (const CharSet& set : tree.classes) program->classes.push_back(compile_class(set));
  const std::uint64_t expected_size = tree.nodes[tree.root].program_size + 1;
  program->instructions.reserve(static_cast<std::size_t>(expected_size));
  Emitter(tree.nodes, *program).emit(tree.root);
  program->instructions.push_back({Op::kMatch, 0, 0});
  assert(program->instructions.size() == expected_size);
  (void)expected_size;
  program->start = 0;
  analyze(*program);
  result.regex = RegexCompiler::make(pattern, std::move(program));
  return result;
}

}  // namespace toolgate
