// The compiled, immutable form of a policy: what compile() builds once and
// evaluate() reads for every call. Nothing here changes after compilation, so
// one plan can serve any number of concurrent evaluations.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "glob.h"
#include "path.h"
#include "regex.h"
#include "schema.h"

namespace toolgate {

enum class Op { eq, neq, lt, lte, gt, gte, in, not_in, exists, regex, contains, starts_with, ends_with, glob };

struct Condition {
  Path path;
  Op op = Op::eq;
  nlohmann::json value;             // the policy's operand
  double number = 0;                // lt/lte/gt/gte: the operand as a number
  bool expect_present = true;       // exists: `value` (default true)
  std::optional<Regex> regex;       // regex: compiled at load time
  std::optional<Glob> glob;         // glob
  // "args.amount gt 500": how generated denial messages name this condition,
  // written at compile time so that a denial builds no text from the policy.
  std::string description;
};

// A `require` entry or a `deny_if` entry: holds when all its conditions hold.
struct ConditionGroup {
  std::vector<Condition> conditions;
  std::string on_deny;  // empty: use the tool's message or a generated one
  std::string pointer;  // e.g. /tools/create_refund/deny_if/0
};

enum class Algorithm { fixed, sliding };
enum class Scope { grant, global };

struct Limit {
  std::string pointer;      // e.g. /tools/run/limits/0 or /tools/run/rate_limit
  std::string counter;      // shared name, or the pointer when unnamed
  bool named = false;       // `counter` was given (the count may be shared with other limits)
  std::int64_t window_ms = 0;
  Algorithm algorithm = Algorithm::fixed;
  double max = 0;
  Scope scope = Scope::grant;
  std::optional<Path> key;
  double cost = 1;
  std::optional<Path> cost_from;
  std::string on_deny;
  // Filled in at compile time so that evaluation only copies them:
  std::string message;   // on_deny, else the tool's on_deny, else a generated text
  std::string key_tail;  // canonical JSON of counter, window and algorithm, for counter keys
};

struct RuleSet {
  std::vector<ConditionGroup> require;
  std::vector<ConditionGroup> deny_if;
  std::vector<Limit> limits;
};

enum class Action { allow, deny, require_approval };

// Which top-level arguments evaluating a call can read: all of them (a schema
// checks the whole object, an approval hashes it), or only `keys`, the first
// segment of every args.* path the governing rules use. A host that decodes
// calls itself (the WebAssembly boundary) skips the rest, so a call does not
// pay for a large argument no rule looks at.
struct ArgumentUse {
  bool all = false;
  std::vector<std::string> keys;  // sorted, unique
  bool reads(std::string_view key) const;
};

struct ToolEntry {
  std::string key;       // the name or glob as written
  std::string pointer;   // /tools/<escaped key>
  Action action = Action::allow;
  std::string on_deny;
  std::optional<Schema> args;
  RuleSet rules;
  std::int64_t approval_timeout_ms = 10 * 60 * 1000;
  ArgumentUse argument_use;  // this entry's rules and all_tools together
  bool monitor = false;      // "mode": "monitor": decided, recorded, not enforced (by the proxy)
};

struct HideEntry {
  Glob glob;
  std::string pointer;  // /hide/<i>
};

// Every tool name a policy mentions, for hosts: a proxy refuses names that
// only look like one of these (case or Unicode variants of a hidden tool or of
// a glob key), which it can only do if it knows them all. `exact`: the `tools`
// keys and `hide` entries without `*`; `globs`: those with `*`. Each sorted
// (by bytes) and without repeats; a name both hidden and a key appears once.
struct PolicyNames {
  std::vector<std::string> exact;
  std::vector<std::string> globs;
};

// One limit as a host sees it (Plan::limits): the limit, and the tools entry
// that sets it. A pending evaluation names the limits it checks by `rule`
// (LimitCheck::rule == Limit::pointer), so a host can say what a counter is
// (its name, scope, window, max, what it is counted per) from the plan,
// without reading counter keys, whose layout is the stores' business.
struct LimitInfo {
  const Limit* limit = nullptr;     // into the plan
  const ToolEntry* tool = nullptr;  // the tools entry; nullptr for all_tools (every call that reaches the rules)
};

// A transparent hash for maps keyed by names, so lookups take a string_view.
struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

// What governs a tool name in one plan (Plan::match_tool): the hide entry
// that matches it, else the tools entry (either, or both, may be null).
// Reading a call looks its tool up once to know which arguments to decode;
// evaluation takes the same match instead of looking the name up again.
struct ToolMatch {
  const HideEntry* hidden = nullptr;
  const ToolEntry* entry = nullptr;  // null when hidden
};

struct Plan {
  bool default_allow = false;
  bool monitor = false;  // "mode": "monitor" at the top: every call decided, recorded, not enforced
  std::vector<HideEntry> hide;
  std::vector<ToolEntry> tools;
  // name -> index in tools; looked up by string_view, without building a std::string
  std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> exact_tools;
  // Glob keys, most literal characters first, then document order.
  std::vector<std::pair<Glob, std::size_t>> glob_tools;
  RuleSet all_tools;
  std::string description;
  std::string policy_hash;  // sha256 of the policy text (same as `sha256sum`), for audit logs
  ArgumentUse default_argument_use;  // a tool with no entry: all_tools' paths (under default allow)
  PolicyNames names;                 // every tool name and glob the policy mentions

  // What evaluating a call to `tool` can read of its arguments (nothing for a
  // hidden tool or one denied by default).
  const ArgumentUse& argument_use(std::string_view tool) const;
  const ArgumentUse& argument_use(const ToolMatch& match) const;

  // The hide entry of `tool`, else its tools entry: what evaluation reads first.
  ToolMatch match_tool(std::string_view tool) const;

  // The entry that governs `tool`, or nullptr (then `default` applies).
  const ToolEntry* find_tool(std::string_view tool) const;
  // The hide entry that matches `tool`, or nullptr.
  const HideEntry* find_hidden(std::string_view tool) const;
  // Whether calls to `tool` run in monitor mode: the document's "mode", or the
  // "mode" of the tools entry that governs it (a hidden tool is governed by
  // its hide entry, which has no mode). Decisions are the same either way; a
  // proxy forwards a monitored call it would refuse, and records that.
  bool monitored(std::string_view tool) const;

  // Every limit of the policy: each tools entry's (in `tools` order; its
  // `limits`, then its `rate_limit`), then all_tools'. Views into this plan.
  std::vector<LimitInfo> limits() const;
  // The limit whose JSON Pointer is `rule` (a LimitCheck's rule), or a
  // LimitInfo with a null `limit` when no limit has it.
  LimitInfo find_limit(std::string_view rule) const;
};

}  // namespace toolgate
