// Shared helpers for the core unit tests: compile a policy expecting success,
// decide a call through the public API, and a tiny in-memory counter and
// approval store (the same rules as wasm/memory-store.js) so that sequences of
// calls over simulated time can be tested without a host.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "toolgate.h"

namespace toolgate::test {

using json = nlohmann::json;

// 2026-01-01T00:00:00Z, a UTC midnight (and so the start of every second,
// minute, hour and day bucket).
inline constexpr std::int64_t kT0 = 1767225600000;
inline constexpr std::int64_t kSecond = 1000;
inline constexpr std::int64_t kMinute = 60 * kSecond;
inline constexpr std::int64_t kHour = 60 * kMinute;
inline constexpr std::int64_t kDay = 24 * kHour;

inline std::string format(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const Diagnostic& d : diagnostics) {
    out += std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + std::string(to_string(d.severity)) +
           ": " + d.code + ": " + d.message + " (" + d.pointer + ")\n";
  }
  return out.empty() ? "(no diagnostics)\n" : out;
}

// Compiles `text`, adding a test failure (with every diagnostic) when it has
// errors, or any diagnostic at all when `allow_warnings` is false.
inline std::shared_ptr<const Plan> compile_ok(std::string_view text, bool allow_warnings = true) {
  CompileResult result = compile_policy(text);
  if (!result.ok()) {
    ADD_FAILURE() << "policy did not compile:\n" << format(result.diagnostics) << text;
  } else if (!allow_warnings && !result.diagnostics.empty()) {
    ADD_FAILURE() << "policy compiled with diagnostics:\n" << format(result.diagnostics);
  }
  return result.plan;
}

// The diagnostics of a policy expected to fail.
inline std::vector<Diagnostic> compile_errors(std::string_view text) {
  CompileResult result = compile_policy(text);
  EXPECT_FALSE(result.ok()) << "policy compiled, expected errors:\n" << text;
  EXPECT_TRUE(has_errors(result.diagnostics)) << format(result.diagnostics);
  return result.diagnostics;
}

// The diagnostic with `code` (at `pointer`, when given; "" is the document);
// a test failure when there is none.
inline std::optional<Diagnostic> find_diagnostic(const std::vector<Diagnostic>& diagnostics, std::string_view code,
                                                 std::optional<std::string_view> pointer = std::nullopt) {
  for (const Diagnostic& d : diagnostics) {
    if (d.code == code && (!pointer || d.pointer == *pointer)) return d;
  }
  ADD_FAILURE() << "no diagnostic " << code << " at " << (pointer ? "\"" + std::string(*pointer) + "\"" : "(any)")
                << " in:\n"
                << format(diagnostics);
  return std::nullopt;
}

// `arguments` null (as `{}` makes it) means no arguments: {}.
inline Call make_call(std::string tool, json arguments = json::object(), std::string grant = "alice",
                      std::int64_t now_ms = kT0) {
  Call call;
  call.tool = std::move(tool);
  call.arguments = arguments.is_null() ? json::object() : std::move(arguments);
  call.grant.id = std::move(grant);
  call.now_ms = now_ms;
  return call;
}

// A call from its wire form (must be well-formed).
inline Call parse_call(std::string_view text, std::int64_t default_now_ms = kT0) {
  CallReadOptions options;
  options.default_now_ms = default_now_ms;
  CallRead read = read_call(text, options);
  if (!read.call) {
    ADD_FAILURE() << "malformed call: " << read.error << "\n" << text;
    return make_call("");
  }
  return std::move(*read.call);
}

inline Decision no_plan() {
  Decision decision;
  decision.code = "<the policy did not compile>";
  return decision;
}

// One call, decided without a store: counters hold `states` (missing ones
// are fresh, {0, 0}) and the approval is on file when `approved`. Nothing is
// charged: use Session for sequences.
inline Decision decide(const Plan* plan, const Call& call, std::vector<CounterState> states = {},
                       bool approved = false) {
  if (!plan) return no_plan();
  Evaluation evaluation = evaluate(*plan, call);
  if (evaluation.decision) return *evaluation.decision;
  states.resize(std::max(states.size(), evaluation.pending.counters.size()));
  return finish(evaluation.pending, approved, states);
}

inline Decision decide(const std::shared_ptr<const Plan>& plan, const Call& call, std::vector<CounterState> states = {},
                       bool approved = false) {
  return decide(plan.get(), call, std::move(states), approved);
}

