// Native core benchmarks. Three modes in one binary:
//
//   toolgate_bench [--benchmark_* flags]          Google Benchmark: ns per decision and
//                                                 decisions/s (typical call, the matrix of
//                                                 policy size x argument count, each condition
//                                                 operator, fixed and sliding limits), compile
//   toolgate_bench --percentiles [--quick] [--json=FILE]
//                                                 the same cases timed with our own loop:
//                                                 p50/p99 per decision and decisions/s
//   toolgate_bench --compile-scaling [--quick] [--json=FILE]
//                                                 compile time and heap bytes (held by the
//                                                 plan, peak during compile) for 1 to 10 000
//                                                 tools, with the growth exponent
//
// Run everything with `npm run bench` (scripts/bench.sh), which merges the three into
// bench/results/core-native.{json,md} (bench/native/report-native.js).
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "call_buffer.h"
#include "toolgate.h"

// ---------------------------------------------------------------------------
// Heap accounting: the global operator new/delete are replaced for the whole
// binary. They only count while heap::tracking is set (the --compile-scaling
// mode), so the decision benchmarks pay one relaxed load per allocation.
namespace heap {
std::atomic<bool> tracking{false};
std::atomic<long long> live{0};
std::atomic<long long> peak{0};
std::atomic<long long> allocations{0};

inline void note_allocation(void* p) {
  if (!tracking.load(std::memory_order_relaxed)) return;
  long long size = static_cast<long long>(malloc_usable_size(p));
  long long now = live.fetch_add(size, std::memory_order_relaxed) + size;
  long long seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
  allocations.fetch_add(1, std::memory_order_relaxed);
}
inline void* allocate(std::size_t size) {
  void* p = std::malloc(size ? size : 1);
  if (!p) throw std::bad_alloc();
  note_allocation(p);
  return p;
}
inline void* allocate_aligned(std::size_t size, std::align_val_t align) {
  std::size_t a = static_cast<std::size_t>(align);
  if (a < sizeof(void*)) a = sizeof(void*);
  void* p = nullptr;
  if (posix_memalign(&p, a, size ? size : 1) != 0) throw std::bad_alloc();
  note_allocation(p);
  return p;
}
inline void release(void* p) noexcept {
  if (!p) return;
  if (tracking.load(std::memory_order_relaxed)) {
    live.fetch_sub(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
  }
  std::free(p);
}
}  // namespace heap

void* operator new(std::size_t size) { return heap::allocate(size); }
void* operator new[](std::size_t size) { return heap::allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try { return heap::allocate(size); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try { return heap::allocate(size); } catch (...) { return nullptr; }
}
void* operator new(std::size_t size, std::align_val_t align) { return heap::allocate_aligned(size, align); }
void* operator new[](std::size_t size, std::align_val_t align) { return heap::allocate_aligned(size, align); }
void operator delete(void* p) noexcept { heap::release(p); }
void operator delete[](void* p) noexcept { heap::release(p); }
void operator delete(void* p, std::size_t) noexcept { heap::release(p); }
void operator delete[](void* p, std::size_t) noexcept { heap::release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { heap::release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { heap::release(p); }
void operator delete(void* p, std::align_val_t) noexcept { heap::release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { heap::release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { heap::release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { heap::release(p); }

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The "typical call" of the budgets: 5 arguments, 3 conditions, 1 limit.
constexpr const char* kTypicalPolicy = R"({
  "version": "1", "default": "deny",
  "tools": {
    "create_refund": {
      "require": [{"path": "args.currency", "op": "in", "value": ["usd", "eur"]}],
      "deny_if": [{"conditions": [{"path": "args.amount", "op": "gt", "value": 500},
                                  {"path": "grant.role", "op": "neq", "value": "admin"}]}],
      "limits": [{"counter": "refunds", "window": "minute", "max": 100}]
    }
  }
})";

constexpr const char* kTypicalCall =
    R"({"tool":"create_refund","arguments":{"amount":120,"currency":"usd","charge":"ch_123","reason":"duplicate","notify":true},"grant":{"id":"alice","role":"support"},"now":1767225600000})";

constexpr std::int64_t kNow = 1767225600000;  // 2026-01-01T00:00:00Z

toolgate::Call typical_call() {
  auto read = toolgate::read_call(kTypicalCall);
  return std::move(*read.call);
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "toolgate_bench: %s\n", what.c_str());
  std::exit(2);
}

std::shared_ptr<const toolgate::Plan> compile_or_die(const std::string& text) {
  auto compiled = toolgate::compile_policy(text);
  if (!compiled.ok()) {
    fail("a benchmark policy does not compile: " + toolgate::to_json(compiled.diagnostics).dump());
  }
  return compiled.plan;
}

toolgate::Call call_or_die(const std::string& text) {
  auto read = toolgate::read_call(text);
  if (!read.call) fail("a benchmark call is malformed: " + read.error);
  return std::move(*read.call);
}

// The policy of BM_CompilePolicy and --compile-scaling (bench/js/core.bench.js
// builds the same one): each tool has a deny_if condition and a rate limit.
std::string policy_with_tools(int count) {
  json tools = json::object();
  for (int i = 0; i < count; ++i) {
    tools["tool_" + std::to_string(i)] = {
        {"deny_if", json::array({{{"conditions", json::array({{{"path", "args.n"}, {"op", "gt"}, {"value", i}}})}}})},
        {"rate_limit", "10/minute"}};
  }
  return json({{"version", "1"}, {"default", "deny"}, {"tools", tools}}).dump();
}

// ---------------------------------------------------------------------------
// The matrix (bench/js/matrix.bench.js builds the same policies and calls).
//
// Policy of N tools: every tool has one deny_if entry with three conditions on
// args.a0 (gt), args.a1 (eq) and args.a2 (in), none of which holds, and one
// fixed limit (never reached). The call goes to the tool in the middle,
// tool_<N/2>, with A arguments a0..a<A-1> of mixed types (number, string,
// string, boolean, small array, repeating). With A = 0 the conditions read
// missing paths (false). Decision: allowed, after evaluate + finish.
std::string matrix_policy(int tools) {
  json entries = json::object();
  for (int i = 0; i < tools; ++i) {
    entries["tool_" + std::to_string(i)] = {
        {"deny_if", json::array({{{"conditions", json::array({
                                      {{"path", "args.a0"}, {"op", "gt"}, {"value", 1000000}},
                                      {{"path", "args.a1"}, {"op", "eq"}, {"value", "blocked"}},
                                      {{"path", "args.a2"}, {"op", "in"}, {"value", json::array({"x", "y", "z"})}},
                                  })}}})},
        {"limits", json::array({{{"counter", "calls"}, {"window", "minute"}, {"max", 1000000000}}})}};
  }
  return json({{"version", "1"}, {"default", "deny"}, {"tools", entries}}).dump();
}

std::string matrix_call(int tools, int arguments) {
  json args = json::object();
  for (int i = 0; i < arguments; ++i) {
    std::string name = "a" + std::to_string(i);
    switch (i % 5) {
      case 0: args[name] = i * 10 + 7; break;
      case 1: args[name] = "value_" + std::to_string(i); break;
      case 2: args[name] = "text " + std::to_string(i) + " of a call"; break;
      case 3: args[name] = (i % 2 == 0); break;
      default: args[name] = json::array({i, "item"}); break;
    }
  }
  return json({{"tool", "tool_" + std::to_string(tools / 2)},
               {"arguments", args},
               {"grant", {{"id", "alice"}, {"role", "support"}}},
               {"now", kNow}})
      .dump();
}

// One condition per operator, none of which holds (the call is allowed, so
// every operator is fully evaluated). The spec's list and core's Op enum are
// the same: eq neq lt lte gt gte in not_in exists regex contains starts_with
// ends_with glob. A new Op makes -Wswitch warn here.
json operator_condition(toolgate::Op op) {
  using toolgate::Op;
  auto c = [](const char* path, const char* name, json value) {
    return json{{"path", path}, {"op", name}, {"value", std::move(value)}};
  };
  switch (op) {
    case Op::eq: return c("args.currency", "eq", "gbp");
    case Op::neq: return c("args.currency", "neq", "usd");
    case Op::lt: return c("args.amount", "lt", 10);
    case Op::lte: return c("args.amount", "lte", 10);
    case Op::gt: return c("args.amount", "gt", 500);
    case Op::gte: return c("args.amount", "gte", 500);
    case Op::in: return c("args.currency", "in", {"gbp", "jpy", "chf", "cad", "aud", "nzd", "sek", "nok", "dkk", "pln"});
    case Op::not_in:
      return c("args.currency", "not_in", {"gbp", "jpy", "chf", "cad", "aud", "nzd", "sek", "nok", "dkk", "usd"});
    case Op::exists: return c("args.approved_by", "exists", true);
    case Op::regex: return c("args.path", "regex", "^(etc|root|var)/.*\\.(key|pem)$");
    case Op::contains: return c("args.reason", "contains", "fraud");
    case Op::starts_with: return c("args.path", "starts_with", "/etc/");
    case Op::ends_with: return c("args.path", "ends_with", ".pem");
    case Op::glob: return c("args.path", "glob", "secrets/*.pem");
  }
  return {};
}
constexpr int kOperatorCount = static_cast<int>(toolgate::Op::glob) + 1;

// The typical call's arguments plus a path and a list, for the string and array operators.
constexpr const char* kOperatorCall =
    R"({"tool":"checked","arguments":{"amount":120,"currency":"usd","charge":"ch_123","reason":"duplicate","notify":true,"path":"src/components/button/index.js","tags":["billing","refund","eu","priority","manual"]},"grant":{"id":"alice","role":"support"},"now":1767225600000})";

std::string single_condition_policy(const json& condition) {
  return json({{"version", "1"},
               {"default", "deny"},
               {"tools", {{"checked", {{"deny_if", json::array({{{"conditions", json::array({condition})}}})}}}}}})
      .dump();
}

// A tool with `count` limits (distinct counters, windows minute/hour/day), all
// fixed or all sliding, never reached; the store's counts are in hand.
std::string limits_policy(bool sliding, int count) {
  static const char* windows[] = {"minute", "hour", "day"};
  json limits = json::array();
  for (int i = 0; i < count; ++i) {
    limits.push_back({{"counter", "c" + std::to_string(i)},
                      {"window", windows[i % 3]},
                      {"max", 1000000000},
                      {"algorithm", sliding ? "sliding" : "fixed"}});
  }
  return json({{"version", "1"}, {"default", "deny"}, {"tools", {{"create_refund", {{"limits", limits}}}}}}).dump();
}

// A decision to time: returns the verdict so nothing is optimised away.
using DecideFn = std::function<int()>;

struct Case {
  std::string name;
  std::string group;  // matrix, matrix_text, operator, limits, typical
  std::function<DecideFn()> make;
};

// evaluate (+ finish with the counter states in hand when the call has limits).
DecideFn decide_parsed(std::shared_ptr<const toolgate::Plan> plan, toolgate::Call call, std::string expect_code) {
  auto states = std::make_shared<std::vector<toolgate::CounterState>>();
  {
    toolgate::Evaluation e = toolgate::evaluate(*plan, call);
    toolgate::Decision d = e.decision ? *e.decision : toolgate::Decision{};
    if (!e.decision) {
      // Counts already held: realistic for sliding windows (previous bucket in play).
      states->assign(e.pending.counters.size(), toolgate::CounterState{10, 20});
      d = toolgate::finish(e.pending, true, *states);
    }
    if (d.code != expect_code) fail("a benchmark call decided " + d.code + " (" + d.message + "), expected " + expect_code);
  }
  auto shared_call = std::make_shared<toolgate::Call>(std::move(call));
  return [plan, shared_call, states]() {
    toolgate::Evaluation e = toolgate::evaluate(*plan, *shared_call);
    if (e.decision) return static_cast<int>(e.decision->verdict);
    toolgate::Decision d = toolgate::finish(e.pending, true, *states);
    return static_cast<int>(d.verdict);
  };
}

// read_call (JSON text) + evaluate + finish: what every host's wire path does.
DecideFn decide_text(std::shared_ptr<const toolgate::Plan> plan, std::string text) {
  decide_parsed(plan, call_or_die(text), "allowed");  // checks the decision
  auto states = std::make_shared<std::vector<toolgate::CounterState>>();
  auto shared_text = std::make_shared<std::string>(std::move(text));
  return [plan, shared_text, states]() {
    auto read = toolgate::read_call(*shared_text);
    toolgate::Evaluation e = toolgate::evaluate(*plan, *read.call);
    if (e.decision) return static_cast<int>(e.decision->verdict);
    if (states->size() != e.pending.counters.size()) states->assign(e.pending.counters.size(), toolgate::CounterState{10, 20});
    return static_cast<int>(toolgate::finish(e.pending, true, *states).verdict);
  };
}

// The binary call form read in place (read_call_view, no DOM) and decided
// into storage kept from call to call: what the WebAssembly hot path does
// (wasm/bindings.cpp), without the boundary.
DecideFn decide_buffer(std::shared_ptr<const toolgate::Plan> plan, std::string text) {
  decide_parsed(plan, call_or_die(text), "allowed");  // checks the decision
  auto bytes = toolgate::encode_call_buffer(nlohmann::json::parse(text));
  if (!bytes) fail("the benchmark call has no binary form");
  struct Kept {
    std::vector<std::uint8_t> bytes;
    toolgate::CallTape tape;
    toolgate::CallView call;
    std::string error;
    toolgate::Decision decision;
    toolgate::PendingCall pending;
    std::vector<toolgate::CounterState> states;
  };
  auto kept = std::make_shared<Kept>();
  kept->bytes = std::move(*bytes);
  return [plan, kept]() {
    Kept& k = *kept;
    if (!toolgate::read_call_view(k.bytes, {}, *plan, k.tape, k.call, k.error)) fail(k.error);
    if (toolgate::evaluate_into(*plan, k.call, k.decision, k.pending)) return static_cast<int>(k.decision.verdict);
    if (k.states.size() != k.pending.counters.size()) k.states.assign(k.pending.counters.size(), toolgate::CounterState{10, 20});
    toolgate::finish_into(k.pending, true, k.states, k.decision);
    return static_cast<int>(k.decision.verdict);
  };
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  cases.push_back({"typical", "typical", [] {
                     return decide_parsed(compile_or_die(kTypicalPolicy), typical_call(), "allowed");
                   }});
  cases.push_back({"typical_from_text", "typical",
                   [] { return decide_text(compile_or_die(kTypicalPolicy), kTypicalCall); }});
  cases.push_back({"typical_from_buffer", "typical",
                   [] { return decide_buffer(compile_or_die(kTypicalPolicy), kTypicalCall); }});
  for (int tools : {1, 100, 10000}) {
    for (int arguments : {0, 5, 50}) {
      std::string suffix = "tools:" + std::to_string(tools) + "/args:" + std::to_string(arguments);
      cases.push_back({"matrix/" + suffix, "matrix", [tools, arguments] {
                         return decide_parsed(compile_or_die(matrix_policy(tools)), call_or_die(matrix_call(tools, arguments)),
                                              "allowed");
                       }});
      cases.push_back({"matrix_from_text/" + suffix, "matrix_text", [tools, arguments] {
                         return decide_text(compile_or_die(matrix_policy(tools)), matrix_call(tools, arguments));
                       }});
    }
  }
  for (int i = 0; i < kOperatorCount; ++i) {
    auto op = static_cast<toolgate::Op>(i);
    json condition = operator_condition(op);
    std::string name = condition["op"].get<std::string>();
    cases.push_back({"operator/" + name, "operator", [condition, op] {
                       auto plan = compile_or_die(single_condition_policy(condition));
                       if (plan->tools.at(0).rules.deny_if.at(0).conditions.at(0).op != op) fail("operator mismatch");
                       return decide_parsed(plan, call_or_die(kOperatorCall), "allowed");
                     }});
  }
  // contains on an array (JSON-equal membership) as well as on a string.
  cases.push_back({"operator/contains_array", "operator", [] {
                     json condition = {{"path", "args.tags"}, {"op", "contains"}, {"value", "wholesale"}};
                     return decide_parsed(compile_or_die(single_condition_policy(condition)), call_or_die(kOperatorCall),
                                          "allowed");
                   }});
  for (bool sliding : {false, true}) {
    for (int count : {1, 3}) {
      cases.push_back({std::string("limits/") + (sliding ? "sliding" : "fixed") + "/limits:" + std::to_string(count), "limits",
                       [sliding, count] {
                         return decide_parsed(compile_or_die(limits_policy(sliding, count)), typical_call(), "allowed");
                       }});
    }
  }
  return cases;
}

// ---------------------------------------------------------------------------
// Google Benchmark. The first three keep their names and semantics (README).

// Decision for a pre-parsed call: evaluate + finish with counter values in hand.
void BM_DecideTypicalCall(benchmark::State& state) {
  auto compiled = toolgate::compile_policy(kTypicalPolicy);
  toolgate::Call call = typical_call();
  std::vector<toolgate::CounterState> states(1);
  for (auto _ : state) {
    toolgate::Evaluation evaluation = toolgate::evaluate(*compiled.plan, call);
    toolgate::Decision decision = toolgate::finish(evaluation.pending, true, states);
    benchmark::DoNotOptimize(decision);
  }
  state.counters["decisions/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecideTypicalCall);

// The same, including parsing the call's JSON text (what the WASM API does).
void BM_DecideTypicalCallFromText(benchmark::State& state) {
  auto compiled = toolgate::compile_policy(kTypicalPolicy);
  std::vector<toolgate::CounterState> states(1);
  for (auto _ : state) {
    auto read = toolgate::read_call(kTypicalCall);
    toolgate::Evaluation evaluation = toolgate::evaluate(*compiled.plan, *read.call);
    toolgate::Decision decision = toolgate::finish(evaluation.pending, true, states);
    benchmark::DoNotOptimize(decision);
  }
  state.counters["decisions/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecideTypicalCallFromText);

// The same from the binary call form, read in place (read_call_view) into
// storage kept from call to call: the WebAssembly hot path without the boundary.
void BM_DecideTypicalCallFromBuffer(benchmark::State& state) {
  DecideFn decide = decide_buffer(compile_or_die(kTypicalPolicy), kTypicalCall);
  for (auto _ : state) benchmark::DoNotOptimize(decide());
  state.counters["decisions/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecideTypicalCallFromBuffer);

void BM_CompilePolicy(benchmark::State& state) {
  std::string text = policy_with_tools(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto compiled = toolgate::compile_policy(text);
    benchmark::DoNotOptimize(compiled);
  }
  state.SetLabel(std::to_string(text.size()) + " bytes");
}
BENCHMARK(BM_CompilePolicy)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

// The matrix, operators and limits: BM_Decide/<case name>.
void register_cases() {
  for (Case& c : all_cases()) {
    if (c.group == "typical") continue;  // BM_DecideTypicalCall* above
    auto make = c.make;
    benchmark::RegisterBenchmark(("BM_Decide/" + c.name).c_str(), [make](benchmark::State& state) {
      DecideFn decide = make();
      for (auto _ : state) benchmark::DoNotOptimize(decide());
      state.counters["decisions/s"] =
          benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    });
  }
}

// ---------------------------------------------------------------------------
// --percentiles: per-decision latency distribution. Google Benchmark reports
// means of long runs; here each sample times a batch of B decisions (B chosen
// so a batch lasts about 1 µs; B = 1 for decisions slower than that) and the
// per-decision time is batch time / B, minus the clock's own cost.

struct Options {
  bool quick = false;
  std::string json_path;
};

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double clock_overhead_ns() {
  constexpr int n = 200000;
  auto start = Clock::now();
  Clock::time_point sink{};
  for (int i = 0; i < n; ++i) sink = std::max(sink, Clock::now());
  benchmark::DoNotOptimize(sink);
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / n;
}

double percentile(const std::vector<double>& sorted, double p) {
  std::size_t index = static_cast<std::size_t>(std::floor(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, index)];
}

std::string number(double value, int digits = 1) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

std::string thousands(double value) {
  std::string digits = number(value, 0);
  std::string out;
  int count = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (count > 0 && count % 3 == 0 && *it != '-') out.insert(out.begin(), ' ');
    out.insert(out.begin(), *it);
    ++count;
  }
  return out;
}

void write_json(const Options& options, const json& value) {
  if (options.json_path.empty()) return;
  std::ofstream out(options.json_path);
  out << value.dump(2) << "\n";
  if (!out) fail("cannot write " + options.json_path);
}

int run_percentiles(const Options& options) {
  const double overhead = clock_overhead_ns();
  const double seconds_per_case = options.quick ? 0.05 : 0.4;
  const std::size_t max_samples = options.quick ? 2000 : 50000;
  json cases = json::array();
  std::printf("| case | p50 ns | p99 ns | mean ns | decisions/s | batch |\n|---|---|---|---|---|---|\n");
  for (Case& c : all_cases()) {
    DecideFn decide = c.make();
    // Warm up and estimate.
    auto start = Clock::now();
    long warm = 0;
    int sink = 0;
    while (seconds_since(start) < (options.quick ? 0.01 : 0.05)) {
      for (int i = 0; i < 16; ++i) sink += decide();
      warm += 16;
    }
    double estimate_ns = seconds_since(start) * 1e9 / static_cast<double>(warm);
    int batch = std::max(1, static_cast<int>(std::lround(1000.0 / estimate_ns)));
    std::vector<double> samples;
    samples.reserve(max_samples);
    double total_ns = 0;
    auto began = Clock::now();
    while (samples.size() < max_samples && (samples.size() < 100 || seconds_since(began) < seconds_per_case)) {
      auto t0 = Clock::now();
      for (int i = 0; i < batch; ++i) sink += decide();
      auto t1 = Clock::now();
      double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
      total_ns += ns;
      samples.push_back(std::max(0.0, ns - overhead) / batch);
    }
    benchmark::DoNotOptimize(sink);
    double mean = (total_ns - overhead * static_cast<double>(samples.size())) / static_cast<double>(samples.size() * batch);
    std::sort(samples.begin(), samples.end());
    double p50 = percentile(samples, 50), p99 = percentile(samples, 99);
    cases.push_back({{"name", c.name},
                     {"group", c.group},
                     {"batch", batch},
                     {"samples", samples.size()},
                     {"p50_ns", p50},
                     {"p99_ns", p99},
                     {"mean_ns", mean},
                     {"decisions_per_s", 1e9 / mean}});
    std::printf("| %s | %s | %s | %s | %s | %d |\n", c.name.c_str(), number(p50).c_str(), number(p99).c_str(),
                number(mean).c_str(), thousands(1e9 / mean).c_str(), batch);
    std::fflush(stdout);
  }
  write_json(options, {{"mode", "percentiles"}, {"quick", options.quick}, {"clock_overhead_ns", overhead}, {"cases", cases}});
  return 0;
}

// ---------------------------------------------------------------------------
// --compile-scaling: compile time and heap bytes against policy size.

int run_compile_scaling(const Options& options) {
  heap::tracking = true;
  const std::vector<int> sizes = {1, 10, 100, 1000, 10000};
  json rows = json::array();
  std::printf(
      "| tools | policy bytes | compile median ms (CPU) | µs per tool | plan bytes (held) | bytes per tool | peak bytes during "
      "compile | allocations |\n|---|---|---|---|---|---|---|---|\n");
  for (int tools : sizes) {
    const std::string text = policy_with_tools(tools);
    // Memory: one compile, the plan kept alive.
    long long before = heap::live.load();
    heap::peak = before;
    long long count_before = heap::allocations.load();
    auto compiled = toolgate::compile_policy(text);
    long long peak = heap::peak.load() - before;
    long long allocations = heap::allocations.load() - count_before;
    if (!compiled.ok()) fail("the scaling policy does not compile");
    std::shared_ptr<const toolgate::Plan> plan = std::move(compiled.plan);
    compiled = {};  // drop diagnostics: what stays is the plan
    long long held = heap::live.load() - before;
    plan.reset();
    long long leaked = heap::live.load() - before;
    // Time: repeated compiles (each plan freed), median of the thread's CPU
    // time (robust on a shared machine; equal to wall time on a quiet one) and
    // of wall time. Reference: nlohmann's own parse of the same text.
    std::vector<double> times, walls, parses;
    const double budget = options.quick ? 0.1 : 1.0;
    auto began = Clock::now();
    while (times.size() < 3 || (seconds_since(began) < budget && times.size() < 2000)) {
      auto t0 = Clock::now();
      double c0 = cpu_ms();
      auto again = toolgate::compile_policy(text);
      benchmark::DoNotOptimize(again.plan);
      times.push_back(cpu_ms() - c0);
      walls.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    for (std::size_t i = 0; i < std::max<std::size_t>(3, times.size() / 2); ++i) {
      double c0 = cpu_ms();
      json parsed = json::parse(text);
      benchmark::DoNotOptimize(parsed);
      parses.push_back(cpu_ms() - c0);
    }
    std::sort(times.begin(), times.end());
    std::sort(walls.begin(), walls.end());
    std::sort(parses.begin(), parses.end());
    double median_ms = percentile(times, 50);
    double parse_ms = percentile(parses, 50);
    rows.push_back({{"tools", tools},
                    {"policy_bytes", text.size()},
                    {"runs", times.size()},
                    {"median_ms", median_ms},
                    {"min_ms", times.front()},
                    {"wall_median_ms", percentile(walls, 50)},
                    {"nlohmann_parse_ms", parse_ms},
                    {"us_per_tool", median_ms * 1000 / tools},
                    {"plan_bytes", held},
                    {"plan_bytes_per_tool", static_cast<double>(held) / tools},
                    {"peak_bytes", peak},
                    {"allocations", allocations},
                    {"leaked_bytes", leaked}});
    std::printf("| %d | %s | %s | %s | %s | %s | %s | %s |\n", tools, thousands(static_cast<double>(text.size())).c_str(),
                number(median_ms, 3).c_str(), number(median_ms * 1000 / tools, 2).c_str(),
                thousands(static_cast<double>(held)).c_str(), thousands(static_cast<double>(held) / tools).c_str(),
                thousands(static_cast<double>(peak)).c_str(), thousands(static_cast<double>(allocations)).c_str());
    std::fflush(stdout);
  }
  // Growth exponent k in cost ~ tools^k, from the slope of log cost vs log tools.
  auto exponent = [&](const char* key, int from, int to) {
    const json* a = nullptr;
    const json* b = nullptr;
    for (const json& row : rows) {
      if (row["tools"] == from) a = &row;
      if (row["tools"] == to) b = &row;
    }
    double x = std::log(static_cast<double>(to) / from);
    return std::log((*b)[key].get<double>() / (*a)[key].get<double>()) / x;
  };
  json growth = {{"time_1000_10000", exponent("median_ms", 1000, 10000)},
                 {"time_100_1000", exponent("median_ms", 100, 1000)},
                 {"plan_bytes_1000_10000", exponent("plan_bytes", 1000, 10000)},
                 {"plan_bytes_100_1000", exponent("plan_bytes", 100, 1000)},
                 {"peak_bytes_1000_10000", exponent("peak_bytes", 1000, 10000)}};
  std::printf(
      "\nGrowth exponent k (cost ~ tools^k; 1 = linear), slope of log cost vs log tools from 1 000 to 10 000 tools: "
      "time %s, plan bytes %s, peak bytes %s (100 to 1 000: time %s, plan bytes %s)\n",
      number(growth["time_1000_10000"].get<double>(), 3).c_str(),
      number(growth["plan_bytes_1000_10000"].get<double>(), 3).c_str(),
      number(growth["peak_bytes_1000_10000"].get<double>(), 3).c_str(),
      number(growth["time_100_1000"].get<double>(), 3).c_str(), number(growth["plan_bytes_100_1000"].get<double>(), 3).c_str());
  write_json(options, {{"mode", "compile-scaling"},
                       {"quick", options.quick},
                       {"heap", "live bytes from a replaced global operator new/delete (malloc_usable_size), this binary"},
                       {"rows", rows},
                       {"growth_exponent", growth}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode;
  Options options;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && (arg == "--percentiles" || arg == "--compile-scaling")) {
      mode = arg;
    } else if (i > 0 && arg == "--quick") {
      options.quick = true;
    } else if (i > 0 && arg.rfind("--json=", 0) == 0) {
      options.json_path = arg.substr(7);
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (mode == "--percentiles") return run_percentiles(options);
  if (mode == "--compile-scaling") return run_compile_scaling(options);
  register_cases();
  int rest_count = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_count, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_count, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
