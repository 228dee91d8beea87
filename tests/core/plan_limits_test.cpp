// Plan::limits(), Plan::find_limit() and their JSON (wire.h): the plan tells a
// host what each limit and its counter are (where it is set, counter name,
// scope, window, algorithm, max, cost, what it is counted per), so that hosts
// (the playground, a dashboard) never read meaning out of counter keys. A
// pending evaluation names its limits by `rule`; every such rule must resolve
// to the plan's description of the limit that produced it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "json_util.h"
#include "test_support.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using test::compile_ok;
using test::make_call;

constexpr const char* kPolicy = R"({
  "version": "1", "default": "deny",
  "all_tools": {"limits": [{"counter": "everything", "window": "day", "max": 1000, "scope": "global"}]},
  "tools": {
    "run": {"on_deny": "Too many runs.",
            "limits": [{"counter": "runs", "window": "minute", "max": 10},
                       {"window": "hour", "max": 50, "algorithm": "sliding", "key": "args.repo", "on_deny": "Per repo."}],
            "rate_limit": "100/day"},
    "refund": {"limits": [{"counter": "money", "window": "day", "max": 500, "cost_from": "args.amount", "scope": "global"}]},
    "read": {}
  }
})";

TEST(PlanLimits, DescribesEveryLimitWithTheEntryThatSetsIt) {
  auto plan = compile_ok(kPolicy, false);
  ASSERT_TRUE(plan);
  std::vector<LimitInfo> limits = plan->limits();
  ASSERT_EQ(limits.size(), 5u);
  // Tools entries first, in plan order (each entry's limits, then its
  // rate_limit), then all_tools.
  json described = to_json(limits);
  json expected = json::parse(R"([
    {"rule": "/tools/refund/limits/0", "tool": "refund", "counter": "money", "named": true, "scope": "global",
     "window_ms": 86400000, "algorithm": "fixed", "max": 500, "cost": null, "cost_from": "args.amount", "key": null,
     "message": "Rate limit exceeded: at most 500 units per day for everyone."},
    {"rule": "/tools/run/limits/0", "tool": "run", "counter": "runs", "named": true, "scope": "grant",
     "window_ms": 60000, "algorithm": "fixed", "max": 10, "cost": 1, "cost_from": null, "key": null,
     "message": "Too many runs."},
    {"rule": "/tools/run/limits/1", "tool": "run", "counter": "/tools/run/limits/1", "named": false, "scope": "grant",
     "window_ms": 3600000, "algorithm": "sliding", "max": 50, "cost": 1, "cost_from": null, "key": "args.repo",
     "message": "Per repo."},
    {"rule": "/tools/run/rate_limit", "tool": "run", "counter": "/tools/run/rate_limit", "named": false, "scope": "grant",
     "window_ms": 86400000, "algorithm": "fixed", "max": 100, "cost": 1, "cost_from": null, "key": null,
     "message": "Too many runs."},
    {"rule": "/all_tools/limits/0", "tool": null, "counter": "everything", "named": true, "scope": "global",
     "window_ms": 86400000, "algorithm": "fixed", "max": 1000, "cost": 1, "cost_from": null, "key": null,
     "message": "Rate limit exceeded: at most 1000 calls per day for everyone."}
  ])");
  EXPECT_EQ(described, expected) << described.dump(2);
}

TEST(PlanLimits, FindLimitResolvesRulesAndNothingElse) {
  auto plan = compile_ok(kPolicy, false);
  ASSERT_TRUE(plan);
  for (const LimitInfo& info : plan->limits()) {
    LimitInfo found = plan->find_limit(info.limit->pointer);
    EXPECT_EQ(found.limit, info.limit) << info.limit->pointer;
    EXPECT_EQ(found.tool, info.tool) << info.limit->pointer;
  }
  for (const char* rule : {"", "/tools/run", "/tools/run/limits/2", "/tools/read/rate_limit", "/all_tools/limits/1",
                           "runs", "everything"}) {
    EXPECT_EQ(plan->find_limit(rule).limit, nullptr) << rule;
  }
}

TEST(PlanLimits, APolicyWithoutLimitsHasNone) {
  auto plan = compile_ok(R"({"version": "1", "default": "allow", "tools": {"read": {}}, "hide": ["drop"]})", false);
  ASSERT_TRUE(plan);
  EXPECT_TRUE(plan->limits().empty());
  EXPECT_EQ(to_json(plan->limits()), json::array());
}

TEST(PlanLimits, ASharedCounterIsDescribedOnceForEachLimitThatChargesIt) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {
    "a": {"limits": [{"counter": "writes", "window": "minute", "max": 5}]},
    "b": {"limits": [{"counter": "writes", "window": "minute", "max": 3, "on_deny": "b is tighter."}]}}})", false);
  ASSERT_TRUE(plan);
  auto limits = plan->limits();
  ASSERT_EQ(limits.size(), 2u);
  EXPECT_EQ(limits[0].tool->key, "a");
  EXPECT_EQ(limits[1].tool->key, "b");
  EXPECT_EQ(limits[0].limit->counter, "writes");
  EXPECT_EQ(limits[1].limit->counter, "writes");
  EXPECT_TRUE(limits[0].limit->named && limits[1].limit->named);
  EXPECT_EQ(limits[0].limit->max, 5);
  EXPECT_EQ(limits[1].limit->max, 3);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// For every example policy and its policy tests: each limit a pending
