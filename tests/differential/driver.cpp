// Native side of the native-vs-WebAssembly differential test.
//
// Reads cases as JSON Lines on stdin, one per line:
//   {"policy": "<policy text>", "steps": [step, ...]}
// where a step is one of
//   {"call": "<call text>", "now": <default now ms>}   evaluate, then decide with the stores
//   {"approve": true, "now": <ms>}                     approve the last approval_required call
//   {"finish": "<finish input text>"}                  finish() as the WebAssembly export takes it
//   {"hidden": "<tool name>"}                          Plan::find_hidden, as tools/list filtering uses it
// and writes, per case, lines that tests/differential/run.js computes the
// same way through the WebAssembly build (wasm/index.js and its raw core):
//   P <diagnostics JSON>          H <policy hash>
//   E <evaluate() text>           (a decision, or the pending call in full)
//   D <decision text>             the decision with in-memory stores, as Policy.decide()
//   L <line,column>               locate(policy, the decision's rule)
//   A <approval id or ->          F <finish() text>     V <0|1>
// then "." to end the case.
//
// The stores replicate wasm/memory-store.js (MemoryCounterStore,
// MemoryApprovalStore) and the host loop replicates Policy.authorize() in
// wasm/index.js, so the D lines compare whole decision sequences over time.
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "json_reader.h"
#include "toolgate.h"

namespace {

using json = nlohmann::json;
using namespace toolgate;

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

// wasm/bindings.cpp's store_error(): a store answer the core cannot use.
std::string store_error_text(const std::string& why) {
  Decision decision;
  decision.code = "store_error";
  decision.message = "Denied (fail closed): " + why + ".";
  return decision_text(decision);
}

// wasm/bindings.cpp finish(): {"pending", "approved", "states"} -> decision text.
std::string finish_text(const std::string& input_text) {
  JsonReadOptions options;
  options.record_positions = false;
  JsonReadResult read = read_json(input_text, options);
  auto fail = [] { return store_error_text("the counter store's answer was malformed"); };
  if (!read.ok() || !read.value.is_object()) return fail();
  const auto& object = read.value.get_ref<const json::object_t&>();
  auto pending = object.find("pending");
  auto approved = object.find("approved");
  auto states = object.find("states");
  if (pending == object.end() || approved == object.end() || !approved->second.is_boolean() || states == object.end())
    return fail();
  auto pending_call = read_pending(pending->second);
  auto counter_states = read_states(states->second);
  if (!pending_call || !counter_states) return fail();
  return decision_text(finish(*pending_call, approved->second.get<bool>(), *counter_states));
}

// wasm/memory-store.js MemoryCounterStore, rule for rule.
class MemoryCounterStore {
 public:
  struct Charge {
    std::string key;
    std::int64_t start;
    double cost;
  };
  struct Reservation {
    bool admitted = false;
    std::vector<CounterState> states;
    std::vector<Charge> charges;
  };

  Reservation reserve(const std::vector<CounterRequest>& requests, std::int64_t now) {
    Reservation reservation;
    for (const CounterRequest& request : requests) reservation.states.push_back(state(request));
    std::map<std::string, double> earlier;
    reservation.admitted = true;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const CounterRequest& request = requests[i];
      double before = earlier.count(request.key) ? earlier[request.key] : 0;
      earlier[request.key] = before + request.cost;
      if (!(estimate(request, reservation.states[i], now) + before + request.cost <= request.max)) {
        reservation.admitted = false;
        break;  // Array.prototype.every stops at the first false
      }
    }
    if (reservation.admitted) {
      for (std::size_t i = 0; i < requests.size(); ++i) {
        const CounterRequest& request = requests[i];
        auto entry = buckets_.find(request.key);
        std::int64_t start = entry == buckets_.end() ? request.bucket_start_ms
                                                     : std::max(request.bucket_start_ms, entry->second.start);
        bool charged_before = false;
        for (const Charge& charge : reservation.charges) charged_before = charged_before || charge.key == request.key;
        double current = entry != buckets_.end() && entry->second.start == start && charged_before
                             ? entry->second.current + request.cost
                             : reservation.states[i].current + request.cost;
        buckets_[request.key] = Bucket{start, current, reservation.states[i].previous};
        reservation.charges.push_back(Charge{request.key, start, request.cost});
      }
    }
    return reservation;
  }

  void rollback(const Reservation& reservation) {
    for (const Charge& charge : reservation.charges) {
      auto entry = buckets_.find(charge.key);
      if (entry != buckets_.end() && entry->second.start == charge.start)
        entry->second.current = std::max(0.0, entry->second.current - charge.cost);
    }
  }

 private:
  struct Bucket {
    std::int64_t start;
    double current;
    double previous;
  };

  CounterState state(const CounterRequest& request) const {
    auto entry = buckets_.find(request.key);
    if (entry == buckets_.end()) return {0, 0};
    const Bucket& bucket = entry->second;
    std::int64_t start = request.bucket_start_ms;
    if (bucket.start == start) return {bucket.current, bucket.previous};
    if (bucket.start == start - request.window_ms) return {0, bucket.current};
    if (bucket.start > start) return {bucket.current, bucket.previous};  // clock went back: keep counts
    return {0, 0};
  }

