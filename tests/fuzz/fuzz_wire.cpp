// libFuzzer target: the wire readers every host feeds untrusted text through:
// read_call (a tools/call's tool, arguments, grant and time, as the proxy and
// the CLI hand it to the core), read_timestamp, and read_pending/read_states
// (the WebAssembly finish() entry point, which takes a pending call back from
// JS: {"pending": ..., "approved": bool, "states": [...]}).
//
// And the binary call form (call_buffer.h), against the text reader.
//
// Invariants: a call that reads has a non-empty tool without control
// characters, object arguments and a non-empty grant id, and reads back the
// same after being written out again; a malformed one says why; finish() on
// whatever read_pending accepts gives a well-formed decision.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "call_buffer.h"
#include "json_reader.h"

namespace {

using namespace toolgate;
using json = nlohmann::json;

void check_call(std::string_view text, const CallReadOptions& options) {
  CallRead read = read_call(text, options);
  if (!read.call) {
    FUZZ_CHECK(!read.error.empty(), "a malformed call without a reason");
    return;
  }
  FUZZ_CHECK(read.error.empty(), "a call that reads, with an error");
  const Call& call = *read.call;
  FUZZ_CHECK(!call.tool.empty(), "empty tool");
  for (char c : call.tool) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F, "control character in tool");
  FUZZ_CHECK(call.arguments.is_object(), "arguments not an object");
  FUZZ_CHECK(!call.grant.id.empty(), "empty grant id");
  FUZZ_CHECK(call.grant.attributes.is_object() && !call.grant.attributes.contains("id"), "grant attributes");
  FUZZ_CHECK(call.now_ms >= -8640000000000000LL && call.now_ms <= 8640000000000000LL, "now %lld out of range",
             (long long)call.now_ms);

  // Written out and read again: the same call.
  json grant = call.grant.attributes;
  grant["id"] = call.grant.id;
  json written = {{"tool", call.tool}, {"arguments", call.arguments}, {"grant", grant}, {"now", call.now_ms}};
  CallRead again = read_call(written.dump(), options);
  FUZZ_CHECK(again.call.has_value(), "a call written out does not read: %s (%s)", written.dump().c_str(),
             again.error.c_str());
  FUZZ_CHECK(again.call->tool == call.tool && again.call->arguments == call.arguments &&
                 again.call->grant.id == call.grant.id && again.call->grant.attributes == call.grant.attributes &&
                 again.call->now_ms == call.now_ms,
             "a call reads differently once written out: %s", written.dump().c_str());
}

void check_finish_input(const json& value, fuzz::Bytes& bytes) {
  if (!value.is_object()) return;
  const json* pending_value = value.contains("pending") ? &value["pending"] : &value;
  std::optional<PendingCall> pending = read_pending(*pending_value);
  std::optional<std::vector<CounterState>> states;
  if (value.contains("states")) states = read_states(value["states"]);
  if (!pending) return;
  json encoded = to_json(*pending);
  std::optional<PendingCall> back = read_pending(encoded);
  FUZZ_CHECK(back && to_json(*back) == encoded, "read_pending(to_json(p)) differs: %s", encoded.dump().c_str());
  std::vector<CounterState> counts = states ? *states : std::vector<CounterState>{};
  if (!states) {
    for (const CounterRequest& request : pending->counters) {
      counts.push_back({fuzz::count_from(bytes, request.max), fuzz::count_from(bytes, request.max)});
    }
  }
  for (bool approved : {true, false}) fuzz::check_decision(finish(*pending, approved, counts));
}

