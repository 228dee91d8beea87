// Decision traces: evaluate() and finish() with a Trace record the steps of a
// decision (entry matched, each condition with the value it read and whether
// it held, each limit with its count), and the same decision as without one.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_support.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using test::compile_ok;
using test::kT0;
using test::make_call;

const char* kPolicy = R"({ "version": "1", "default": "deny",
  "hide": ["secret_*"],
  "all_tools": { "deny_if": [ { "conditions": [ { "path": "args.path", "op": "starts_with", "value": "/etc" } ] } ] },
  "tools": {
    "refund": {
      "require": [ { "path": "args.amount", "op": "lte", "value": 100 }, { "path": "grant.role", "op": "eq", "value": "support" } ],
      "limits": [ { "window": "minute", "max": 2 } ]
    },
    "deploy": { "action": "require_approval" },
    "drop": { "action": "deny" }
  } })";

struct Traced {
  Decision decision;
  json steps;
};

// Decides a call with a trace; `states` as a store would answer.
Traced traced(const Plan& plan, const Call& call, std::vector<CounterState> states = {}, bool approved = false) {
  Trace trace;
  Evaluation evaluation = evaluate(plan, call, &trace);
  if (evaluation.decision) return {*evaluation.decision, trace.to_json()};
  states.resize(evaluation.pending.counters.size());
  Decision decision = finish(evaluation.pending, approved, states, &trace);
  return {decision, trace.to_json()};
}

Call refund(double amount, const char* role) {
  Call call = make_call("refund", json{{"amount", amount}});
  call.grant.attributes = json{{"role", role}};
  return call;
}

TEST(Trace, AnAllowedCallShowsTheEntryEachConditionWithItsValueAndTheLimitWithItsCount) {
  auto plan = compile_ok(kPolicy);
  Traced t = traced(*plan, refund(40, "support"), {CounterState{1, 0}});
  EXPECT_EQ(t.decision.code, "allowed");
  ASSERT_EQ(t.steps.size(), 5u) << t.steps.dump(2);
  EXPECT_EQ(t.steps[0], (json{{"step", "entry"}, {"rule", "/tools/refund"}, {"entry", "refund"}, {"default", "deny"}}));
  const json& require = t.steps[1];
  EXPECT_EQ(require["step"], "require");
  EXPECT_EQ(require["rule"], "/tools/refund/require/0");
  EXPECT_EQ(require["holds"], true);
  ASSERT_EQ(require["conditions"].size(), 1u);
  EXPECT_EQ(require["conditions"][0], (json{{"path", "args.amount"}, {"op", "lte"}, {"value", 100}, {"actual", 40}, {"holds", true}}));
  EXPECT_EQ(t.steps[2]["rule"], "/tools/refund/require/1");
  EXPECT_EQ(t.steps[2]["conditions"][0]["actual"], "support");
  EXPECT_EQ(t.steps[2]["conditions"][0]["holds"], true);
  // all_tools' deny_if: its path is missing from the call, so no "actual", and it does not hold.
  const json& deny_if = t.steps[3];
  EXPECT_EQ(deny_if["step"], "deny_if");
  EXPECT_EQ(deny_if["rule"], "/all_tools/deny_if/0");
  EXPECT_EQ(deny_if["holds"], false);
  EXPECT_FALSE(deny_if["conditions"][0].contains("actual"));
  const json& limit = t.steps[4];
  EXPECT_EQ(limit["step"], "limit");
  EXPECT_EQ(limit["rule"], "/tools/refund/limits/0");
  EXPECT_EQ(limit["count"], 1);
  EXPECT_EQ(limit["cost"], 1);
  EXPECT_EQ(limit["max"], 2);
  EXPECT_EQ(limit["admitted"], true);
  EXPECT_TRUE(limit["counter"].get<std::string>().rfind("tg1:", 0) == 0);
}