  std::map<std::string, Bucket> buckets_;
};

// wasm/memory-store.js MemoryApprovalStore (approve, isApproved, consume).
class MemoryApprovalStore {
 public:
  void approve(const std::string& id, std::int64_t now) { approvals_[id] = now; }
  bool is_approved(const std::string& id, std::int64_t timeout_ms, std::int64_t now) const {
    auto at = approvals_.find(id);
    return at != approvals_.end() && now >= at->second && now - at->second <= timeout_ms;
  }
  bool consume(const std::string& id, std::int64_t timeout_ms, std::int64_t now) {
    if (!is_approved(id, timeout_ms, now)) return false;
    approvals_.erase(id);
    return true;
  }

 private:
  std::map<std::string, std::int64_t> approvals_;
};

// wasm/bindings.cpp CompiledPolicy::evaluate_call.
Evaluation evaluate_text(const Plan* plan, const std::string& call_text, double default_now_ms) {
  Evaluation result;
  if (!(default_now_ms >= -8.64e15 && default_now_ms <= 8.64e15)) {
    result.decision = invalid_call("the host's current time is not a valid timestamp.");
    return result;
  }
  CallReadOptions options;
  options.default_now_ms = static_cast<std::int64_t>(default_now_ms);
  CallRead read = read_call(call_text, options);
  if (!read.call) {
    result.decision = invalid_call(read.error);
  } else if (!plan) {
    result.decision = invalid_call("the policy did not compile.");
  } else {
    result = evaluate(*plan, *read.call);
  }
  return result;
}

Decision store_failure(std::string message) {
  Decision decision;
  decision.code = "store_error";
  decision.message = std::move(message);
  return decision;
}

// wasm/index.js Policy.authorize() then commit, with the stores above.
Decision decide(const Evaluation& first, MemoryCounterStore& counters, MemoryApprovalStore& approvals) {
  if (first.decision) return *first.decision;
  const PendingCall& pending = first.pending;
  if (pending.approval) {
    if (!approvals.is_approved(pending.approval->id, pending.approval->timeout_ms, pending.now_ms))
      return finish(pending, false, {});
  }
  MemoryCounterStore::Reservation reservation;
  reservation.admitted = true;
  bool charged = !pending.counters.empty();
  if (charged) reservation = counters.reserve(pending.counters, pending.now_ms);
  Decision decision = finish(pending, true, reservation.states);
  if (charged && (decision.verdict == Verdict::allow) != reservation.admitted) {
    if (reservation.admitted) counters.rollback(reservation);
    return store_failure("The counter store and the policy disagree; the call is denied (fail closed).");
  }
  if (decision.verdict == Verdict::allow && pending.approval) {
    if (!approvals.consume(pending.approval->id, pending.approval->timeout_ms, pending.now_ms)) {
      if (charged) counters.rollback(reservation);
      return finish(pending, false, {});
    }
  }
  return decision;
}

std::string string_field(const json& object, const char* name) {
  auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::string line;
  std::string out;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json input = json::parse(line, nullptr, false);
    if (input.is_discarded() || !input.is_object()) {
      std::cerr << "toolgate_differential: not a case: " << line.substr(0, 200) << "\n";
      return 2;
    }
    const std::string policy_text = string_field(input, "policy");
    CompileResult compiled = compile_policy(policy_text);
    out += "P " + dump(to_json(compiled.diagnostics)) + "\n";
    out += "H " + std::string(compiled.plan ? compiled.plan->policy_hash : "") + "\n";
    JsonReadResult source = read_json(policy_text);
    MemoryCounterStore counters;
    MemoryApprovalStore approvals;
    std::optional<std::string> last_approval;
    for (const json& step : input.value("steps", json::array())) {
      if (step.contains("call")) {
        double now = step.value("now", 0.0);
        Evaluation first = evaluate_text(compiled.plan.get(), string_field(step, "call"), now);
        out += "E " + (first.decision ? decision_text(*first.decision) : dump(to_json(first.pending))) + "\n";
        if (!compiled.plan) continue;
        Decision decision = decide(first, counters, approvals);
        out += "D " + decision_text(decision) + "\n";
        if (decision.approval_id) last_approval = decision.approval_id;
        if (source.complete) {
          auto [l, c] = source.source_map.locate(decision.rule);
          out += "L " + std::to_string(l) + "," + std::to_string(c) + "\n";
        } else {
          out += "L 0,0\n";
        }
      } else if (step.contains("approve")) {
        if (last_approval) approvals.approve(*last_approval, static_cast<std::int64_t>(step.value("now", 0.0)));
        out += "A " + (last_approval ? *last_approval : std::string("-")) + "\n";
      } else if (step.contains("finish")) {
        out += "F " + finish_text(string_field(step, "finish")) + "\n";
      } else if (step.contains("hidden")) {
        std::string tool = string_field(step, "hidden");
        out += std::string("V ") + (compiled.plan && compiled.plan->find_hidden(tool) ? "1" : "0") + "\n";
      }
    }
    out += ".\n";
    if (out.size() > (1 << 16)) {
      std::cout << out;
      out.clear();
    }
  }
  std::cout << out;
  return 0;
}
