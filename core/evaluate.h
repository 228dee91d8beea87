// Evaluate stage: Plan + Call -> Decision.
//
// Counters and approvals live outside the core (in a store the host owns), so
// evaluation has two steps around the host's store round trip:
//
//   Evaluation e = evaluate(plan, call);          // pure, no state
//   if (e.decision) -> done (denied before limits, or allowed with no limits)
//   else host: approved = store.approval_valid(e.pending.approval)  (if any)
//              states   = store.reserve(e.pending.counters)         (atomic)
//   Decision d = finish(e.pending, approved, states);
//
// The store admits a call with the same rule as `admits` below, atomically and
// all-or-nothing across the counters, so the store and finish() agree.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "plan.h"

namespace toolgate {

struct Call {
  std::string tool;
  nlohmann::json arguments = nlohmann::json::object();
  Grant grant;
  std::int64_t now_ms = 0;  // Unix epoch milliseconds, supplied by the host
};

// A call as evaluation reads it: views of its parts, whatever holds them (a
// Call's DOM, or a binary call indexed by read_call_view, call_buffer.h).
struct CallView {
  std::string_view tool;
  Value arguments;                          // an object
  std::string_view grant_id = "anonymous";
  Value grant;                              // the grant's attributes: an object (a member "id" is never read)
  std::int64_t now_ms = 0;
  // Set by read_call_view with a plan: that plan's match for `tool`, looked
  // up once for the read. evaluate_into uses it only for the same plan and
  // the same view of the name (same address and length), else looks it up.
  const Plan* matched_by = nullptr;
  std::string_view matched_tool;
  ToolMatch match;
};
CallView view_of(const Call& call);

enum class Verdict { allow, deny, approval_required };
std::string_view to_string(Verdict verdict);

struct Decision {
  Verdict verdict = Verdict::deny;
  std::string code;     // allowed, invalid_call, hidden, default_deny, tool_denied, invalid_arguments,
                        // requirement_failed, condition_denied, approval_required, rate_limited
  std::string rule;     // JSON Pointer of the deciding part of the policy
  std::string message;  // for the agent
  std::optional<std::int64_t> retry_after_ms;  // rate_limited
  std::optional<std::string> approval_id;      // approval_required
};

// One count a call needs, identified by `key`. Limits that share counter name,
// window, algorithm and scope (and key value) share one key.
// The longest grant id or `key` value (as canonical JSON, quotes included)
// that a counter key holds as written; longer ones appear as their SHA-256
// ({"sha256":"<hex>"}), so a client cannot make a store keep megabytes per key.
inline constexpr std::size_t kMaxKeyPartBytes = 64;

struct CounterRequest {
  std::string key;            // storage key, unique per count
  Scope scope = Scope::grant;
  std::string grant;          // the grant id for scope grant, "" for global
  double cost = 1;            // amount this call adds
  double max = 0;             // the tightest max of the limits sharing this key
  std::int64_t window_ms = 0;
  Algorithm algorithm = Algorithm::fixed;
  std::int64_t bucket_start_ms = 0;  // start of the current fixed bucket (epoch-aligned)
};

// Counts a store holds for one counter: in the current fixed bucket and the
// one before it (used by sliding windows).
struct CounterState {
  double current = 0;
  double previous = 0;
};

struct LimitCheck {
  std::size_t counter = 0;   // index into PendingCall::counters
  double max = 0;
  std::string_view rule;     // into the Plan (from evaluate) or PendingCall::owned_text
  std::string_view message;  // used when this limit denies
};

struct ApprovalNeed {
  std::string id;           // sha256 of the call's RFC 8785 form
  std::int64_t timeout_ms = 0;
  std::string rule;
  std::string message;
};

struct PendingCall {
  std::int64_t now_ms = 0;
  std::string allow_rule;   // rule reported when the call is allowed
  std::string tool;
  std::optional<ApprovalNeed> approval;
  std::vector<CounterRequest> counters;
  std::vector<LimitCheck> limits;
  // Text the limits' views point at when the call was read back from JSON
  // (read_pending); shared, so copies of a PendingCall stay valid. A
  // PendingCall from evaluate() points into its Plan instead: keep the plan
  // alive until finish().
  std::vector<std::shared_ptr<const std::string>> owned_text;
};

struct Evaluation {
  std::optional<Decision> decision;  // set: final; unset: see pending
  PendingCall pending;
};

// The steps of a decision, for "why was this decided?" (`toolgate eval
// --trace`, Policy.explain in JS). Each step is a JSON object with "step"
// (hide, entry, action, args, require, deny_if, limit, approval), the "rule"
// (JSON Pointer into the policy) it comes from, and what was found:
//   entry:    {"entry": <tools key> | null, "default": "allow" | "deny"}
//   require / deny_if: {"holds", "conditions": [{"path", "op", "value", "actual"
//             (absent when the path is missing), "holds", "error"?}]}
//   limit:    {"counter" (storage key), "count" (the estimate before this call),
//             "cost", "max", "admitted"}
//   approval: {"approval_id", "approved"}
// Tracing is only ever asked for: the pointer is null on the hot path, and
// nothing below builds a step without one.
struct Trace {
  std::vector<nlohmann::json> steps;
  nlohmann::json to_json() const { return nlohmann::json(steps); }
};

Evaluation evaluate(const Plan& plan, const Call& call, Trace* trace = nullptr);
Evaluation evaluate(const Plan& plan, const CallView& call, Trace* trace = nullptr);

// The same into storage the caller keeps from call to call (the WebAssembly
// binding): true when `decision` is final, false when `pending` holds the
// pending evaluation. Strings are assigned, not rebuilt, so once they have
// grown to size a decision allocates nothing. Both are overwritten; when the
// call is decided, `pending` holds nothing meaningful (storage kept for the
// next call).
bool evaluate_into(const Plan& plan, const CallView& call, Decision& decision, PendingCall& pending,
                   Trace* trace = nullptr);

// The decision once the host knows whether an approval is on file and what
// the store's counters held (one state per pending.counters, in order; ignored
// when the approval is missing). Never throws.
Decision finish(const PendingCall& pending, bool approved, std::span<const CounterState> states, Trace* trace = nullptr);
// The same into a decision the caller keeps (its strings' storage reused).
void finish_into(const PendingCall& pending, bool approved, std::span<const CounterState> states, Decision& decision,
                 Trace* trace = nullptr);

// The spec's admission rule, shared by every counter store.
double estimate(const CounterRequest& request, CounterState state, std::int64_t now_ms);
bool admits(const CounterRequest& request, CounterState state, std::int64_t now_ms, double max);

// Milliseconds until a call denied by this counter could be admitted, assuming
// no further calls (the end of the window when the cost can never fit).
std::int64_t retry_after_ms(const CounterRequest& request, CounterState state, std::int64_t now_ms, double max);

Decision invalid_call(std::string reason);

}  // namespace toolgate
