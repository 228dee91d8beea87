// Approvals: the approval id (SHA-256 of the RFC 8785 form of
// {"arguments", "grant", "tool"}), the approval timeout, and that an approved
// call still goes through its limits.
#include <gtest/gtest.h>

#include <string>

#include "test_support.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using test::compile_ok;
using test::decide;
using test::kMinute;
using test::kSecond;
using test::kT0;
using test::make_call;
using test::parse_call;
using test::Session;

const char* kDeployPolicy = R"({"version": "1", "default": "deny", "tools": {
    "deploy": {"action": "require_approval", "limits": [{"window": "minute", "max": 2}]},
    "deploy_*": {"action": "require_approval", "approval": {"timeout": "30s"}},
    "status": {}
  }})";

std::string expected_id(const json& arguments, const std::string& grant, const std::string& tool) {
  return sha256_hex(canonical_json(json{{"arguments", arguments}, {"grant", grant}, {"tool", tool}}));
}

Decision approval_decision(const std::string& call_text) {
  auto plan = compile_ok(kDeployPolicy);
  return decide(plan, parse_call(call_text));
}

TEST(Approval, DecisionCarriesTheId) {
  Decision d = approval_decision(R"({"tool": "deploy", "grant": "alice", "arguments": {"env": "prod", "replicas": 3}})");
  EXPECT_EQ(d.verdict, Verdict::approval_required);
  EXPECT_EQ(d.code, "approval_required");
  EXPECT_EQ(d.rule, "/tools/deploy/action");
  ASSERT_TRUE(d.approval_id.has_value());
  EXPECT_EQ(*d.approval_id, expected_id({{"env", "prod"}, {"replicas", 3}}, "alice", "deploy"));
  EXPECT_NE(d.message.find(*d.approval_id), std::string::npos) << d.message;
  EXPECT_FALSE(d.retry_after_ms.has_value());
}

// Verified with Node.js:
//   node -e 'const c=require("crypto");console.log(c.createHash("sha256").update(JSON.stringify(
//     {arguments:{env:"prod",replicas:3},grant:"alice",tool:"deploy"})).digest("hex"))'
TEST(Approval, IdMatchesNode) {
  const char* kExpected = "bdf796348cd035123b1602855efee016a56ab4248b6c78a960c212455ba9b7ad";
  EXPECT_EQ(expected_id({{"env", "prod"}, {"replicas", 3}}, "alice", "deploy"), kExpected);
  // The same call written differently (key order, 3.0, whitespace, grant
  // attributes) has the same id: only the canonical form counts.
  for (const char* call : {
           R"({"tool": "deploy", "grant": "alice", "arguments": {"env": "prod", "replicas": 3}})",
           R"({"arguments": {"replicas": 3.0, "env": "prod"}, "tool": "deploy", "grant": "alice"})",
           R"({"tool":"deploy","grant":{"id":"alice","role":"sre"},"arguments":{"replicas":30e-1,"env":"prod"}})",
           R"({"tool": "deploy", "grant": "alice", "now": 5, "arguments": {"env": "pro\u0064", "replicas": 3}})",
       }) {
    Decision d = approval_decision(call);
    ASSERT_TRUE(d.approval_id) << call;
    EXPECT_EQ(*d.approval_id, kExpected) << call;
  }
  // Unicode, number formatting (1e21 is written 1e+21) and UTF-16 key order:
  //   JSON.stringify({arguments:{list:[1.5,true,null],n:1e21,note:"café ☕"},grant:"alice",tool:"deploy"})
  Decision d = approval_decision(
      R"({"tool": "deploy", "grant": "alice", "arguments": {"note": "café ☕", "n": 1000000000000000000000, "list": [1.5, true, null]}})");
  ASSERT_TRUE(d.approval_id);
  EXPECT_EQ(*d.approval_id, "30e935c5c57a3211973c3c0945c1999c21e52b961058f467912191a2e1e9a4bd");
  // No arguments, default grant: JSON.stringify({arguments:{},grant:"anonymous",tool:"deploy"})
  d = approval_decision(R"({"tool": "deploy"})");
  ASSERT_TRUE(d.approval_id);
  EXPECT_EQ(*d.approval_id, "9001916178dbb97f12e524a4920e1211ea16dee06638bbb57fe9e0cf61ee3c21");
}

