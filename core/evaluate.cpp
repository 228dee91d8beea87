#include "evaluate.h"

#include <algorithm>
#include <cmath>

#include "canonical_json.h"
#include "json_util.h"
#include "wire.h"

// Code no allowed or typically denied call runs (traces, refusals, type
// errors, the plan's limit descriptions): compiled for size in the
// WebAssembly build (the .wasm + glue gzip budget), as it is by everything
// else natively.
#if defined(__EMSCRIPTEN__)
#define TOOLGATE_COLD __attribute__((minsize, cold, noinline))
#else
#define TOOLGATE_COLD
#endif

namespace toolgate {
namespace {

using json = nlohmann::json;

std::string_view op_name(Op op) {
  static constexpr std::string_view kNames[] = {"eq", "neq", "lt", "lte", "gt", "gte", "in", "not_in",
                                                "exists", "regex", "contains", "starts_with", "ends_with", "glob"};
  return kNames[static_cast<int>(op)];
}

// Result of one condition: holds, does not hold, or an evaluation error
// (type confusion), which denies the call.
struct Truth {
  bool holds = false;
  std::optional<std::string> error;
};

TOOLGATE_COLD Truth type_error(const Condition& condition, Value actual, std::string_view expected) {
  return Truth{false, join({condition.path.text(), " must be ", expected, " for \"", op_name(condition.op), "\" (got ",
                            type_name(actual), ")"})};
}

bool contains_equal(const json& list, Value value) {
  for (const json& item : list.get_ref<const json::array_t&>()) {
    if (value.equals(item)) return true;
  }
  return false;
}

Value resolve(const Path& path, const CallView& call) { return path.resolve(call.arguments, call.grant_id, call.grant); }

Truth check(const Condition& condition, const CallView& call) {
  const Value actual = resolve(condition.path, call);
  if (condition.op == Op::exists) return Truth{actual.present() == condition.expect_present, std::nullopt};
  if (!actual) return Truth{false, std::nullopt};  // a missing path makes every other op false
  switch (condition.op) {
    case Op::eq: return Truth{actual.equals(condition.value), std::nullopt};
    case Op::neq: return Truth{!actual.equals(condition.value), std::nullopt};
    case Op::lt:
    case Op::lte:
    case Op::gt:
    case Op::gte: {
      if (!actual.is_number()) return type_error(condition, actual, "a number");
      double number = actual.number();
      bool holds = condition.op == Op::lt    ? number < condition.number
                   : condition.op == Op::lte ? number <= condition.number
                   : condition.op == Op::gt  ? number > condition.number
                                             : number >= condition.number;
      return Truth{holds, std::nullopt};
    }
    case Op::in: return Truth{contains_equal(condition.value, actual), std::nullopt};
    case Op::not_in: return Truth{!contains_equal(condition.value, actual), std::nullopt};
    case Op::contains:
      if (actual.is_array()) {
        bool found = !actual.each_element([&](Value element) { return !element.equals(condition.value); });
        return Truth{found, std::nullopt};
      }
      if (actual.is_string()) {
        if (!condition.value.is_string()) return type_error(condition, actual, "an array (the value is not a string)");
        return Truth{actual.string().find(as_string(condition.value)) != std::string_view::npos, std::nullopt};
      }
      return type_error(condition, actual, "a string or an array");
    case Op::regex:
    case Op::starts_with:
    case Op::ends_with:
    case Op::glob: {
      if (!actual.is_string()) return type_error(condition, actual, "a string");
      const std::string_view text = actual.string();
      const std::string_view operand = condition.op == Op::regex ? text : std::string_view(as_string(condition.value));
      switch (condition.op) {
        case Op::regex: return Truth{condition.regex->search(text), std::nullopt};
        case Op::starts_with: return Truth{text.substr(0, operand.size()) == operand, std::nullopt};
        case Op::ends_with:
          return Truth{text.size() >= operand.size() && text.substr(text.size() - operand.size()) == operand,
                       std::nullopt};
        default: return Truth{condition.glob->matches(text), std::nullopt};
      }
    }
    default: return Truth{false, std::nullopt};
  }
}

// All conditions are evaluated, even after one is false, so that a type error
// anywhere in the group denies: otherwise reordering conditions could let a
// confused value through.
Truth check_group(const ConditionGroup& group, const CallView& call, std::size_t* first_false) {
  Truth result{true, std::nullopt};
  for (std::size_t i = 0; i < group.conditions.size(); ++i) {
    Truth truth = check(group.conditions[i], call);
    if (truth.error && !result.error) result.error = std::move(truth.error);
    if (!truth.holds && result.holds) {
      result.holds = false;
      if (first_false) *first_false = i;
    }
  }
  if (result.error) result.holds = false;
  return result;
}

// The step of one condition group, re-reading each condition's value (only
// when a trace is asked for: check() itself stays as it is).
TOOLGATE_COLD json trace_group(const ConditionGroup& group, const CallView& call, const Truth& truth, bool requirements) {
  json conditions = json::array();
  for (const Condition& condition : group.conditions) {
    const Value actual = resolve(condition.path, call);
    Truth one = check(condition, call);
    json step = {{"path", condition.path.text()}, {"op", op_name(condition.op)}, {"holds", one.holds}};
    step["value"] = condition.op == Op::exists ? json(condition.expect_present) : condition.value;
    if (actual) step["actual"] = actual.to_json();
    if (one.error) step["error"] = *one.error;
    conditions.push_back(std::move(step));
  }
  json step = {{"step", requirements ? "require" : "deny_if"}, {"rule", group.pointer}, {"holds", truth.holds},
               {"conditions", std::move(conditions)}};
  if (truth.error) step["error"] = *truth.error;
  return step;
}

void append_condition(std::string& text, const Condition& condition) {
  if (!condition.description.empty()) {  // written at compile time
    text += condition.description;
    return;
  }
  text += condition.path.text();
  text += ' ';
  text += op_name(condition.op);
  if (condition.op != Op::exists) {
    text += ' ';
    text += describe(condition.value, 40);
  }
}

TOOLGATE_COLD Decision deny(std::string code, std::string rule, std::string message) {
  Decision decision;
  decision.verdict = Verdict::deny;
  decision.code = std::move(code);
  decision.rule = std::move(rule);
  decision.message = std::move(message);
  return decision;
}

// Sets `decision` in place, reusing its strings' storage (evaluate_into); the
// message is left for the caller to write.
std::string& set(Decision& decision, Verdict verdict, std::string_view code, std::string_view rule) {
  decision.verdict = verdict;
  decision.code.assign(code);
  decision.rule.assign(rule);
  decision.retry_after_ms.reset();
  decision.approval_id.reset();
  decision.message.clear();
  return decision.message;
}

// A denial whose message is the first non-empty of the policy's texts (the
// entry's on_deny, the tool's); false when both are empty and the caller
// writes the generated one.
bool policy_message(std::string& message, const std::string& first, const std::string& second) {
  if (!first.empty()) {
    message.assign(first);
    return true;
  }
  if (!second.empty()) {
    message.assign(second);
    return true;
  }
  return false;
}

// Storage key: canonical JSON of everything that identifies one count,
// ["grant", <grant id>, <counter>, <window ms>, <algorithm>, <key value>?], so
// distinct counts can never collide whatever characters names contain. The
// constant middle part was rendered at compile time (Limit::key_tail).
//
// The grant id and the key value come from outside the policy (`key:
// args.x` from the agent itself), so their size is bounded: a part whose
// canonical JSON is longer than kMaxKeyPartBytes appears as
// {"sha256":"<hex of that JSON>"} instead. That form is itself longer than
// the bound, so no part kept as written can read the same, and equal values
// (being canonical) hash the same. A key stays valid JSON after "tg1:" with
// the same positions; short values are written as before.
void append_key_part(std::string& key, std::string_view part) {
  if (part.size() <= kMaxKeyPartBytes) {
    key += part;
    return;
  }
  key += "{\"sha256\":\"";
  key += sha256_hex(part);
  key += "\"}";
}

// append_json_string(key, text): a text with nothing to escape (grant ids
// nearly always) is appended in one piece, quotes around it, rather than a
// character at a time; the rest goes through append_json_string. The same
// bytes either way (core/canonical_json.cpp escapes only '"', '\\' and
// control characters).
void append_key_string(std::string& key, std::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || c == '"' || c == '\\') return append_json_string(key, text);
  }
  key += '"';
  key += text;
  key += '"';
}

