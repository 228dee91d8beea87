// The spec's order of evaluation (first denial wins): calls that violate
// several steps at once are decided by the earliest, with its rule pointer.
//
//   invalid_call, hidden, default_deny, tool_denied, invalid_arguments,
//   requirement_failed (tool, then all_tools), condition_denied (tool, then
//   all_tools), approval_required, rate_limited (tool's, then all_tools'), allowed
#include <gtest/gtest.h>

#include <string>

#include "test_support.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using test::compile_ok;
using test::decide;
using test::kT0;
using test::make_call;

const char* kPolicy = R"({
  "version": "1", "default": "deny",
  "hide": ["secret_*"],
  "all_tools": {
    "require": [{"path": "grant.id", "op": "neq", "value": "anonymous"}],
    "deny_if": [{"conditions": [{"path": "args.dry_run", "op": "eq", "value": false}], "on_deny": "Dry runs only."}],
    "limits": [{"counter": "all", "window": "minute", "max": 100}]
  },
  "tools": {
    "secret_deploy": {"action": "deny"},
    "blocked": {"action": "deny", "args": {"type": "object", "additionalProperties": false},
                "require": [{"path": "args.never", "op": "exists"}]},
    "deploy": {
      "action": "require_approval",
      "args": {"type": "object", "properties": {"env": {"enum": ["staging", "prod"]}}, "required": ["env"]},
      "require": [{"path": "args.ticket", "op": "exists"}],
      "deny_if": [{"conditions": [{"path": "args.env", "op": "eq", "value": "prod"},
                                  {"path": "grant.role", "op": "neq", "value": "admin"}]}],
      "limits": [{"window": "minute", "max": 1}]
    }
  }
})";

class Order : public ::testing::Test {
 protected:
  void SetUp() override {
    plan_ = compile_ok(kPolicy);
    ASSERT_TRUE(plan_);
  }

  // A deploy call. `role` empty: the anonymous grant.
  Call deploy(json arguments, const std::string& role = "") {
    Call call = make_call("deploy", std::move(arguments), role.empty() ? "anonymous" : "alice", kT0);
    if (!role.empty()) call.grant.attributes = {{"role", role}};
    return call;
  }

  Decision run(const Call& call, bool approved = false, double used = 0) {
    return decide(plan_, call, {CounterState{used, 0}, CounterState{used, 0}}, approved);
  }

  void expect(const Decision& d, Verdict verdict, const std::string& code, const std::string& rule) {
    EXPECT_EQ(d.verdict, verdict) << code << ": " << d.message;
    EXPECT_EQ(d.code, code) << d.message;
    EXPECT_EQ(d.rule, rule) << code;
  }

  std::shared_ptr<const Plan> plan_;
};

TEST_F(Order, InvalidCallFirst) {
  // Arguments that are not an object, to a tool that is also hidden.
  Call call = make_call("secret_deploy");
  call.arguments = json::array({1, 2});
  expect(decide(plan_, call), Verdict::deny, "invalid_call", "");
  call.arguments = "x";
  expect(decide(plan_, call), Verdict::deny, "invalid_call", "");
  Call no_tool = make_call("");
  expect(decide(plan_, no_tool), Verdict::deny, "invalid_call", "");
}

TEST_F(Order, HiddenBeatsEntriesAndDefault) {
  // Hidden, with an entry that would deny anyway, or with no entry at all.
  expect(decide(plan_, make_call("secret_deploy", {{"env", 1}}, "anonymous")), Verdict::deny, "hidden", "/hide/0");
  expect(decide(plan_, make_call("secret_other")), Verdict::deny, "hidden", "/hide/0");
}

TEST_F(Order, DefaultDenyBeatsAllTools) {
  // No entry: all_tools' requirement (anonymous) and deny_if would fail too.
  expect(decide(plan_, make_call("unknown", {{"dry_run", false}}, "anonymous")), Verdict::deny, "default_deny",
         "/default");
}

TEST_F(Order, ToolDeniedBeatsArgumentsAndRequirements) {
  expect(decide(plan_, make_call("blocked", {{"extra", 1}, {"dry_run", false}}, "anonymous")), Verdict::deny,
         "tool_denied", "/tools/blocked/action");
}

TEST_F(Order, InvalidArgumentsBeatsRequirementsAndConditions) {
  // Schema fails (env "dev"), tool requirement fails (no ticket), all_tools'
  // requirement fails (anonymous), all_tools' deny_if holds (dry_run false).
  expect(run(deploy({{"env", "dev"}, {"dry_run", false}})), Verdict::deny, "invalid_arguments",
         "/tools/deploy/args");
}

TEST_F(Order, RequirementsToolThenAllTools) {
  // Both requirements fail, and both deny_ifs hold.
  expect(run(deploy({{"env", "prod"}, {"dry_run", false}})), Verdict::deny, "requirement_failed",
         "/tools/deploy/require/0");
  // With a ticket, all_tools' requirement (not anonymous) is next.
  expect(run(deploy({{"env", "prod"}, {"dry_run", false}, {"ticket", "OPS-1"}})), Verdict::deny,
         "requirement_failed", "/all_tools/require/0");
}

