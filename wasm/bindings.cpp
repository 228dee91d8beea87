// The embind surface of the core: strings in, strings out.
//
// Every entry point takes and returns JSON text, which the JS façade
// (wasm/index.js) turns into objects. Keeping the boundary to strings makes it
// thin (one conversion each way) and keeps every C++ type out of JS. The build
// has C++ exceptions off and the core never throws, so no exception can cross
// into JS; malformed input always comes back as a value.
#include <emscripten/bind.h>

#include <memory>
#include <string>

#include "json_reader.h"
#include "toolgate.h"

namespace {

using json = nlohmann::json;

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

// A compiled policy held by JS. Immutable; JS must call delete() (the façade
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
  // counters) as a pending evaluation.
  std::string evaluate(const std::string& call_text, double default_now_ms) const {
    toolgate::CallReadOptions options;
    // Guard the cast (NaN or out-of-range doubles are undefined behaviour): the
    // ECMAScript Date range, as read_timestamp uses.
    if (!(default_now_ms >= -8.64e15 && default_now_ms <= 8.64e15)) {
      return dump(toolgate::to_json(toolgate::invalid_call("the host's current time is not a valid timestamp.")));
    }
    options.default_now_ms = static_cast<std::int64_t>(default_now_ms);
    toolgate::CallRead read = toolgate::read_call(call_text, options);
    if (!read.call) return dump(toolgate::to_json(toolgate::invalid_call(read.error)));
    if (!plan_) return dump(toolgate::to_json(toolgate::invalid_call("the policy did not compile.")));
    toolgate::Evaluation evaluation = toolgate::evaluate(*plan_, *read.call);
    return dump(evaluation.decision ? toolgate::to_json(*evaluation.decision) : toolgate::to_json(evaluation.pending));
  }

  // Whether `tool` vanishes from tools/list.
  bool hidden(const std::string& tool) const { return plan_ && plan_->find_hidden(tool) != nullptr; }

 private:
  std::shared_ptr<const toolgate::Plan> plan_;
  std::string diagnostics_;
};

// Step two: {"pending": ..., "approved": bool, "states": [...]} -> decision.
// Anything malformed denies (fail closed).
std::string finish(const std::string& input_text) {
  toolgate::JsonReadOptions options;
  options.record_positions = false;
  toolgate::JsonReadResult read = toolgate::read_json(input_text, options);
  auto fail = [] {
    toolgate::Decision decision = toolgate::invalid_call("the counter store's answer was malformed; denied (fail closed).");
    decision.code = "store_error";
    return dump(toolgate::to_json(decision));
  };
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
  return dump(toolgate::to_json(toolgate::finish(*pending_call, approved->second.get<bool>(), *counter_states)));
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

std::string version() { return toolgate::kVersion; }

}  // namespace

EMSCRIPTEN_BINDINGS(toolgate) {
  emscripten::class_<CompiledPolicy>("CompiledPolicy")
      .constructor<const std::string&>()
      .function("ok", &CompiledPolicy::ok)
      .function("diagnostics", &CompiledPolicy::diagnostics)
      .function("hash", &CompiledPolicy::hash)
      .function("evaluate", &CompiledPolicy::evaluate)
      .function("hidden", &CompiledPolicy::hidden);
  emscripten::function("finish", &finish);
  emscripten::function("readTimestamp", &read_timestamp);
  emscripten::function("version", &version);
}