inline Decision decide(const std::shared_ptr<const Plan>& plan, std::string_view call_text,
                       std::vector<CounterState> states = {}, bool approved = false) {
  return decide(plan.get(), parse_call(call_text), std::move(states), approved);
}

// Counts per counter key, as a store keeps them: the current fixed bucket and
// the one before it. reserve() admits with toolgate::admits, all or nothing.
class CounterSim {
 public:
  struct Reservation {
    bool admitted = false;
    std::vector<CounterState> states;  // before this call's charge
  };

  CounterState state(const CounterRequest& request) const {
    auto it = buckets_.find(request.key);
    if (it == buckets_.end()) return {};
    const Bucket& bucket = it->second;
    if (bucket.start == request.bucket_start_ms) return {bucket.current, bucket.previous};
    if (bucket.start == request.bucket_start_ms - request.window_ms) return {0, bucket.current};
    return {};
  }

  Reservation reserve(const std::vector<CounterRequest>& requests, std::int64_t now_ms) {
    Reservation reservation;
    reservation.admitted = true;
    for (const CounterRequest& request : requests) {
      reservation.states.push_back(state(request));
      if (!admits(request, reservation.states.back(), now_ms, request.max)) reservation.admitted = false;
    }
    if (!reservation.admitted) return reservation;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const CounterRequest& request = requests[i];
      buckets_[request.key] = Bucket{request.bucket_start_ms, reservation.states[i].current + request.cost,
                                     reservation.states[i].previous};
    }
    return reservation;
  }

  // The count of `key` in the bucket that starts at `bucket_start_ms`.
  double count(const std::string& key, std::int64_t bucket_start_ms) const {
    auto it = buckets_.find(key);
    return it != buckets_.end() && it->second.start == bucket_start_ms ? it->second.current : 0;
  }

  std::size_t size() const { return buckets_.size(); }
  std::map<std::string, double> totals() const {
    std::map<std::string, double> out;
    for (const auto& [key, bucket] : buckets_) out[key] = bucket.current;
    return out;
  }

 private:
  struct Bucket {
    std::int64_t start = 0;
    double current = 0;
    double previous = 0;
  };
  std::map<std::string, Bucket> buckets_;
};

// A policy with its counter and approval stores: the host's loop
// (evaluate -> approval look-up -> reserve -> finish), as the CLI runs it.
class Session {
 public:
  explicit Session(std::string_view policy) : plan_(compile_ok(policy)) {}

  Decision call(const Call& call) {
    if (!plan_) return no_plan();
    Evaluation evaluation = evaluate(*plan_, call);
    if (evaluation.decision) return *evaluation.decision;
    const PendingCall& pending = evaluation.pending;
    last_pending_ = pending;
    bool approved = false;
    if (pending.approval) {
      auto it = approvals_.find(pending.approval->id);
      approved = it != approvals_.end() && pending.now_ms >= it->second &&
                 pending.now_ms - it->second <= pending.approval->timeout_ms;
      if (!approved) return finish(pending, false, {});
    }
    CounterSim::Reservation reservation = counters_.reserve(pending.counters, pending.now_ms);
    Decision decision = finish(pending, approved, reservation.states);
    EXPECT_EQ(decision.verdict == Verdict::allow, reservation.admitted)
        << "the store and finish() disagree on " << call.tool << ": " << decision.code;
    if (decision.verdict == Verdict::allow && pending.approval) approvals_.erase(pending.approval->id);
    return decision;
  }

  Decision call(std::string tool, json arguments = json::object(), std::string grant = "alice",
                std::int64_t now_ms = kT0) {
    return call(make_call(std::move(tool), std::move(arguments), std::move(grant), now_ms));
  }

  Decision call_text(std::string_view text) { return call(parse_call(text)); }

  void approve(const std::string& id, std::int64_t now_ms) { approvals_[id] = now_ms; }

  const Plan* plan() const { return plan_.get(); }
  CounterSim& counters() { return counters_; }
  const PendingCall& last_pending() const { return last_pending_; }

 private:
  std::shared_ptr<const Plan> plan_;
  CounterSim counters_;
  std::map<std::string, std::int64_t> approvals_;  // id -> approved at
  PendingCall last_pending_;
};

// How many times in a row the same call is allowed before its first denial
// (at most `limit`).
inline int allowed_in_a_row(Session& session, const Call& call, int limit = 1000) {
  for (int i = 0; i < limit; ++i) {
    if (session.call(call).verdict != Verdict::allow) return i;
  }
  return limit;
}

}  // namespace toolgate::test
