// The bindings of the core, in two layers:
//
//  - embind, strings in and strings out: compiling policies, diagnostics,
//    locating pointers, and the JSON-text path for calls. JSON text keeps every
//    C++ type out of JS.
//  - the per-call hot path (start, finish, release): plain exported functions
//    over two memory areas. JS writes the call in the binary form of
//    core/call_buffer.h into the input area and reads the decision (or the
//    counters its stores need) from the output area, laid out below. No
//    embind invoker, no JSON text, no UTF-8 round trip of the whole call: a
//    decision costs about what the core's evaluation costs.
//
// The build has C++ exceptions off and the core never throws, so no exception
// can cross into JS; malformed input always comes back as a value.
#include <emscripten/bind.h>
#include <emscripten/emscripten.h>

#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "call_buffer.h"
#include "json_reader.h"
#include "toolgate.h"

namespace {

using json = nlohmann::json;

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

// The denial for a store answer the core cannot use (fail closed).
toolgate::Decision store_error_decision(const std::string& why) {
  toolgate::Decision decision;
  decision.code = "store_error";
  decision.message = "Denied (fail closed): " + why + ".";
  return decision;
}
std::string store_error(const std::string& why) { return toolgate::decision_text(store_error_decision(why)); }

// The output area of the hot path. JS reads it by byte offset right after
// each call (wasm/index.js, readOutput): keep the two in step.
struct FastCounter {                // 56 bytes each, 8-aligned
  std::uint32_t key = 0;            //  0: pointer, UTF-8
  std::uint32_t key_length = 0;     //  4
  std::uint32_t grant = 0;          //  8: pointer
  std::uint32_t grant_length = 0;   // 12
  std::uint32_t scope = 0;          // 16: 0 grant, 1 global
  std::uint32_t algorithm = 0;      // 20: 0 fixed, 1 sliding
  double cost = 0;                  // 24
  double max = 0;                   // 32
  double window_ms = 0;             // 40
  double bucket_start_ms = 0;       // 48
};
static_assert(sizeof(FastCounter) == 56);

struct FastOutput {
  std::uint32_t kind = 0;             //  0: 0 decision, 1 parked (ticket + counters), 2 pending as JSON text (message)
  std::uint32_t verdict = 0;          //  4: 0 allow, 1 deny, 2 approval_required
  std::uint32_t code = 0;             //  8: pointer
  std::uint32_t code_length = 0;      // 12
  std::uint32_t rule = 0;             // 16: pointer
  std::uint32_t rule_length = 0;      // 20
  std::uint32_t message = 0;          // 24: pointer (kind 2: the JSON text)
  std::uint32_t message_length = 0;   // 28
  std::uint32_t approval = 0;         // 32: pointer; decision: approval_id, parked: the approval to look up
  std::uint32_t approval_length = 0;  // 36: 0 = none
  std::uint32_t has_retry = 0;        // 40
  std::uint32_t ticket = 0;           // 44
  double retry_after_ms = 0;          // 48
  double now_ms = 0;                  // 56: parked: the evaluation's time
  double approval_timeout_ms = 0;     // 64
  std::uint32_t counters = 0;         // 72: pointer to counter_count FastCounters
  std::uint32_t counter_count = 0;    // 76
};
static_assert(sizeof(FastOutput) == 80);

FastOutput g_output;
toolgate::Decision g_decision;        // what g_output's decision strings point into
std::string g_pending_text;           // kind 2
std::vector<FastCounter> g_counters;  // kind 1; strings point into the parked evaluation
std::vector<std::uint8_t> g_input;    // the encoded call, or the store's counts as f64 pairs

std::uint32_t address_of(const void* pointer) { return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(pointer)); }
std::uint32_t length(const std::string& text) { return static_cast<std::uint32_t>(text.size()); }