void counter_key(std::string& key, const Limit& limit, const CallView& call, Value key_value) {
  key.reserve(2 * kMaxKeyPartBytes + limit.key_tail.size() + 32);  // grown once, not step by step
  key.assign("tg1:[");
  if (limit.scope == Scope::grant) {
    key += "\"grant\",";
    // Written in place, then hashed over when too long: no string of its own.
    const std::size_t start = key.size();
    append_key_string(key, call.grant_id);
    if (key.size() - start > kMaxKeyPartBytes) {
      const std::string part = key.substr(start);
      key.resize(start);
      append_key_part(key, part);
    }
    key += ',';
  } else {
    key += "\"global\",";
  }
  key += limit.key_tail;
  if (key_value) {
    key += ',';
    append_key_part(key, canonical_json(key_value));
  }
  key += ']';
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Resolves one limit to a counter request (merging with an earlier limit on
// the same key), or writes an invalid_arguments denial and returns true.
bool add_limit(const Limit& limit, const CallView& call, PendingCall& pending, std::size_t& used, Decision& decision) {
  Value key_value;
  if (limit.key) {
    key_value = resolve(*limit.key, call);
    if (!key_value) {
      std::string& message = set(decision, Verdict::deny, "invalid_arguments", limit.pointer);
      message += "This call is counted per ";
      message += limit.key->text();
      message += ", which is missing from the call.";
      return true;
    }
  }
  double cost = limit.cost;
  if (limit.cost_from) {
    const Value amount = resolve(*limit.cost_from, call);
    if (!amount || !amount.is_number() || !(amount.number() >= 0) || !std::isfinite(amount.number())) {
      std::string& message = set(decision, Verdict::deny, "invalid_arguments", limit.pointer);
      message += limit.cost_from->text();
      message += " must be a non-negative number (it is charged against a limit); got ";
      message += amount ? describe(amount) : std::string("nothing");
      return true;
    }
    cost = amount.number();
  }
  // pending.counters[0, used) are this call's; the rest is storage kept from
  // an earlier call, written over so that its strings keep their capacity.
  if (used == pending.counters.size()) pending.counters.emplace_back();
  CounterRequest& request = pending.counters[used];
  counter_key(request.key, limit, call, key_value);
  auto begin = pending.counters.begin();
  auto existing = std::find_if(begin, begin + static_cast<std::ptrdiff_t>(used),
                               [&](const CounterRequest& other) { return other.key == request.key; });
  std::size_t index = static_cast<std::size_t>(existing - begin);
  if (index == used) {
    request.scope = limit.scope;
    if (limit.scope == Scope::grant) {
      request.grant.assign(call.grant_id);
    } else {
      request.grant.clear();
    }
    request.cost = cost;
    request.max = limit.max;
    request.window_ms = limit.window_ms;
    request.algorithm = limit.algorithm;
    request.bucket_start_ms = floor_div(call.now_ms, limit.window_ms) * limit.window_ms;
    ++used;
  } else {
    // One call counts once per counter, with the largest cost of the limits
    // sharing it; each limit still checks its own max.
    existing->cost = std::max(existing->cost, cost);
    existing->max = std::min(existing->max, limit.max);
  }
  pending.limits.push_back(LimitCheck{index, limit.max, limit.pointer, limit.message});
  return false;
}

// require, then deny_if, of one rule set. `tool_on_deny` is the message of
// the tool entry deciding (empty for all_tools). True when `decision` denies.
bool check_conditions(const RuleSet& rules, const CallView& call, const std::string& tool_on_deny, bool requirements,
                      Trace* trace, Decision& decision) {
  const auto& groups = requirements ? rules.require : rules.deny_if;
  for (const ConditionGroup& group : groups) {
    std::size_t first_false = 0;
    Truth truth = check_group(group, call, &first_false);
    if (trace) trace->steps.push_back(trace_group(group, call, truth, requirements));
    if (truth.error) {
      std::string& message = set(decision, Verdict::deny, "invalid_arguments", group.pointer);
      message += "Invalid arguments: ";
      message += *truth.error;
      message += '.';
      return true;
    }
    if (requirements && !truth.holds) {
      std::string& message = set(decision, Verdict::deny, "requirement_failed", group.pointer);
      if (!policy_message(message, group.on_deny, tool_on_deny)) {
        message += "Requirement not met: ";
        append_condition(message, group.conditions[first_false]);
        message += '.';
      }
      return true;
    }
    if (!requirements && truth.holds) {
      std::string& message = set(decision, Verdict::deny, "condition_denied", group.pointer);
      if (!policy_message(message, group.on_deny, tool_on_deny)) {
        message += "Denied by policy: ";
        for (std::size_t i = 0; i < group.conditions.size(); ++i) {
          if (i != 0) message += " and ";
          append_condition(message, group.conditions[i]);
        }
        message += '.';
      }
      return true;
    }
  }
  return false;
}

}  // namespace

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::allow: return "allow";
    case Verdict::deny: return "deny";
    default: return "approval_required";
  }
}

