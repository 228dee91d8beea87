// The embind surface of the core: strings in, strings out.
//
// Every entry point takes and returns JSON text, which the JS façade
// (wasm/index.js) turns into objects. Keeping the boundary to strings makes it
// thin (one conversion each way) and keeps every C++ type out of JS. The build
// has C++ exceptions off and the core never throws, so no exception can cross
// into JS; malformed input always comes back as a value.
#include <emscripten/bind.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "json_reader.h"
#include "toolgate.h"

namespace {

using json = nlohmann::json;

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

// The denial for a store answer the core cannot use (fail closed).
std::string store_error(const std::string& why) {
  toolgate::Decision decision;
  decision.code = "store_error";
  decision.message = "Denied (fail closed): " + why + ".";
  return toolgate::decision_text(decision);
}

// A compiled policy held by JS: an immutable plan, plus the evaluations parked
// between start() and finish_parked(). JS must call delete() (the façade
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

  // Step one: a final decision, or what the host must look up (approval,
  // counters) as a pending evaluation, in full (stateless: see finish()).
  std::string evaluate(const std::string& call_text, double default_now_ms) const {
    toolgate::Evaluation evaluation = evaluate_call(call_text, default_now_ms);
    if (evaluation.decision) return toolgate::decision_text(*evaluation.decision);
    return dump(toolgate::to_json(evaluation.pending));
  }

  // The fast path the JS façade's authorize() takes: the pending evaluation is
  // parked here under a ticket, and JS gets only what its stores need
  // ({"ticket", "now", "approval": {"id", "timeout_ms"}, "counters"}), so
  // nothing round-trips through JSON but the counts. JS must release() every
  // ticket; at most kMaxParked wait at once (the oldest is dropped, and its
  // finish then denies with store_error: fail closed).
  std::string start(const std::string& call_text, double default_now_ms) {
    toolgate::Evaluation evaluation = evaluate_call(call_text, default_now_ms);
    if (evaluation.decision) return toolgate::decision_text(*evaluation.decision);
    const toolgate::PendingCall& pending = evaluation.pending;
    std::uint32_t ticket = next_ticket_++;
    std::string out = "{\"ticket\":" + std::to_string(ticket) + ",\"now\":" + std::to_string(pending.now_ms);
    if (pending.approval) {
      out += ",\"approval\":{\"id\":\"" + pending.approval->id +
             "\",\"timeout_ms\":" + std::to_string(pending.approval->timeout_ms) + "}";
    }
    out += ",\"counters\":" + toolgate::counters_text(pending.counters) + "}";
    if (parked_.size() >= kMaxParked) parked_.erase(parked_.begin());
    parked_.emplace(ticket, std::move(evaluation.pending));
    return out;
  }

  // `states` is "current,previous,current,previous,..." for the counters, in order.
  std::string finish_parked(std::uint32_t ticket, bool approved, const std::string& states) const {
    auto parked = parked_.find(ticket);
    if (parked == parked_.end()) return store_error("the evaluation expired before the store answered");
    std::vector<toolgate::CounterState> counts;
    const char* at = states.c_str();
    while (*at != '\0') {
      char* end = nullptr;
      double current = std::strtod(at, &end);
      if (end == at || *end != ',') return store_error("the counter store's answer was malformed");
      at = end + 1;
      double previous = std::strtod(at, &end);
      if (end == at || (*end != ',' && *end != '\0')) return store_error("the counter store's answer was malformed");
      if (!(current >= 0 && previous >= 0 && current <= 1e300 && previous <= 1e300))
        return store_error("the counter store returned an impossible count");
      counts.push_back(toolgate::CounterState{current, previous});
      at = *end == ',' ? end + 1 : end;
    }
    if (approved && counts.size() != parked->second.counters.size())
      return store_error("the counter store answered for the wrong number of counters");
    return toolgate::decision_text(toolgate::finish(parked->second, approved, counts));
  }

  void release(std::uint32_t ticket) { parked_.erase(ticket); }

  // Whether `tool` vanishes from tools/list.
  bool hidden(const std::string& tool) const { return plan_ && plan_->find_hidden(tool) != nullptr; }

 private:
  static constexpr std::size_t kMaxParked = 65536;

  toolgate::Evaluation evaluate_call(const std::string& call_text, double default_now_ms) const {
    toolgate::Evaluation result;
    // Guard the cast (NaN or out-of-range doubles are undefined behaviour): the
    // ECMAScript Date range, as read_timestamp uses.
    if (!(default_now_ms >= -8.64e15 && default_now_ms <= 8.64e15)) {
      result.decision = toolgate::invalid_call("the host's current time is not a valid timestamp.");
      return result;
    }
    toolgate::CallReadOptions options;
    options.default_now_ms = static_cast<std::int64_t>(default_now_ms);
    toolgate::CallRead read = toolgate::read_call(call_text, options);
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

EMSCRIPTEN_BINDINGS(toolgate) {
  emscripten::class_<CompiledPolicy>("CompiledPolicy")
      .constructor<const std::string&>()
      .function("ok", &CompiledPolicy::ok)
      .function("diagnostics", &CompiledPolicy::diagnostics)
      .function("hash", &CompiledPolicy::hash)
      .function("evaluate", &CompiledPolicy::evaluate)
      .function("start", &CompiledPolicy::start)
      .function("finishParked", &CompiledPolicy::finish_parked)
      .function("release", &CompiledPolicy::release)
      .function("hidden", &CompiledPolicy::hidden);
  emscripten::function("finish", &finish);
  emscripten::function("readTimestamp", &read_timestamp);
  emscripten::function("locate", &locate);
  emscripten::function("version", &version);
}
