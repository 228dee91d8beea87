// The JSON wire format shared by every host (CLI, JS API, proxy): calls in,
// decisions, pending evaluations and diagnostics out. Pure functions of data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "canonical_json.h"
#include "diagnostics.h"
#include "evaluate.h"

namespace toolgate {

struct CallReadOptions {
  std::size_t max_depth = 256;     // deeper arguments are an invalid_call
  std::int64_t default_now_ms = 0; // used when the call has no "now"
};

struct CallRead {
  std::optional<Call> call;             // set when well-formed
  std::string error;                    // why not, for invalid_call
  std::optional<nlohmann::json> expect; // the optional "expect" field (policy tests), never evaluated
};

// {"tool": "run", "arguments": {...}, "grant": "alice" | {"id": "alice", ...},
//  "now": 1767225600000 | "2026-01-01T00:00:00Z", "expect": ...}
// Unknown fields, duplicate keys and wrong types make the call malformed.
CallRead read_call(std::string_view text, const CallReadOptions& options = {});
CallRead read_call_value(nlohmann::json&& value, const CallReadOptions& options = {});
// The same checks over a viewed value (read_call_value and read_call_view
// share them): false with `error` set when malformed, else `call` views the
// call's parts in `value` (a grant object's "id" stays in call.grant) and
// `expect`, when given, the "expect" field (missing when absent).
bool read_call_view(Value value, const CallReadOptions& options, CallView& call, std::string& error,
                    Value* expect = nullptr);

// Epoch milliseconds from a JSON number (ms) or an RFC 3339 date-time string.
std::optional<std::int64_t> read_timestamp(const nlohmann::json& value);
std::optional<std::int64_t> read_timestamp(Value value);

nlohmann::json to_json(const Decision& decision);
nlohmann::json to_json(const PendingCall& pending);
nlohmann::json to_json(const std::vector<Diagnostic>& diagnostics);
// A plan's limits (Plan::limits), for hosts: one object per limit, in that order:
//   {"rule": "/tools/run/limits/0", "tool": "run" | null (all_tools),
//    "counter": "run_rate" (the limit's pointer when unnamed), "named": bool,
//    "scope": "grant" | "global", "window_ms": n, "algorithm": "fixed" | "sliding",
//    "max": n, "cost": n | null (null with cost_from), "cost_from": "args.amount" | null,
//    "key": "args.repo" | null (counted per value of that path), "message": text of a denial}
nlohmann::json to_json(const std::vector<LimitInfo>& limits);

// The same encodings written straight to text, for hot paths (the WebAssembly
// boundary): equal, once parsed, to to_json(...).dump() of the same value.
std::string decision_text(const Decision& decision);
std::string counters_text(const std::vector<CounterRequest>& counters);

// Inverse of to_json(PendingCall); nullopt when malformed or holding what
// evaluate() never writes (times outside the Date range or not whole
// milliseconds, a bucket that does not hold `now`, negative costs or maxes).
std::optional<PendingCall> read_pending(const nlohmann::json& value);
// [{"current": n, "previous": n}, ...]; nullopt when malformed.
std::optional<std::vector<CounterState>> read_states(const nlohmann::json& value);

}  // namespace toolgate