void write_decision(toolgate::Decision&& decision) {
  g_decision = std::move(decision);
  g_output.kind = 0;
  g_output.verdict = static_cast<std::uint32_t>(g_decision.verdict);
  g_output.code = address_of(g_decision.code.data());
  g_output.code_length = length(g_decision.code);
  g_output.rule = address_of(g_decision.rule.data());
  g_output.rule_length = length(g_decision.rule);
  g_output.message = address_of(g_decision.message.data());
  g_output.message_length = length(g_decision.message);
  g_output.approval = g_decision.approval_id ? address_of(g_decision.approval_id->data()) : 0;
  g_output.approval_length = g_decision.approval_id ? length(*g_decision.approval_id) : 0;
  g_output.has_retry = g_decision.retry_after_ms.has_value();
  g_output.retry_after_ms = g_decision.retry_after_ms ? static_cast<double>(*g_decision.retry_after_ms) : 0;
}

// A compiled policy held by JS: an immutable plan, plus the evaluations parked
// between start and finish. JS must call delete() (the façade
// does, in dispose() and through a FinalizationRegistry).
class CompiledPolicy {
 public:
  explicit CompiledPolicy(const std::string& text) {
    toolgate::CompileResult result = toolgate::compile_policy(text);
    plan_ = std::move(result.plan);
    diagnostics_ = dump(toolgate::to_json(result.diagnostics));
  }

  bool ok() const { return plan_ != nullptr; }
  std::string diagnostics() const { return diagnostics_; }
  std::string hash() const { return plan_ ? plan_->policy_hash : ""; }
  // Every tool name and glob the policy mentions, as JSON text
  // {"exact": [...], "globs": [...]} (empty lists when it did not compile).
  std::string names() const {
    if (!plan_) return R"({"exact":[],"globs":[]})";
    return dump(json{{"exact", plan_->names.exact}, {"globs", plan_->names.globs}});
  }

  // Step one for a call in the input area (call_buffer.h), the hot path:
  // only the arguments this policy can read are decoded.
  void start_buffer(std::uint32_t length, double default_now_ms, bool park_pending) {
    std::span<const std::uint8_t> bytes(g_input.data(), length);
    auto options = read_options(default_now_ms);
    if (!options) return write_decision(invalid_now());
    emit(evaluate_read(plan_ ? toolgate::read_call_buffer(bytes, *options, *plan_)
                             : toolgate::read_call_buffer(bytes, *options)),
         park_pending);
  }

  // The same for a call as JSON text (what the binary form cannot carry).
  void start_text(const std::string& call_text, double default_now_ms, bool park_pending) {
    auto options = read_options(default_now_ms);
    if (!options) return write_decision(invalid_now());
    emit(evaluate_read(toolgate::read_call(call_text, *options)), park_pending);
  }

  // Step one as JSON text (the differential tests compare it byte for byte
  // with the native core's): a decision, or the whole pending evaluation.
  std::string evaluate(const std::string& call_text, double default_now_ms) {
    start_text(call_text, default_now_ms, false);
    return g_output.kind == 0 ? toolgate::decision_text(g_decision) : g_pending_text;
  }

