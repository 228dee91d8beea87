// "mode": "monitor" on the document or on a tool entry (docs: site/guide/operate.md):
// accepted and checked by the compiler, reported by Plan::monitored(), and
// never changing a decision (the proxy forwards what a monitored policy would
// refuse; the core decides as always).
#include <gtest/gtest.h>

#include <string>

#include "test_support.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using test::compile_errors;
using test::compile_ok;
using test::decide;
using test::make_call;

TEST(Mode, EnforceIsTheDefaultAndMonitorIsAccepted) {
  auto plain = compile_ok(R"({"version": "1", "default": "deny", "tools": {"run": {}}})", false);
  EXPECT_FALSE(plain->monitored("run"));
  auto enforced = compile_ok(R"({"version": "1", "default": "deny", "mode": "enforce", "tools": {"run": {"mode": "enforce"}}})", false);
  EXPECT_FALSE(enforced->monitored("run"));
  auto whole = compile_ok(R"({"version": "1", "default": "deny", "mode": "monitor", "hide": ["secret"], "tools": {"run": {}}})", false);
  EXPECT_TRUE(whole->monitored("run"));
  EXPECT_TRUE(whole->monitored("other"));
  EXPECT_TRUE(whole->monitored("secret"));
}

TEST(Mode, AToolEntryInMonitorModeCoversTheCallsItGoverns) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "hide": ["deploy_prod"],
    "tools": {"deploy_*": {"mode": "monitor", "rate_limit": "1/hour"}, "deploy_staging": {}, "run": {}}})", false);
  EXPECT_TRUE(plan->monitored("deploy_dev"));
  EXPECT_FALSE(plan->monitored("deploy_staging")) << "the exact entry governs it, not the glob";
  EXPECT_FALSE(plan->monitored("deploy_prod")) << "hidden: the hide entry governs it";
  EXPECT_FALSE(plan->monitored("run"));
  EXPECT_FALSE(plan->monitored("other"));
}

TEST(Mode, AnythingElseIsAnError) {
  for (const char* text : {R"({"version": "1", "default": "deny", "mode": "audit"})",
                           R"({"version": "1", "default": "deny", "mode": true})",
                           R"({"version": "1", "default": "deny", "tools": {"run": {"mode": "Monitor"}}})"}) {
    auto diagnostics = compile_errors(text);
    ASSERT_EQ(diagnostics.size(), 1u) << text;
    EXPECT_EQ(diagnostics[0].code, "invalid_value");
    EXPECT_NE(diagnostics[0].message.find("\"mode\" must be \"enforce\" or \"monitor\""), std::string::npos);
  }
  auto nested = compile_errors(R"({"version": "1", "default": "deny", "all_tools": {"mode": "monitor"}})");
  EXPECT_EQ(nested[0].code, "unknown_field");
}

TEST(Mode, DecisionsAreTheSameInEitherMode) {
  const std::string body = R"("default": "deny", "hide": ["h"], "tools": {"run": {"rate_limit": "1/minute",
    "require": [{"path": "args.n", "op": "lt", "value": 5}]}, "ask": {"action": "require_approval"}})";
  auto enforced = compile_ok(R"({"version": "1", )" + body + "}");
  auto monitored = compile_ok(R"({"version": "1", "mode": "monitor", )" + body + "}");
  for (const char* tool : {"run", "ask", "h", "other"}) {
    for (int n : {1, 9}) {
      for (double count : {0.0, 1.0}) {
        Call call = make_call(tool, json{{"n", n}});
        EXPECT_EQ(to_json(decide(enforced, call, {CounterState{count, 0}})), to_json(decide(monitored, call, {CounterState{count, 0}})))
            << tool << " " << n << " " << count;
      }
    }
  }
}

}  // namespace
}  // namespace toolgate