TEST(Approval, DifferentCallsHaveDifferentIds) {
  auto id = [](const std::string& call) { return approval_decision(call).approval_id.value_or("none"); };
  const std::string base = id(R"({"tool": "deploy", "grant": "alice", "arguments": {"env": "prod"}})");
  EXPECT_EQ(base, id(R"({"tool": "deploy", "grant": "alice", "arguments": {"env": "prod"}})"));
  EXPECT_NE(base, id(R"({"tool": "deploy", "grant": "bob", "arguments": {"env": "prod"}})"));
  EXPECT_NE(base, id(R"({"tool": "deploy", "grant": "alice", "arguments": {"env": "staging"}})"));
  EXPECT_NE(base, id(R"({"tool": "deploy", "grant": "alice", "arguments": {"env": "prod", "force": false}})"));
  EXPECT_NE(base, id(R"({"tool": "deploy", "grant": "alice", "arguments": {"env": ["prod"]}})"));
  EXPECT_NE(base, id(R"({"tool": "deploy_prod", "grant": "alice", "arguments": {"env": "prod"}})"));
  // The id names the tool called, not the glob key that governs it.
  EXPECT_EQ(id(R"({"tool": "deploy_prod", "grant": "alice"})"), expected_id(json::object(), "alice", "deploy_prod"));
  EXPECT_EQ(id(R"({"tool": "deploy", "grant": "alice", "arguments": {"n": 1}})"),
            id(R"({"tool": "deploy", "grant": "alice", "arguments": {"n": 1.0}})"));
  EXPECT_NE(id(R"({"tool": "deploy", "grant": "alice", "arguments": {"n": 1}})"),
            id(R"({"tool": "deploy", "grant": "alice", "arguments": {"n": "1"}})"));
  // Time is not part of the id.
  EXPECT_EQ(id(R"({"tool": "deploy", "grant": "alice", "now": 1})"),
            id(R"({"tool": "deploy", "grant": "alice", "now": 1767225600000})"));
}

TEST(Approval, TimeoutParses) {
  struct Case {
    std::string approval;  // the "approval" field, or empty for none
    std::int64_t timeout_ms;
  };
  const Case cases[] = {
      {"", 600000},  // default: 10 minutes
      {R"({})", 600000},
      {R"({"timeout": "30s"})", 30000},
      {R"({"timeout": "10m"})", 600000},
      {R"({"timeout": "2h"})", 7200000},
      {R"({"timeout": "1d"})", 86400000},
      {R"({"timeout": "minute"})", 60000},
      {R"({"timeout": 45})", 45000},
  };
  for (const Case& c : cases) {
    std::string entry = R"({"action": "require_approval")";
    if (!c.approval.empty()) entry += R"(, "approval": )" + c.approval;
    entry += "}";
    auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"deploy": )" + entry + "}}", false);
    ASSERT_TRUE(plan) << c.approval;
    Evaluation e = evaluate(*plan, make_call("deploy"));
    ASSERT_FALSE(e.decision) << c.approval;
    ASSERT_TRUE(e.pending.approval) << c.approval;
    EXPECT_EQ(e.pending.approval->timeout_ms, c.timeout_ms) << c.approval;
    EXPECT_EQ(e.pending.approval->rule, "/tools/deploy/action");
    EXPECT_EQ(e.pending.approval->id, expected_id(json::object(), "alice", "deploy"));
  }
}

TEST(Approval, NoApprovalNeededForOtherActions) {
  auto plan = compile_ok(kDeployPolicy);
  Evaluation e = evaluate(*plan, make_call("status"));
  ASSERT_TRUE(e.decision);
  EXPECT_EQ(e.decision->code, "allowed");
  EXPECT_FALSE(e.decision->approval_id);
}