  // A decision with its steps (toolgate::Trace), as JSON text
  // {"decision": {...} | null, "pending": {...}?, "trace": [...]}. Step one,
  // then step two when the host passes what its stores answered: `approved`,
  // and `states_text` ([{"current", "previous"}, ...] as JSON), or "" when it
  // asked them nothing (the decision is then null and the pending evaluation
  // is given). Never on the hot path: authorize() does not trace.
  std::string explain(const std::string& call_text, double default_now_ms, bool approved, const std::string& states_text) {
    toolgate::Trace trace;
    auto answer = [&trace](const toolgate::Decision* decision, const toolgate::PendingCall* pending) {
      json out = {{"decision", decision ? toolgate::to_json(*decision) : json(nullptr)}, {"trace", trace.to_json()}};
      if (pending) out["pending"] = toolgate::to_json(*pending);
      return dump(out);
    };
    auto options = read_options(default_now_ms);
    if (!options) {
      toolgate::Decision decision = invalid_now();
      return answer(&decision, nullptr);
    }
    toolgate::CallRead read = toolgate::read_call(call_text, *options);
    toolgate::Evaluation evaluation;
    if (!read.call) {
      evaluation.decision = toolgate::invalid_call(read.error);
    } else if (!plan_) {
      evaluation.decision = toolgate::invalid_call("the policy did not compile.");
    } else {
      evaluation = toolgate::evaluate(*plan_, *read.call, &trace);
    }
    if (evaluation.decision) return answer(&*evaluation.decision, nullptr);
    if (states_text.empty()) return answer(nullptr, &evaluation.pending);
    toolgate::JsonReadOptions json_options;
    json_options.record_positions = false;
    toolgate::JsonReadResult states_read = toolgate::read_json(states_text, json_options);
    auto states = states_read.ok() ? toolgate::read_states(states_read.value) : std::nullopt;
    toolgate::Decision decision = !states ? store_error_decision("the counter store's answer was malformed")
                                  : approved && states->size() != evaluation.pending.counters.size()
                                      ? store_error_decision("the counter store answered for the wrong number of counters")
                                      : toolgate::finish(evaluation.pending, approved, *states, &trace);
    return answer(&decision, nullptr);
  }

  // Writes step one's result to the output area: a decision (kind 0), or the
  // pending evaluation. `park_pending`: authorize() parks it here under a
  // ticket and gets only what its stores need (kind 1); JS must release()
  // every ticket, and at most kMaxParked wait at once (the oldest is dropped,
  // and its finish then denies with store_error: fail closed). Otherwise
  // evaluate() gets it whole, as JSON text (kind 2).
  void emit(toolgate::Evaluation&& evaluation, bool park_pending) {
    if (evaluation.decision) return write_decision(std::move(*evaluation.decision));
    if (!park_pending) {
      g_pending_text = dump(toolgate::to_json(evaluation.pending));
      g_output.kind = 2;
      g_output.message = address_of(g_pending_text.data());
      g_output.message_length = ::length(g_pending_text);
      return;
    }
    auto parked = park(std::move(evaluation.pending));
    const toolgate::PendingCall& pending = parked->second;
    g_output.kind = 1;
    g_output.ticket = parked->first;
    g_output.now_ms = static_cast<double>(pending.now_ms);
    g_output.approval = pending.approval ? address_of(pending.approval->id.data()) : 0;
    g_output.approval_length = pending.approval ? ::length(pending.approval->id) : 0;
    g_output.approval_timeout_ms = pending.approval ? static_cast<double>(pending.approval->timeout_ms) : 0;
    g_counters.resize(pending.counters.size());
    for (std::size_t i = 0; i < pending.counters.size(); ++i) {
      const toolgate::CounterRequest& request = pending.counters[i];
      FastCounter& out = g_counters[i];
      out.key = address_of(request.key.data());
      out.key_length = ::length(request.key);
      out.grant = address_of(request.grant.data());
      out.grant_length = ::length(request.grant);
      out.scope = request.scope == toolgate::Scope::grant ? 0 : 1;
      out.algorithm = request.algorithm == toolgate::Algorithm::fixed ? 0 : 1;
      out.cost = request.cost;
      out.max = request.max;
      out.window_ms = static_cast<double>(request.window_ms);
      out.bucket_start_ms = static_cast<double>(request.bucket_start_ms);
    }
    g_output.counters = address_of(g_counters.data());
    g_output.counter_count = static_cast<std::uint32_t>(g_counters.size());
  }

