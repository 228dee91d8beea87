// Native core benchmarks (Google Benchmark). Run: npm run bench, or
//   build/native/bench/native/toolgate_bench
#include <benchmark/benchmark.h>

#include <string>

#include "toolgate.h"

namespace {

using json = nlohmann::json;

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

toolgate::Call typical_call() {
  auto read = toolgate::read_call(kTypicalCall);
  return std::move(*read.call);
}

std::string policy_with_tools(int count) {
  json tools = json::object();
  for (int i = 0; i < count; ++i) {
    tools["tool_" + std::to_string(i)] = {
        {"deny_if", json::array({{{"conditions", json::array({{{"path", "args.n"}, {"op", "gt"}, {"value", i}}})}}})},
        {"rate_limit", "10/minute"}};
  }
  return json({{"version", "1"}, {"default", "deny"}, {"tools", tools}}).dump();
}

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

void BM_CompilePolicy(benchmark::State& state) {
  std::string text = policy_with_tools(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto compiled = toolgate::compile_policy(text);
    benchmark::DoNotOptimize(compiled);
  }
  state.SetLabel(std::to_string(text.size()) + " bytes");
}
BENCHMARK(BM_CompilePolicy)->Arg(1)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