TOOLGATE_COLD Decision invalid_call(std::string reason) {
  return deny("invalid_call", "", join({"Malformed tool call: ", reason}));
}

const ToolEntry* Plan::find_tool(std::string_view tool) const {
  if (auto it = exact_tools.find(tool); it != exact_tools.end()) return &tools[it->second];
  for (const auto& [glob, index] : glob_tools) {
    if (glob.matches(tool)) return &tools[index];
  }
  return nullptr;
}

bool ArgumentUse::reads(std::string_view key) const {
  if (all) return true;
  // A binary search with one three-way comparison per probe (compare_bytes,
  // inline), where std::binary_search makes two through memcmp: the reader
  // asks this for every argument of every call. `keys` is sorted by
  // std::string's order, which is compare_bytes's.
  std::size_t low = 0, high = keys.size();
  while (low < high) {
    const std::size_t middle = low + (high - low) / 2;
    const int order = compare_bytes(keys[middle], key);
    if (order == 0) return true;
    if (order < 0) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return false;
}

const ArgumentUse& Plan::argument_use(std::string_view tool) const { return argument_use(match_tool(tool)); }

const ArgumentUse& Plan::argument_use(const ToolMatch& match) const {
  static const ArgumentUse kNothing;
  if (match.hidden) return kNothing;
  if (match.entry) return match.entry->argument_use;
  return default_allow ? default_argument_use : kNothing;
}

ToolMatch Plan::match_tool(std::string_view tool) const {
  ToolMatch match;
  match.hidden = find_hidden(tool);
  if (!match.hidden) match.entry = find_tool(tool);
  return match;
}

bool Plan::monitored(std::string_view tool) const {
  if (monitor) return true;
  if (find_hidden(tool)) return false;
  const ToolEntry* entry = find_tool(tool);
  return entry && entry->monitor;
}

TOOLGATE_COLD std::vector<LimitInfo> Plan::limits() const {
  std::vector<LimitInfo> out;
  for (const ToolEntry& entry : tools) {
    for (const Limit& limit : entry.rules.limits) out.push_back(LimitInfo{&limit, &entry});
  }
  for (const Limit& limit : all_tools.limits) out.push_back(LimitInfo{&limit, nullptr});
  return out;
}

TOOLGATE_COLD LimitInfo Plan::find_limit(std::string_view rule) const {
  for (const ToolEntry& entry : tools) {
    for (const Limit& limit : entry.rules.limits) {
      if (limit.pointer == rule) return LimitInfo{&limit, &entry};
    }
  }
  for (const Limit& limit : all_tools.limits) {
    if (limit.pointer == rule) return LimitInfo{&limit, nullptr};
  }
  return LimitInfo{};
}

const HideEntry* Plan::find_hidden(std::string_view tool) const {
  for (const HideEntry& entry : hide) {
    if (entry.glob.matches(tool)) return &entry;
  }
  return nullptr;
}

CallView view_of(const Call& call) {
  CallView view;
  view.tool = call.tool;
  view.arguments = Value(call.arguments);
  view.grant_id = call.grant.id;
  view.grant = Value(call.grant.attributes);
  view.now_ms = call.now_ms;
  return view;
}

Evaluation evaluate(const Plan& plan, const Call& call, Trace* trace) { return evaluate(plan, view_of(call), trace); }

Evaluation evaluate(const Plan& plan, const CallView& call, Trace* trace) {
  Evaluation result;
  Decision decision;
  if (evaluate_into(plan, call, decision, result.pending, trace)) result.decision = std::move(decision);
  return result;
}

bool evaluate_into(const Plan& plan, const CallView& call, Decision& decision, PendingCall& pending, Trace* trace) {
  std::size_t used = 0;  // counters of this call; see add_limit
  pending.limits.clear();
  pending.approval.reset();
  pending.owned_text.clear();
  if (call.tool.empty()) {
    set(decision, Verdict::deny, "invalid_call", "") += "Malformed tool call: the tool name is missing or empty.";
    return true;
  }
  if (!call.arguments.is_object()) {
    set(decision, Verdict::deny, "invalid_call", "") += "Malformed tool call: arguments must be a JSON object.";
    return true;
  }
  // Messages name the tool, quoted as describe() quotes it.
  auto quote_tool = [&call](std::string& message) { append_description(message, call.tool, 80); };

  // The reader's look-up of this name in this plan, when it made one.
  const bool matched = call.matched_by == &plan && call.matched_tool.data() == call.tool.data() &&
                       call.matched_tool.size() == call.tool.size();
  const ToolMatch match = matched ? call.match : plan.match_tool(call.tool);
  if (const HideEntry* hidden = match.hidden) {
    if (trace) trace->steps.push_back({{"step", "hide"}, {"rule", hidden->pointer}, {"hidden", true}});
    std::string& message = set(decision, Verdict::deny, "hidden", hidden->pointer);
    message += "Tool ";
    quote_tool(message);
    message += " is not available.";
    return true;
  }
  const ToolEntry* entry = match.entry;
  if (trace) {
    trace->steps.push_back({{"step", "entry"},
                            {"rule", entry ? entry->pointer : "/default"},
                            {"entry", entry ? json(entry->key) : json(nullptr)},
                            {"default", plan.default_allow ? "allow" : "deny"}});
  }
  if (!entry && !plan.default_allow) {
    std::string& message = set(decision, Verdict::deny, "default_deny", "/default");
    message += "Tool ";
    quote_tool(message);
    message += " is not allowed: the policy has no entry for it and denies by default.";
    return true;
  }
  static const std::string no_message;
  const std::string& tool_on_deny = entry ? entry->on_deny : no_message;
  if (entry && entry->action == Action::deny) {
    if (trace) trace->steps.push_back({{"step", "action"}, {"rule", entry->pointer + "/action"}, {"action", "deny"}});
    std::string& message = set(decision, Verdict::deny, "tool_denied", entry->pointer);
    decision.rule += "/action";
    if (!policy_message(message, entry->on_deny, no_message)) {
      message += "Tool ";
      quote_tool(message);
      message += " is denied by policy.";
    }
    return true;
  }
  if (entry && entry->args) {
    auto problem = validate(*entry->args, call.arguments, "args");
    if (trace) {
      json step = {{"step", "args"}, {"rule", entry->pointer + "/args"}, {"valid", !problem}};
      if (problem) step["problem"] = *problem;
      trace->steps.push_back(std::move(step));
    }
    if (problem) {
      std::string& message = set(decision, Verdict::deny, "invalid_arguments", entry->pointer);
      decision.rule += "/args";
      message += "Invalid arguments: ";
      message += *problem;
      message += '.';
      return true;
    }
  }
  for (bool requirements : {true, false}) {
    if (entry && check_conditions(entry->rules, call, tool_on_deny, requirements, trace, decision)) return true;
    if (check_conditions(plan.all_tools, call, no_message, requirements, trace, decision)) return true;
  }

  pending.now_ms = call.now_ms;
  pending.tool.assign(call.tool);
  pending.allow_rule.assign(entry ? std::string_view(entry->pointer) : std::string_view("/default"));
  // Limit inputs (key, cost_from) are resolved before anything is counted, so a
  // malformed call never touches a counter.
  if (entry) {
    for (const Limit& limit : entry->rules.limits) {
      if (add_limit(limit, call, pending, used, decision)) return true;
    }
  }
  for (const Limit& limit : plan.all_tools.limits) {
    if (add_limit(limit, call, pending, used, decision)) return true;
  }
  if (entry && entry->action == Action::require_approval) {
    json subject = {{"arguments", call.arguments.to_json()}, {"grant", std::string(call.grant_id)}, {"tool", std::string(call.tool)}};
    ApprovalNeed need;
    need.id = sha256_hex(canonical_json(subject));
    need.timeout_ms = entry->approval_timeout_ms;
    need.rule = entry->pointer + "/action";
    need.message = "Tool ";
    quote_tool(need.message);
    need.message += join({" requires a human's approval. Approval id: ", need.id, "."});
    pending.approval = std::move(need);
  }
  pending.counters.resize(used);
  if (!pending.approval && pending.counters.empty()) {
    set(decision, Verdict::allow, "allowed", pending.allow_rule) += "Allowed.";
    return true;
  }
  return false;
}

double estimate(const CounterRequest& request, CounterState state, std::int64_t now_ms) {
  if (request.algorithm == Algorithm::fixed) return state.current;
  double window = static_cast<double>(request.window_ms);
  double elapsed = static_cast<double>(now_ms - request.bucket_start_ms);
  return state.previous * (window - elapsed) / window + state.current;
}

bool admits(const CounterRequest& request, CounterState state, std::int64_t now_ms, double max) {
  return estimate(request, state, now_ms) + request.cost <= max;
}

std::int64_t retry_after_ms(const CounterRequest& request, CounterState state, std::int64_t now_ms, double max) {
  const double window = static_cast<double>(request.window_ms);
  const double elapsed = static_cast<double>(now_ms - request.bucket_start_ms);
  const double to_window_end = window - elapsed;
  double wait = to_window_end;
  if (request.algorithm == Algorithm::sliding && request.cost <= max) {
    if (state.current + request.cost <= max && state.previous > 0) {
      // Still in this bucket: wait until the previous bucket's weight fades enough.
      double needed_elapsed = window - (max - state.current - request.cost) * window / state.previous;
      wait = needed_elapsed - elapsed;
    } else if (state.current > 0) {
      // Next bucket: this bucket becomes "previous" and must fade in turn.
      double needed_elapsed = window - (max - request.cost) * window / state.current;
      wait = to_window_end + std::max(0.0, needed_elapsed);
    }
  }
  // At most 2^53 - 1, the largest integer every JSON reader (JavaScript's
  // above all) holds exactly: windows up to "999999999d" would otherwise give
  // waits that a JS host reads as a different number than a native one.
  return std::clamp<std::int64_t>(static_cast<std::int64_t>(std::ceil(wait)), 1, 9007199254740991);
}

Decision finish(const PendingCall& pending, bool approved, std::span<const CounterState> states, Trace* trace) {
  Decision decision;
  finish_into(pending, approved, states, decision, trace);
  return decision;
}

void finish_into(const PendingCall& pending, bool approved, std::span<const CounterState> states, Decision& decision,
                 Trace* trace) {
  if (trace && pending.approval) {
    trace->steps.push_back({{"step", "approval"}, {"rule", pending.approval->rule}, {"approval_id", pending.approval->id},
                            {"approved", approved}});
  }
  if (pending.approval && !approved) {
    set(decision, Verdict::approval_required, "approval_required", pending.approval->rule)
        .assign(pending.approval->message);
    decision.approval_id = pending.approval->id;
    return;
  }
  if (states.size() < pending.counters.size()) {
    set(decision, Verdict::deny, "store_error", pending.allow_rule)
        .assign("Counter values are missing; the call is denied (fail closed).");
    return;
  }
  // First denial wins: the first exceeded limit, in order, decides, and its
  // window gives retry_after_ms.
  for (const LimitCheck& limit : pending.limits) {
    const CounterRequest& request = pending.counters[limit.counter];
    const CounterState& state = states[limit.counter];
    const bool admitted = admits(request, state, pending.now_ms, limit.max);
    if (trace) {
      trace->steps.push_back({{"step", "limit"}, {"rule", std::string(limit.rule)}, {"counter", request.key},
                              {"count", estimate(request, state, pending.now_ms)}, {"cost", request.cost},
                              {"max", limit.max}, {"admitted", admitted}});
    }
    if (admitted) continue;
    set(decision, Verdict::deny, "rate_limited", limit.rule).assign(limit.message);
    decision.retry_after_ms = retry_after_ms(request, state, pending.now_ms, limit.max);
    return;
  }
  set(decision, Verdict::allow, "allowed", pending.allow_rule)
      .assign(pending.approval ? "Allowed with a human's approval." : "Allowed.");
}

}  // namespace toolgate