// The binary call form (the JS API's hot path) must read as the same JSON
// text does: same call, or the same reason for refusing it. And raw bytes fed
// to its reader must never crash it; what reads must survive a text round trip.
void check_call_buffer(const json& value, std::string_view raw, const CallReadOptions& options) {
  if (auto encoded = encode_call_buffer(value)) {
    CallRead from_text = read_call(value.dump(), options);
    CallRead from_buffer = read_call_buffer(*encoded, options);
    FUZZ_CHECK(from_text.call.has_value() == from_buffer.call.has_value() && from_text.error == from_buffer.error,
               "binary and text calls read differently: %s (%s | %s)", value.dump().c_str(), from_text.error.c_str(),
               from_buffer.error.c_str());
    if (from_text.call) {
      const Call& a = *from_text.call;
      const Call& b = *from_buffer.call;
      FUZZ_CHECK(a.tool == b.tool && a.arguments.dump() == b.arguments.dump() && a.grant.id == b.grant.id &&
                     a.grant.attributes.dump() == b.grant.attributes.dump() && a.now_ms == b.now_ms,
                 "binary and text calls differ: %s", value.dump().c_str());
    }
  }
  // Decoding only the arguments a policy reads decides as the whole call does.
  static const std::shared_ptr<const Plan> plan = compile_policy(R"({"version": "1", "default": "allow",
      "all_tools": {"deny_if": [{"conditions": [{"path": "args.force", "op": "eq", "value": true}]}]},
      "tools": {"refund": {"deny_if": [{"conditions": [{"path": "args.amount", "op": "gt", "value": 500}]}],
                           "limits": [{"window": "hour", "max": 10, "key": "args.repo", "cost_from": "args.n"}]},
                "approve": {"action": "require_approval"}, "denied": {"action": "deny"}}})").plan;
  FUZZ_CHECK(plan != nullptr, "the fuzz policy does not compile");
  if (auto encoded = encode_call_buffer(value)) {
    CallRead whole = read_call_buffer(*encoded, options);
    CallRead filtered = read_call_buffer(*encoded, options, *plan);
    FUZZ_CHECK(whole.call.has_value() == filtered.call.has_value() && whole.error == filtered.error,
               "filtered decoding reads differently: %s", value.dump().c_str());
    if (whole.call) {
      Evaluation a = evaluate(*plan, *whole.call);
      Evaluation b = evaluate(*plan, *filtered.call);
      FUZZ_CHECK(a.decision.has_value() == b.decision.has_value(), "filtered decoding decides differently");
      FUZZ_CHECK(a.decision ? to_json(*a.decision) == to_json(*b.decision) : to_json(a.pending) == to_json(b.pending),
                 "filtered decoding decides differently: %s", value.dump().c_str());
    }
  }
  // Raw bytes through the view reader (no DOM, the JS API's hot path): it
  // refuses exactly what the DOM reader refuses, for the same reason, and a
  // call it reads decides as the DOM reader's does.
  {
    const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
    static CallTape tape;  // reused across inputs, as the binding reuses it
    CallView view;
    std::string error;
    CallRead dom = read_call_buffer(bytes, options, *plan);
    const bool read_ok = read_call_view(bytes, options, *plan, tape, view, error);
    FUZZ_CHECK(read_ok == dom.call.has_value() && (read_ok || error == dom.error),
               "view and DOM readers differ on raw bytes: %s | %s", error.c_str(), dom.error.c_str());
    if (read_ok) {
      Evaluation a = evaluate(*plan, *dom.call);
      Evaluation b = evaluate(*plan, view);
      FUZZ_CHECK(a.decision.has_value() == b.decision.has_value() &&
                     (a.decision ? to_json(*a.decision) == to_json(*b.decision) : to_json(a.pending) == to_json(b.pending)),
                 "view and DOM readers decide differently on raw bytes");
    }
  }
  CallRead raw_read = read_call_buffer(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()), options);
  if (!raw_read.call) {
    FUZZ_CHECK(!raw_read.error.empty(), "a malformed buffer without a reason");
    return;
  }
  const Call& call = *raw_read.call;
  json grant = call.grant.attributes;
  grant["id"] = call.grant.id;
  json written = {{"tool", call.tool}, {"arguments", call.arguments}, {"grant", grant}, {"now", call.now_ms}};
  CallRead again = read_call(written.dump(), options);
  FUZZ_CHECK(again.call && again.call->arguments == call.arguments && again.call->tool == call.tool,
             "a call read from bytes does not read back from text: %s", written.dump().c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  fuzz::Bytes bytes(data, size);

  CallReadOptions options;
  options.default_now_ms = 1767225600000;
  check_call(text, options);
  options.max_depth = 3;
  options.default_now_ms = -8640000000000000LL;
  check_call(text, options);

  JsonReadOptions read_options;
  read_options.record_positions = false;
  JsonReadResult read = read_json(text, read_options);
  if (!read.ok()) {
    check_call_buffer(json(), text, options);
    return 0;
  }
  check_call_buffer(read.value, text, options);
  if (auto ms = read_timestamp(read.value)) {
    FUZZ_CHECK(*ms >= -8640000000000000LL - 86400000 && *ms <= 8640000000000000LL + 86400000, "timestamp %lld",
               (long long)*ms);
  }
  if (read.value.is_object() && read.value.contains("now")) read_timestamp(read.value["now"]);
  check_finish_input(read.value, bytes);
  return 0;
}