TEST(Trace, TheConditionThatFailedShowsTheValueItRead) {
  auto plan = compile_ok(kPolicy);
  Traced t = traced(*plan, refund(250, "support"));
  EXPECT_EQ(t.decision.code, "requirement_failed");
  ASSERT_EQ(t.steps.size(), 2u) << t.steps.dump(2);  // the first requirement that fails ends it
  EXPECT_EQ(t.steps[1]["holds"], false);
  EXPECT_EQ(t.steps[1]["conditions"][0]["actual"], 250);
  EXPECT_EQ(t.steps[1]["conditions"][0]["holds"], false);
  EXPECT_EQ(t.decision.rule, "/tools/refund/require/0");
}

TEST(Trace, ATypeErrorIsShownOnItsCondition) {
  auto plan = compile_ok(kPolicy);
  Call call = make_call("refund", json{{"amount", "lots"}});
  call.grant.attributes = json{{"role", "support"}};
  Traced t = traced(*plan, call);
  EXPECT_EQ(t.decision.code, "invalid_arguments");
  ASSERT_EQ(t.steps.size(), 2u) << t.steps.dump(2);
  EXPECT_EQ(t.steps[1]["conditions"][0]["actual"], "lots");
  EXPECT_TRUE(t.steps[1]["conditions"][0].contains("error"));
  EXPECT_TRUE(t.steps[1].contains("error"));
}

TEST(Trace, ARateLimitedCallShowsTheCountThatRefusedIt) {
  auto plan = compile_ok(kPolicy);
  Traced t = traced(*plan, refund(40, "support"), {CounterState{2, 0}});
  EXPECT_EQ(t.decision.code, "rate_limited");
  EXPECT_EQ(t.steps.back()["step"], "limit");
  EXPECT_EQ(t.steps.back()["count"], 2);
  EXPECT_EQ(t.steps.back()["admitted"], false);
}

TEST(Trace, HiddenDefaultDeniedDeniedToolsAndApprovals) {
  auto plan = compile_ok(kPolicy);
  Traced hidden = traced(*plan, make_call("secret_keys"));
  EXPECT_EQ(hidden.steps, (json::array({{{"step", "hide"}, {"rule", "/hide/0"}, {"hidden", true}}})));
  Traced unknown = traced(*plan, make_call("other"));
  EXPECT_EQ(unknown.decision.code, "default_deny");
  EXPECT_EQ(unknown.steps, (json::array({{{"step", "entry"}, {"rule", "/default"}, {"entry", nullptr}, {"default", "deny"}}})));
  Traced dropped = traced(*plan, make_call("drop"));
  EXPECT_EQ(dropped.steps.back(), (json{{"step", "action"}, {"rule", "/tools/drop/action"}, {"action", "deny"}}));
  Traced waiting = traced(*plan, make_call("deploy"));
  EXPECT_EQ(waiting.decision.code, "approval_required");
  EXPECT_EQ(waiting.steps.back()["step"], "approval");
  EXPECT_EQ(waiting.steps.back()["approved"], false);
  EXPECT_EQ(waiting.steps.back()["approval_id"], *waiting.decision.approval_id);
  Traced approved = traced(*plan, make_call("deploy"), {}, true);
  EXPECT_EQ(approved.decision.code, "allowed");
  EXPECT_EQ(approved.steps.back()["approved"], true);
}

TEST(Trace, TracingNeverChangesTheDecision) {
  auto plan = compile_ok(kPolicy);
  std::vector<Call> calls = {refund(40, "support"), refund(250, "support"), refund(40, "sales"), make_call("secret_x"),
                             make_call("deploy"), make_call("drop"), make_call("other"),
                             make_call("refund", json{{"amount", 5}, {"path", "/etc/passwd"}})};
  for (double count : {0.0, 1.0, 2.0, 5.0}) {
    for (const Call& call : calls) {
      for (bool approved : {false, true}) {
        std::vector<CounterState> states = {CounterState{count, count}};
        Decision plain = test::decide(plan, call, states, approved);
        Traced with_trace = traced(*plan, call, states, approved);
        EXPECT_EQ(to_json(plain), to_json(with_trace.decision)) << call.tool << " " << count;
        EXPECT_FALSE(with_trace.steps.empty());
      }
    }
  }
}

}  // namespace
}  // namespace toolgate