// finish(pending, approved = true) goes on to the limits.
TEST(Approval, ApprovedCallsStillGoThroughLimits) {
  auto plan = compile_ok(kDeployPolicy);
  Evaluation e = evaluate(*plan, make_call("deploy", {{"env", "prod"}}, "alice", kT0 + 10 * kSecond));
  ASSERT_FALSE(e.decision);
  ASSERT_TRUE(e.pending.approval);
  ASSERT_EQ(e.pending.counters.size(), 1u);

  Decision d = finish(e.pending, false, {});
  EXPECT_EQ(d.verdict, Verdict::approval_required);
  EXPECT_EQ(d.approval_id, e.pending.approval->id);

  std::vector<CounterState> fresh(1);
  d = finish(e.pending, true, fresh);
  EXPECT_EQ(d.verdict, Verdict::allow);
  EXPECT_EQ(d.code, "allowed");
  EXPECT_EQ(d.rule, "/tools/deploy");
  EXPECT_EQ(d.message, "Allowed with a human's approval.");
  EXPECT_FALSE(d.approval_id);

  std::vector<CounterState> full{{2, 0}};
  d = finish(e.pending, true, full);
  EXPECT_EQ(d.code, "rate_limited");
  EXPECT_EQ(d.rule, "/tools/deploy/limits/0");
  EXPECT_EQ(d.retry_after_ms, 50 * kSecond);
  EXPECT_FALSE(d.approval_id);
  // Without the approval the counts do not matter (and are not needed).
  d = finish(e.pending, false, full);
  EXPECT_EQ(d.code, "approval_required");
}

// The whole flow with a store: ask, approve, use once, ask again; an
// approval expires after its timeout; limits apply to approved calls.
TEST(Approval, FlowWithSimulatedStores) {
  Session session(kDeployPolicy);
  const json args = {{"env", "prod"}};
  Decision first = session.call("deploy", args, "alice", kT0);
  ASSERT_EQ(first.code, "approval_required");
  const std::string id = first.approval_id.value();
  // Asking again without an approval: the same id, nothing counted.
  EXPECT_EQ(session.call("deploy", args, "alice", kT0 + 1).approval_id, id);

  session.approve(id, kT0 + 2);
  // Another grant or other arguments are not approved by it.
  EXPECT_EQ(session.call("deploy", args, "bob", kT0 + 3).code, "approval_required");
  EXPECT_EQ(session.call("deploy", {{"env", "staging"}}, "alice", kT0 + 3).code, "approval_required");
  EXPECT_EQ(session.call("deploy", args, "alice", kT0 + 4).code, "allowed");
  // Once.
  EXPECT_EQ(session.call("deploy", args, "alice", kT0 + 5).code, "approval_required");

  // An approval is valid for the timeout (10 minutes by default) ...
  session.approve(id, kT0 + kMinute);
  EXPECT_EQ(session.call("deploy", args, "alice", kT0 + 11 * kMinute).code, "allowed");
  // ... and not after it.
  session.approve(id, kT0 + 20 * kMinute);
  EXPECT_EQ(session.call("deploy", args, "alice", kT0 + 30 * kMinute + 1).code, "approval_required");

  // The glob entry's 30 s timeout.
  Decision prod = session.call("deploy_prod", json::object(), "alice", kT0);
  session.approve(prod.approval_id.value(), kT0);
  EXPECT_EQ(session.call("deploy_prod", json::object(), "alice", kT0 + 30 * kSecond + 1).code, "approval_required");
  session.approve(prod.approval_id.value(), kT0);
  EXPECT_EQ(session.call("deploy_prod", json::object(), "alice", kT0 + 30 * kSecond).code, "allowed");
}

TEST(Approval, LimitsApplyToApprovedCalls) {
  Session session(kDeployPolicy);
  const std::int64_t t = kT0 + 5 * kMinute;
  for (int i = 0; i < 2; ++i) {
    Decision ask = session.call("deploy", {{"n", i}}, "alice", t);
    session.approve(ask.approval_id.value(), t);
    EXPECT_EQ(session.call("deploy", {{"n", i}}, "alice", t).code, "allowed");
  }
  Decision ask = session.call("deploy", {{"n", 2}}, "alice", t);
  ASSERT_EQ(ask.code, "approval_required");
  session.approve(ask.approval_id.value(), t);
  Decision d = session.call("deploy", {{"n", 2}}, "alice", t + kSecond);
  EXPECT_EQ(d.code, "rate_limited");
  EXPECT_EQ(d.retry_after_ms, kMinute - kSecond);
  // The approval was not used up by the rate-limited call: next minute it works.
  EXPECT_EQ(session.call("deploy", {{"n", 2}}, "alice", t + kMinute).code, "allowed");
}

}  // namespace
}  // namespace toolgate