TEST_F(Order, ConditionsToolThenAllTools) {
  // Both deny_ifs hold.
  expect(run(deploy({{"env", "prod"}, {"dry_run", false}, {"ticket", "OPS-1"}}, "dev")), Verdict::deny,
         "condition_denied", "/tools/deploy/deny_if/0");
  expect(run(deploy({{"env", "prod"}, {"dry_run", false}, {"ticket", "OPS-1"}}, "admin")), Verdict::deny,
         "condition_denied", "/all_tools/deny_if/0");
}

TEST_F(Order, ApprovalBeatsLimits) {
  // Every count is exhausted, but the missing approval is reported first.
  Decision d = run(deploy({{"env", "prod"}, {"dry_run", true}, {"ticket", "OPS-1"}}, "admin"), false, 100);
  expect(d, Verdict::approval_required, "approval_required", "/tools/deploy/action");
  EXPECT_TRUE(d.approval_id.has_value());
  EXPECT_FALSE(d.retry_after_ms.has_value());
}

TEST_F(Order, LimitsToolThenAllToolsThenAllowed) {
  const Call call = deploy({{"env", "prod"}, {"dry_run", true}, {"ticket", "OPS-1"}}, "admin");
  // Approved, both limits exhausted: the tool's limit decides.
  Decision d = run(call, true, 100);
  expect(d, Verdict::deny, "rate_limited", "/tools/deploy/limits/0");
  EXPECT_TRUE(d.retry_after_ms.has_value());
  // Only all_tools' exhausted.
  d = decide(plan_, call, {CounterState{0, 0}, CounterState{100, 0}}, true);
  expect(d, Verdict::deny, "rate_limited", "/all_tools/limits/0");
  // Nothing left to deny.
  d = run(call, true, 0);
  expect(d, Verdict::allow, "allowed", "/tools/deploy");
  EXPECT_FALSE(d.approval_id.has_value());
  EXPECT_FALSE(d.retry_after_ms.has_value());
}

// An evaluation error (type confusion) denies at the step of the condition
// that raised it, so an earlier step still wins.
TEST(OrderOfErrors, TypeErrorsDenyAtTheirConditionsStep) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny",
    "all_tools": {"require": [{"path": "grant.id", "op": "neq", "value": "anonymous"}]},
    "tools": {"t": {
      "args": {"type": "object", "properties": {"n": {"type": ["number", "string"]}}},
      "require": [{"path": "args.ok", "op": "eq", "value": true}],
      "deny_if": [{"conditions": [{"path": "args.n", "op": "gt", "value": 10}]}]}}})");
  // Requirement fails before the deny_if's type error is reached.
  Decision d = decide(plan, make_call("t", {{"n", "12"}}, "alice"));
  EXPECT_EQ(d.code, "requirement_failed");
  EXPECT_EQ(d.rule, "/tools/t/require/0");
  // Tool requirement holds; all_tools' requirement fails before the tool's deny_if.
  d = decide(plan, make_call("t", {{"n", "12"}, {"ok", true}}, "anonymous"));
  EXPECT_EQ(d.code, "requirement_failed");
  EXPECT_EQ(d.rule, "/all_tools/require/0");
  // All requirements hold: the deny_if's type error denies.
  d = decide(plan, make_call("t", {{"n", "12"}, {"ok", true}}, "alice"));
  EXPECT_EQ(d.code, "invalid_arguments");
  EXPECT_EQ(d.rule, "/tools/t/deny_if/0");
  // The schema runs before everything else.
  d = decide(plan, make_call("t", {{"n", true}, {"ok", false}}, "anonymous"));
  EXPECT_EQ(d.code, "invalid_arguments");
  EXPECT_EQ(d.rule, "/tools/t/args");
}

// Under default allow, a tool without an entry still goes through all_tools.
TEST(OrderOfErrors, NoEntryUnderDefaultAllow) {
  auto plan = compile_ok(R"({"version": "1", "default": "allow",
    "all_tools": {"require": [{"path": "grant.id", "op": "neq", "value": "anonymous"}],
                  "deny_if": [{"conditions": [{"path": "args.force", "op": "eq", "value": true}]}],
                  "limits": [{"window": "minute", "max": 1}]}})");
  EXPECT_EQ(decide(plan, make_call("x", {{"force", true}}, "anonymous")).rule, "/all_tools/require/0");
  EXPECT_EQ(decide(plan, make_call("x", {{"force", true}}, "alice")).rule, "/all_tools/deny_if/0");
  EXPECT_EQ(decide(plan, make_call("x", {}, "alice"), {CounterState{1, 0}}).rule, "/all_tools/limits/0");
  Decision d = decide(plan, make_call("x", {}, "alice"));
  EXPECT_EQ(d.code, "allowed");
  EXPECT_EQ(d.rule, "/default");
}

// An allowed call with nothing to count is decided by evaluate() alone.
TEST(OrderOfErrors, AllowedWithoutLimitsNeedsNoStore) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"search": {}}})");
  Evaluation e = evaluate(*plan, make_call("search"));
  ASSERT_TRUE(e.decision);
  EXPECT_EQ(e.decision->code, "allowed");
  EXPECT_EQ(e.decision->rule, "/tools/search");
  EXPECT_EQ(e.decision->message, "Allowed.");
  // With limits the decision waits for the store.
  plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"search": {"rate_limit": "1/second"}}})");
  e = evaluate(*plan, make_call("search"));
  EXPECT_FALSE(e.decision);
  EXPECT_EQ(e.pending.allow_rule, "/tools/search");
  EXPECT_EQ(e.pending.tool, "search");
}

}  // namespace
}  // namespace toolgate