  // Step two for a parked evaluation: the store's counts are `count` pairs of
  // f64 (current, previous) in the input area; the decision goes to the
  // output area. Counts JS could not read as numbers arrive as -1.
  void finish_buffer(std::uint32_t ticket, bool approved, std::uint32_t count) {
    auto parked = parked_.find(ticket);
    if (parked == parked_.end()) return write_decision(store_error_decision("the evaluation expired before the store answered"));
    if (static_cast<std::size_t>(count) * 16 > g_input.size())
      return write_decision(store_error_decision("the counter store's answer was malformed"));
    std::vector<toolgate::CounterState> counts(count);
    for (std::uint32_t i = 0; i < count; ++i) {
      double current = 0, previous = 0;
      std::memcpy(&current, g_input.data() + i * 16, 8);
      std::memcpy(&previous, g_input.data() + i * 16 + 8, 8);
      if (!(current >= 0 && previous >= 0 && current <= 1e300 && previous <= 1e300))
        return write_decision(store_error_decision("the counter store returned an impossible count"));
      counts[i] = toolgate::CounterState{current, previous};
    }
    if (approved && counts.size() != parked->second.counters.size())
      return write_decision(store_error_decision("the counter store answered for the wrong number of counters"));
    write_decision(toolgate::finish(parked->second, approved, counts));
  }

  void release(std::uint32_t ticket) { parked_.erase(ticket); }

  // Where this object lives, for the exported hot-path functions.
  std::uint32_t address() const { return address_of(this); }

  // Whether `tool` vanishes from tools/list.
  bool hidden(const std::string& tool) const { return plan_ && plan_->find_hidden(tool) != nullptr; }

  // Whether calls to `tool` run in monitor mode ("mode": "monitor" on the
  // document or on the entry that governs it).
  bool monitored(const std::string& tool) const { return plan_ && plan_->monitored(tool); }

  // Where monitor mode is set, as JSON text {"policy": bool, "tools": [keys]},
  // so that a host skips monitored() when nothing is.
  std::string modes() const {
    json tools = json::array();
    if (plan_) {
      for (const toolgate::ToolEntry& entry : plan_->tools) {
        if (entry.monitor) tools.push_back(entry.key);
      }
    }
    return dump(json{{"policy", plan_ && plan_->monitor}, {"tools", std::move(tools)}});
  }

 private:
  static constexpr std::size_t kMaxParked = 65536;

  std::map<std::uint32_t, toolgate::PendingCall>::iterator park(toolgate::PendingCall&& pending) {
    if (parked_.size() >= kMaxParked) parked_.erase(parked_.begin());
    return parked_.emplace(next_ticket_++, std::move(pending)).first;
  }

  // Read options for a call, or nullopt when the host's `now` is not a valid
  // time: the cast of NaN or an out-of-range double would be undefined
  // behaviour (the ECMAScript Date range, as read_timestamp uses).
  static std::optional<toolgate::CallReadOptions> read_options(double default_now_ms) {
    if (!(default_now_ms >= -8.64e15 && default_now_ms <= 8.64e15)) return std::nullopt;
    toolgate::CallReadOptions options;
    options.default_now_ms = static_cast<std::int64_t>(default_now_ms);
    return options;
  }

  static toolgate::Decision invalid_now() { return toolgate::invalid_call("the host's current time is not a valid timestamp."); }

  toolgate::Evaluation evaluate_read(const toolgate::CallRead& read) const {
    toolgate::Evaluation result;
    if (!read.call) {
      result.decision = toolgate::invalid_call(read.error);
    } else if (!plan_) {
      result.decision = toolgate::invalid_call("the policy did not compile.");
    } else {
      result = toolgate::evaluate(*plan_, *read.call);
    }
    return result;
  }

  std::shared_ptr<const toolgate::Plan> plan_;
  std::string diagnostics_;
  std::map<std::uint32_t, toolgate::PendingCall> parked_;  // ordered: begin() is the oldest
  std::uint32_t next_ticket_ = 1;
};

