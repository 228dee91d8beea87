#include "evaluate.h"

#include <algorithm>
#include <cmath>

#include "canonical_json.h"
#include "json_util.h"
#include "wire.h"

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

Truth type_error(const Condition& condition, const json& actual, std::string_view expected) {
  return Truth{false, condition.path.text() + " must be " + std::string(expected) + " for \"" +
                          std::string(op_name(condition.op)) + "\" (got " + std::string(type_name(actual)) + ")"};
}

bool contains_equal(const json& list, const json& value) {
  for (const json& item : list.get_ref<const json::array_t&>()) {
    if (item == value) return true;
  }
  return false;
}

Truth check(const Condition& condition, const Call& call) {
  json scratch;
  const json* actual = condition.path.resolve(call.arguments, call.grant, scratch);
  if (condition.op == Op::exists) return Truth{(actual != nullptr) == condition.expect_present, std::nullopt};
  if (!actual) return Truth{false, std::nullopt};  // a missing path makes every other op false
  switch (condition.op) {
    case Op::eq: return Truth{*actual == condition.value, std::nullopt};
    case Op::neq: return Truth{!(*actual == condition.value), std::nullopt};
    case Op::lt:
    case Op::lte:
    case Op::gt:
    case Op::gte: {
      if (!actual->is_number()) return type_error(condition, *actual, "a number");
      double number = as_double(*actual);
      bool holds = condition.op == Op::lt    ? number < condition.number
                   : condition.op == Op::lte ? number <= condition.number
                   : condition.op == Op::gt  ? number > condition.number
                                             : number >= condition.number;
      return Truth{holds, std::nullopt};
    }
    case Op::in: return Truth{contains_equal(condition.value, *actual), std::nullopt};
    case Op::not_in: return Truth{!contains_equal(condition.value, *actual), std::nullopt};
    case Op::contains:
      if (actual->is_array()) return Truth{contains_equal(*actual, condition.value), std::nullopt};
      if (actual->is_string()) {
        if (!condition.value.is_string()) return type_error(condition, *actual, "an array (the value is not a string)");
        return Truth{as_string(*actual).find(as_string(condition.value)) != std::string::npos, std::nullopt};
      }
      return type_error(condition, *actual, "a string or an array");
    case Op::regex:
    case Op::starts_with:
    case Op::ends_with:
    case Op::glob: {
      if (!actual->is_string()) return type_error(condition, *actual, "a string");
      const std::string& text = as_string(*actual);
      const std::string& operand = condition.op == Op::regex ? text : as_string(condition.value);
      switch (condition.op) {
        case Op::regex: return Truth{condition.regex->search(text), std::nullopt};
        case Op::starts_with: return Truth{text.rfind(operand, 0) == 0, std::nullopt};
        case Op::ends_with:
          return Truth{text.size() >= operand.size() && text.compare(text.size() - operand.size(), operand.size(), operand) == 0,
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
Truth check_group(const ConditionGroup& group, const Call& call, std::size_t* first_false) {
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
json trace_group(const ConditionGroup& group, const Call& call, const Truth& truth, bool requirements) {
  json conditions = json::array();
  for (const Condition& condition : group.conditions) {
    json scratch;
    const json* actual = condition.path.resolve(call.arguments, call.grant, scratch);
    Truth one = check(condition, call);
    json step = {{"path", condition.path.text()}, {"op", op_name(condition.op)}, {"holds", one.holds}};
    step["value"] = condition.op == Op::exists ? json(condition.expect_present) : condition.value;
    if (actual) step["actual"] = *actual;
    if (one.error) step["error"] = *one.error;
    conditions.push_back(std::move(step));
  }
  json step = {{"step", requirements ? "require" : "deny_if"}, {"rule", group.pointer}, {"holds", truth.holds},
               {"conditions", std::move(conditions)}};
  if (truth.error) step["error"] = *truth.error;
  return step;
}

std::string describe_condition(const Condition& condition) {
  std::string text = condition.path.text() + " " + std::string(op_name(condition.op));
  if (condition.op != Op::exists) text += " " + describe(condition.value, 40);
  return text;
}

Decision deny(std::string code, std::string rule, std::string message) {
  Decision decision;
  decision.verdict = Verdict::deny;
  decision.code = std::move(code);
  decision.rule = std::move(rule);
  decision.message = std::move(message);
  return decision;
}

std::string first_nonempty(const std::string& a, const std::string& b, std::string fallback) {
  if (!a.empty()) return a;
  if (!b.empty()) return b;
  return fallback;
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
void append_key_part(std::string& key, std::string&& part) {
  if (part.size() <= kMaxKeyPartBytes) {
    key += part;
    return;
  }
  key += "{\"sha256\":\"";
  key += sha256_hex(part);
  key += "\"}";
}

std::string counter_key(const Limit& limit, const Call& call, const json* key_value) {
  std::string key = "tg1:[";
  if (limit.scope == Scope::grant) {
    key += "\"grant\",";
    std::string grant;
    append_json_string(grant, call.grant.id);
    append_key_part(key, std::move(grant));
    key += ',';
  } else {
    key += "\"global\",";
  }
  key += limit.key_tail;
  if (key_value) {
    key += ',';
    append_key_part(key, canonical_json(*key_value));
  }
  key += ']';
  return key;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Resolves one limit to a counter request (merging with an earlier limit on
// the same key), or returns an invalid_arguments denial.
std::optional<Decision> add_limit(const Limit& limit, const Call& call, PendingCall& pending) {
  json scratch;
  const json* key_value = nullptr;
  if (limit.key) {
    key_value = limit.key->resolve(call.arguments, call.grant, scratch);
    if (!key_value)
      return deny("invalid_arguments", limit.pointer,
                  "This call is counted per " + limit.key->text() + ", which is missing from the call.");
  }
  double cost = limit.cost;
  if (limit.cost_from) {
    json cost_scratch;
    const json* amount = limit.cost_from->resolve(call.arguments, call.grant, cost_scratch);
    if (!amount || !amount->is_number() || !(as_double(*amount) >= 0) || !std::isfinite(as_double(*amount)))
      return deny("invalid_arguments", limit.pointer,
                  limit.cost_from->text() + " must be a non-negative number (it is charged against a limit); got " +
                      (amount ? describe(*amount) : std::string("nothing")));
    cost = as_double(*amount);
  }
  std::string key = counter_key(limit, call, key_value);
  auto existing = std::find_if(pending.counters.begin(), pending.counters.end(),
                               [&](const CounterRequest& request) { return request.key == key; });
  std::size_t index = static_cast<std::size_t>(existing - pending.counters.begin());
  if (existing == pending.counters.end()) {
    CounterRequest request;
    request.key = std::move(key);
    request.scope = limit.scope;
    request.grant = limit.scope == Scope::grant ? call.grant.id : "";
    request.cost = cost;
    request.max = limit.max;
    request.window_ms = limit.window_ms;
    request.algorithm = limit.algorithm;
    request.bucket_start_ms = floor_div(call.now_ms, limit.window_ms) * limit.window_ms;
    pending.counters.push_back(std::move(request));
  } else {
    // One call counts once per counter, with the largest cost of the limits
    // sharing it; each limit still checks its own max.
    existing->cost = std::max(existing->cost, cost);
    existing->max = std::min(existing->max, limit.max);
  }
  pending.limits.push_back(LimitCheck{index, limit.max, limit.pointer, limit.message});
  return std::nullopt;
}

// require, then deny_if, of one rule set. `tool_on_deny` is the message of
// the tool entry deciding (empty for all_tools).
std::optional<Decision> check_conditions(const RuleSet& rules, const Call& call, const std::string& tool_on_deny,
                                         bool requirements, Trace* trace) {
  const auto& groups = requirements ? rules.require : rules.deny_if;
  for (const ConditionGroup& group : groups) {
    std::size_t first_false = 0;
    Truth truth = check_group(group, call, &first_false);
    if (trace) trace->steps.push_back(trace_group(group, call, truth, requirements));
    if (truth.error) return deny("invalid_arguments", group.pointer, "Invalid arguments: " + *truth.error + ".");
    if (requirements && !truth.holds) {
      return deny("requirement_failed", group.pointer,
                  first_nonempty(group.on_deny, tool_on_deny,
                                 "Requirement not met: " + describe_condition(group.conditions[first_false]) + "."));
    }
    if (!requirements && truth.holds) {
      std::string conditions;
      for (const Condition& condition : group.conditions) {
        conditions += (conditions.empty() ? "" : " and ") + describe_condition(condition);
      }
      return deny("condition_denied", group.pointer,
                  first_nonempty(group.on_deny, tool_on_deny, "Denied by policy: " + conditions + "."));
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::allow: return "allow";
    case Verdict::deny: return "deny";
    default: return "approval_required";
  }
}

Decision invalid_call(std::string reason) {
  return deny("invalid_call", "", "Malformed tool call: " + reason);
}

const ToolEntry* Plan::find_tool(std::string_view tool) const {
  if (auto it = exact_tools.find(std::string(tool)); it != exact_tools.end()) return &tools[it->second];
  for (const auto& [glob, index] : glob_tools) {
    if (glob.matches(tool)) return &tools[index];
  }
  return nullptr;
}

bool ArgumentUse::reads(std::string_view key) const {
  return all || std::binary_search(keys.begin(), keys.end(), key, std::less<>());
}

const ArgumentUse& Plan::argument_use(std::string_view tool) const {
  static const ArgumentUse kNothing;
  if (find_hidden(tool)) return kNothing;
  if (const ToolEntry* entry = find_tool(tool)) return entry->argument_use;
  return default_allow ? default_argument_use : kNothing;
}

bool Plan::monitored(std::string_view tool) const {
  if (monitor) return true;
  if (find_hidden(tool)) return false;
  const ToolEntry* entry = find_tool(tool);
  return entry && entry->monitor;
}

std::vector<LimitInfo> Plan::limits() const {
  std::vector<LimitInfo> out;
  for (const ToolEntry& entry : tools) {
    for (const Limit& limit : entry.rules.limits) out.push_back(LimitInfo{&limit, &entry});
  }
  for (const Limit& limit : all_tools.limits) out.push_back(LimitInfo{&limit, nullptr});
  return out;
}

LimitInfo Plan::find_limit(std::string_view rule) const {
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

Evaluation evaluate(const Plan& plan, const Call& call, Trace* trace) {
  Evaluation result;
  // Moves the result out: returning it by copy would copy the pending
  // evaluation built so far (strings and vectors) on every final decision.
  auto decided = [&](Decision decision) {
    result.decision = std::move(decision);
    return std::move(result);
  };
  if (call.tool.empty()) return decided(invalid_call("the tool name is missing or empty."));
  if (!call.arguments.is_object()) return decided(invalid_call("arguments must be a JSON object."));
  // Messages name the tool; build that text only when a message is needed.
  auto quoted = [&call] { return describe(json(call.tool), 80); };

  if (const HideEntry* hidden = plan.find_hidden(call.tool)) {
    if (trace) trace->steps.push_back({{"step", "hide"}, {"rule", hidden->pointer}, {"hidden", true}});
    return decided(deny("hidden", hidden->pointer, "Tool " + quoted() + " is not available."));
  }
  const ToolEntry* entry = plan.find_tool(call.tool);
  if (trace) {
    trace->steps.push_back({{"step", "entry"},
                            {"rule", entry ? entry->pointer : "/default"},
                            {"entry", entry ? json(entry->key) : json(nullptr)},
                            {"default", plan.default_allow ? "allow" : "deny"}});
  }
  if (!entry && !plan.default_allow) {
    return decided(deny("default_deny", "/default",
                        "Tool " + quoted() + " is not allowed: the policy has no entry for it and denies by default."));
  }
  const std::string no_message;
  const std::string& tool_on_deny = entry ? entry->on_deny : no_message;
  if (entry && entry->action == Action::deny) {
    if (trace) trace->steps.push_back({{"step", "action"}, {"rule", entry->pointer + "/action"}, {"action", "deny"}});
    return decided(deny("tool_denied", entry->pointer + "/action",
                        first_nonempty(entry->on_deny, "", "Tool " + quoted() + " is denied by policy.")));
  }
  if (entry && entry->args) {
    auto problem = validate(*entry->args, call.arguments, "args");
    if (trace) {
      json step = {{"step", "args"}, {"rule", entry->pointer + "/args"}, {"valid", !problem}};
      if (problem) step["problem"] = *problem;
      trace->steps.push_back(std::move(step));
    }
    if (problem) {
      return decided(deny("invalid_arguments", entry->pointer + "/args", "Invalid arguments: " + *problem + "."));
    }
  }
  for (bool requirements : {true, false}) {
    if (entry) {
      if (auto denial = check_conditions(entry->rules, call, tool_on_deny, requirements, trace)) return decided(*denial);
    }
    if (auto denial = check_conditions(plan.all_tools, call, no_message, requirements, trace)) return decided(*denial);
  }

  PendingCall& pending = result.pending;
  pending.now_ms = call.now_ms;
  pending.tool = call.tool;
  pending.allow_rule = entry ? entry->pointer : "/default";
  // Limit inputs (key, cost_from) are resolved before anything is counted, so a
  // malformed call never touches a counter.
  if (entry) {
    for (const Limit& limit : entry->rules.limits) {
      if (auto denial = add_limit(limit, call, pending)) return decided(*denial);
    }
  }
  for (const Limit& limit : plan.all_tools.limits) {
    if (auto denial = add_limit(limit, call, pending)) return decided(*denial);
  }
  if (entry && entry->action == Action::require_approval) {
    json subject = {{"arguments", call.arguments}, {"grant", call.grant.id}, {"tool", call.tool}};
    ApprovalNeed need;
    need.id = sha256_hex(canonical_json(subject));
    need.timeout_ms = entry->approval_timeout_ms;
    need.rule = entry->pointer + "/action";
    need.message = "Tool " + quoted() + " requires a human's approval. Approval id: " + need.id + ".";
    pending.approval = std::move(need);
  }
  if (!pending.approval && pending.counters.empty()) {
    Decision allow;
    allow.verdict = Verdict::allow;
    allow.code = "allowed";
    allow.rule = pending.allow_rule;
    allow.message = "Allowed.";
    return decided(std::move(allow));
  }
  return result;
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
  if (trace && pending.approval) {
    trace->steps.push_back({{"step", "approval"}, {"rule", pending.approval->rule}, {"approval_id", pending.approval->id},
                            {"approved", approved}});
  }
  if (pending.approval && !approved) {
    Decision decision;
    decision.verdict = Verdict::approval_required;
    decision.code = "approval_required";
    decision.rule = pending.approval->rule;
    decision.message = pending.approval->message;
    decision.approval_id = pending.approval->id;
    return decision;
  }
  if (states.size() < pending.counters.size()) {
    return deny("store_error", pending.allow_rule, "Counter values are missing; the call is denied (fail closed).");
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
    Decision decision = deny("rate_limited", std::string(limit.rule), std::string(limit.message));
    decision.retry_after_ms = retry_after_ms(request, state, pending.now_ms, limit.max);
    return decision;
  }
  Decision allow;
  allow.verdict = Verdict::allow;
  allow.code = "allowed";
  allow.rule = pending.allow_rule;
  allow.message = pending.approval ? "Allowed with a human's approval." : "Allowed.";
  return allow;
}

}  // namespace toolgate