// evaluation checks names (by rule) a limit the plan describes, with the same
// max and message, and the counter request it checks has that limit's scope,
// window and algorithm. So a host can explain any pending evaluation from the
// plan alone.
TEST(PlanLimits, EveryPendingLimitResolvesToThePlansDescription) {
  std::filesystem::path examples = std::filesystem::path(TOOLGATE_SOURCE_DIR) / "examples";
  std::size_t checked = 0;
  for (const auto& file : std::filesystem::directory_iterator(examples)) {
    const std::filesystem::path& path = file.path();
    if (path.extension() != ".json") continue;
    auto plan = compile_ok(read_file(path));
    ASSERT_TRUE(plan) << path;
    std::filesystem::path calls = path;
    calls.replace_extension(".calls.jsonl");
    std::vector<Call> sent;
    if (std::filesystem::exists(calls)) {
      std::istringstream lines(read_file(calls));
      for (std::string line; std::getline(lines, line);) {
        CallRead read = read_call(line);
        if (read.call) sent.push_back(std::move(*read.call));
      }
    }
    // Also one call to every tools key that names a tool, with no arguments
    // (pending only when its limits need none).
    for (const ToolEntry& entry : plan->tools) {
      if (entry.key.find('*') == std::string::npos) sent.push_back(make_call(entry.key));
    }
    for (const Call& call : sent) {
      Evaluation evaluation = evaluate(*plan, call);
      if (evaluation.decision) continue;
      for (const LimitCheck& check : evaluation.pending.limits) {
        LimitInfo info = plan->find_limit(check.rule);
        ASSERT_NE(info.limit, nullptr) << path << ": " << check.rule;
        EXPECT_EQ(check.max, info.limit->max) << check.rule;
        EXPECT_EQ(check.message, info.limit->message) << check.rule;
        const CounterRequest& request = evaluation.pending.counters.at(check.counter);
        EXPECT_EQ(request.scope, info.limit->scope) << check.rule;
        EXPECT_EQ(request.window_ms, info.limit->window_ms) << check.rule;
        EXPECT_EQ(request.algorithm, info.limit->algorithm) << check.rule;
        if (info.tool) {
          EXPECT_EQ(plan->find_tool(call.tool), info.tool) << check.rule << " checked for " << call.tool;
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 10u) << "the examples should exercise limits";
}

// The compiler writes each limit's counter-key tail and generated message
// without nlohmann's DOM or serializer (so a cold start runs neither): over
// seeded random counter names (escapes, control characters, non-ASCII),
// windows (up to 999999999 days, past 2^53 ms) and maxima, both are exactly
// what the DOM and the serializer wrote before.
TEST(PlanLimits, KeyTailAndMessageAreWhatTheSerializerWrites) {
  std::mt19937_64 rng(17);
  const std::vector<std::string> pieces = {"a", "runs", "\"", "\\", "\n", "\t", "\x01", "\x1f", "\x7f",
                                           "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "/", " ", "~0", "0"};
  const std::vector<json> windows = {"second", "minute", "hour", "day", "10s", "5m", "2h", "1d", "999999999d",
                                     "123456789h", "999999999s", json(1), json(59), json(1e12), json(999999999999)};
  const std::vector<double> maxima = {1, 2, 10, 1000, 65536, 4294967296.0, 123456789012345.0, 9007199254740991.0};
  std::size_t checked = 0;
  for (int round = 0; round < 400; ++round) {
    std::string counter;
    for (std::size_t i = 0, n = 1 + rng() % 5; i < n; ++i) counter += pieces[rng() % pieces.size()];
    const json window = windows[rng() % windows.size()];
    const double max = maxima[rng() % maxima.size()];
    const bool sliding = rng() % 2 == 1;
    const bool named = rng() % 2 == 1;
    json limit = {{"window", window}, {"max", max}, {"algorithm", sliding ? "sliding" : "fixed"}};
    if (named) limit["counter"] = counter;
    if (rng() % 3 == 0) limit["cost"] = 2;
    const json policy = {{"version", "1"}, {"default", "deny"}, {"tools", {{"t", {{"limits", json::array({limit})}}}}}};
    auto plan = compile_ok(policy.dump(), false);
    ASSERT_TRUE(plan) << policy.dump();
    const Limit& compiled = plan->tools.at(0).rules.limits.at(0);
    const std::string middle =
        canonical_json(json::array({compiled.counter, compiled.window_ms, sliding ? "sliding" : "fixed"}));
    EXPECT_EQ(compiled.key_tail, middle.substr(1, middle.size() - 2)) << policy.dump();
    const std::string at_most = "Rate limit exceeded: at most " + describe(number_json(max)) + " ";
    EXPECT_EQ(compiled.message.rfind(at_most, 0), 0u) << compiled.message << " / " << at_most;
    ++checked;
  }
  EXPECT_EQ(checked, 400u);
}

}  // namespace
}  // namespace toolgate