// Step two: {"pending": ..., "approved": bool, "states": [...]} -> decision.
// Anything malformed denies (fail closed).
std::string finish(const std::string& input_text) {
  toolgate::JsonReadOptions options;
  options.record_positions = false;
  toolgate::JsonReadResult read = toolgate::read_json(input_text, options);
  auto fail = [] { return store_error("the counter store's answer was malformed"); };
  if (!read.ok() || !read.value.is_object()) return fail();
  const auto& object = read.value.get_ref<const json::object_t&>();
  auto pending = object.find("pending");
  auto approved = object.find("approved");
  auto states = object.find("states");
  if (pending == object.end() || approved == object.end() || !approved->second.is_boolean() || states == object.end())
    return fail();
  auto pending_call = toolgate::read_pending(pending->second);
  auto counter_states = toolgate::read_states(states->second);
  if (!pending_call || !counter_states) return fail();
  return toolgate::decision_text(toolgate::finish(*pending_call, approved->second.get<bool>(), *counter_states));
}

// Epoch milliseconds of a JSON timestamp (number or RFC 3339 string), or NaN.
double read_timestamp(const std::string& value_text) {
  toolgate::JsonReadOptions options;
  options.record_positions = false;
  toolgate::JsonReadResult read = toolgate::read_json(value_text, options);
  if (!read.ok()) return __builtin_nan("");
  auto ms = toolgate::read_timestamp(read.value);
  return ms ? static_cast<double>(*ms) : __builtin_nan("");
}

// Where a JSON Pointer stands in a policy's text: "line,column" (1-based,
// column in code points) of the value, or of the nearest enclosing value that
// exists; "0,0" when the text is not JSON. For highlighting a decision's rule.
std::string locate(const std::string& text, const std::string& pointer) {
  toolgate::JsonReadResult read = toolgate::read_json(text);
  if (!read.complete) return "0,0";
  auto [line, column] = read.source_map.locate(pointer);
  return std::to_string(line) + "," + std::to_string(column);
}

std::string version() { return toolgate::kVersion; }

}  // namespace

// The hot path's exports (see the top of this file). `policy` is a
// CompiledPolicy's address() from the same instance.
extern "C" {

// The input area, grown to hold at least `size` bytes. Growing may grow the
// memory: JS re-reads its heap views after calling this.
EMSCRIPTEN_KEEPALIVE std::uint8_t* toolgate_input(std::uint32_t size) {
  if (g_input.size() < size) g_input.resize(std::max<std::size_t>(size, g_input.size() * 2));
  return g_input.data();
}

EMSCRIPTEN_KEEPALIVE FastOutput* toolgate_output() { return &g_output; }

EMSCRIPTEN_KEEPALIVE void toolgate_start(CompiledPolicy* policy, std::uint32_t length, double default_now_ms, std::uint32_t park) {
  if (length > g_input.size()) return write_decision(toolgate::invalid_call("the encoded call is larger than its buffer."));
  policy->start_buffer(length, default_now_ms, park != 0);
}

EMSCRIPTEN_KEEPALIVE void toolgate_finish(CompiledPolicy* policy, std::uint32_t ticket, std::uint32_t approved, std::uint32_t count) {
  policy->finish_buffer(ticket, approved != 0, count);
}

EMSCRIPTEN_KEEPALIVE void toolgate_release(CompiledPolicy* policy, std::uint32_t ticket) { policy->release(ticket); }

}  // extern "C"

EMSCRIPTEN_BINDINGS(toolgate) {
  emscripten::class_<CompiledPolicy>("CompiledPolicy")
      .constructor<const std::string&>()
      .function("ok", &CompiledPolicy::ok)
      .function("diagnostics", &CompiledPolicy::diagnostics)
      .function("hash", &CompiledPolicy::hash)
      .function("names", &CompiledPolicy::names)
      .function("startText", &CompiledPolicy::start_text)
      .function("evaluate", &CompiledPolicy::evaluate)
      .function("explain", &CompiledPolicy::explain)
      .function("address", &CompiledPolicy::address)
      .function("release", &CompiledPolicy::release)
      .function("hidden", &CompiledPolicy::hidden)
      .function("monitored", &CompiledPolicy::monitored)
      .function("modes", &CompiledPolicy::modes);
  emscripten::function("finish", &finish);
  emscripten::function("readTimestamp", &read_timestamp);
  emscripten::function("locate", &locate);
  emscripten::function("version", &version);
}
