// The JSON wire format: calls in (defaults, grants, timestamps, malformed
// lines), decisions out, and the pending-call / counter-state round trip
// between the core and a host's store.
#include "wire.h"

#include <gtest/gtest.h>

#include <string>

#include "test_support.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using test::compile_ok;
using test::kT0;
using test::make_call;

CallRead read(const std::string& text, std::int64_t default_now_ms = 42) {
  CallReadOptions options;
  options.default_now_ms = default_now_ms;
  return read_call(text, options);
}

TEST(WireReadCall, Defaults) {
  CallRead r = read(R"({"tool": "run"})");
  ASSERT_TRUE(r.call) << r.error;
  EXPECT_EQ(r.call->tool, "run");
  EXPECT_EQ(r.call->arguments, json::object());
  EXPECT_EQ(r.call->grant.id, "anonymous");
  EXPECT_EQ(r.call->grant.attributes, json::object());
  EXPECT_EQ(r.call->now_ms, 42);
  EXPECT_FALSE(r.expect);
  EXPECT_TRUE(r.error.empty());
}

TEST(WireReadCall, AllFields) {
  CallRead r = read(R"({"tool": "create_refund", "arguments": {"amount": 500, "tags": ["a"]},
                        "grant": "alice", "now": 1767225600000, "expect": {"decision": "allow"}})");
  ASSERT_TRUE(r.call) << r.error;
  EXPECT_EQ(r.call->tool, "create_refund");
  EXPECT_EQ(r.call->arguments, json::parse(R"({"amount": 500, "tags": ["a"]})"));
  EXPECT_EQ(r.call->grant.id, "alice");
  EXPECT_EQ(r.call->now_ms, kT0);
  ASSERT_TRUE(r.expect);
  EXPECT_EQ(*r.expect, json::parse(R"({"decision": "allow"})"));
}

TEST(WireReadCall, GrantObjectWithAttributes) {
  CallRead r = read(R"({"tool": "run", "grant": {"id": "alice", "role": "ci", "team": {"name": "pay"}, "level": 3}})");
  ASSERT_TRUE(r.call) << r.error;
  EXPECT_EQ(r.call->grant.id, "alice");
  // Everything but "id".
  EXPECT_EQ(r.call->grant.attributes, json::parse(R"({"role": "ci", "team": {"name": "pay"}, "level": 3})"));
  r = read(R"({"tool": "run", "grant": {"id": "bob"}})");
  ASSERT_TRUE(r.call);
  EXPECT_EQ(r.call->grant.attributes, json::object());
}

TEST(WireReadCall, BadGrants) {
  for (const char* grant : {R"({"role": "ci"})", R"({"id": ""})", R"({"id": 5})", R"({"id": null})", R"("")", "5",
                            "null", R"(["alice"])", "true"}) {
    CallRead r = read(std::string(R"({"tool": "run", "grant": )") + grant + "}");
    EXPECT_FALSE(r.call) << grant;
    EXPECT_NE(r.error.find("grant"), std::string::npos) << grant << ": " << r.error;
  }
}

TEST(WireReadCall, Timestamps) {
  struct Case {
    std::string now;
    std::int64_t ms;
  };
  const Case cases[] = {
      {"1767225600000", kT0},
      {"0", 0},
      {"-1000", -1000},
      {"1767225600000.9", kT0},  // whole milliseconds, rounded down
      {"1.7672256e12", kT0},
      {R"("2026-01-01T00:00:00Z")", kT0},
      {R"("2026-01-01T00:00:00.5Z")", kT0 + 500},
      {R"("2026-01-01T00:00:00.123Z")", kT0 + 123},
      {R"("2026-01-01T00:00:00.123456789Z")", kT0 + 123},
      {R"("2026-01-01T00:00:00.05Z")", kT0 + 50},
      {R"("2026-01-01T02:00:00+02:00")", kT0},
      {R"("2025-12-31T19:00:00-05:00")", kT0},
      {R"("2026-01-01T05:30:00+05:30")", kT0},
      {R"("2026-01-01T00:00:00+00:00")", kT0},
      {R"("2026-01-01T00:00:00-00:00")", kT0},
      {R"("2026-01-01")", kT0},  // a date alone: midnight UTC
      {R"("2026-01-01t00:00:00z")", kT0},
      {R"("2026-01-01 00:00:00Z")", kT0},
      {R"("2026-01-01T12:34:56Z")", kT0 + ((12 * 60 + 34) * 60 + 56) * 1000LL},
      {R"("2028-02-29T00:00:00Z")", 1835395200000},
      {R"("1970-01-01T00:00:00Z")", 0},
      {R"("1969-12-31T23:59:59Z")", -1000},
      {R"("2016-12-31T23:59:60Z")", 1483228799000},  // a leap second reads as :59
  };
  for (const Case& c : cases) {
    CallRead r = read(R"({"tool": "run", "now": )" + c.now + "}");
    ASSERT_TRUE(r.call) << c.now << ": " << r.error;
    EXPECT_EQ(r.call->now_ms, c.ms) << c.now;
    EXPECT_EQ(read_timestamp(json::parse(c.now)), c.ms) << c.now;
  }
}

TEST(WireReadCall, BadTimestamps) {
  for (const char* now : {R"("2026-01-01T00:00:00")", R"("2026-13-01T00:00:00Z")", R"("2026-00-10")",
                          R"("2026-01-32")", R"("2026-01-01T24:00:00Z")", R"("2026-01-01T00:60:00Z")",
                          R"("2026-01-01T00:00:00.Z")", R"("2026-01-01T00:00:00+0200")", R"("2026-01-01T00:00Z")",
                          R"("yesterday")", R"("")", R"("1767225600000")", R"("2026-1-1")", "true", "null", "[1]",
                          "9e15", "-9e15", R"("2026-01-01T00:00:00Zjunk")"}) {
    CallRead r = read(std::string(R"({"tool": "run", "now": )") + now + "}");
    EXPECT_FALSE(r.call) << now;
    EXPECT_NE(r.error.find("now"), std::string::npos) << now << ": " << r.error;
    EXPECT_FALSE(read_timestamp(json::parse(now))) << now;
  }
}

TEST(WireReadCall, MalformedLines) {
  struct Case {
    std::string text;
    std::string mentions;  // a word the error must contain
  };
  const Case cases[] = {
      {"", "syntax"},
      {"{", "syntax"},
      {"not json", "syntax"},
      {R"({"tool": "run",})", "syntax"},
      {"[1, 2]", "object"},
      {R"("run")", "object"},
      {"null", "object"},
      {R"({"arguments": {}})", "tool"},
      {R"({})", "tool"},
      {R"({"tool": 5})", "tool"},
      {R"({"tool": ""})", "tool"},
      {R"({"tool": null})", "tool"},
      {R"({"tool": ["run"]})", "tool"},
      {R"({"tool": "run", "arguments": []})", "arguments"},
      {R"({"tool": "run", "arguments": "x=1"})", "arguments"},
      {R"({"tool": "run", "arguments": null})", "arguments"},
      {R"({"tool": "run", "arguments": 5})", "arguments"},
      {R"({"tool": "run", "args": {}})", "\"args\""},
      {R"({"tool": "run", "Tool": "x"})", "\"Tool\""},
      {R"({"approve": "abc"})", "\"approve\""},
      // Duplicate keys are rejected, naming where: a condition and the upstream
      // server must never see different values.
      {R"({"tool": "refund", "arguments": {"amount": 1, "amount": 1e9}})", "/arguments/amount"},
      {R"({"tool": "refund", "arguments": {"a": {"b/c": 1, "b/c": 2}}})", "/arguments/a/b~1c"},
      {R"({"tool": "run", "tool": "rm"})", "/tool"},
  };
  for (const Case& c : cases) {
    CallRead r = read(c.text);
    EXPECT_FALSE(r.call) << c.text;
    EXPECT_FALSE(r.error.empty()) << c.text;
    EXPECT_NE(r.error.find(c.mentions), std::string::npos) << c.text << ": " << r.error;
    // The host turns the error into an invalid_call decision.
    Decision d = invalid_call(r.error);
    EXPECT_EQ(d.verdict, Verdict::deny);
    EXPECT_EQ(d.code, "invalid_call");
    EXPECT_NE(d.message.find(r.error), std::string::npos);
  }
}

TEST(WireReadCall, DeepArgumentsAreAnErrorNotACrash) {
  std::string deep = R"({"tool": "run", "arguments": {"a": )" + std::string(10000, '[') + std::string(10000, ']') + "}}";
  CallRead r = read(deep);
  EXPECT_FALSE(r.call);
  EXPECT_NE(r.error.find("deep"), std::string::npos) << r.error;

  std::string deep_objects = R"({"tool": "run", "arguments": )";
  for (int i = 0; i < 10000; ++i) deep_objects += R"({"a": )";
  deep_objects += "1" + std::string(10000, '}') + "}";
  r = read(deep_objects);
  EXPECT_FALSE(r.call);

  // The limit is configurable; within it, fine.
  CallReadOptions options;
  options.max_depth = 4;
  EXPECT_TRUE(read_call(R"({"tool": "run", "arguments": {"a": [[1]]}})", options).call);
  EXPECT_FALSE(read_call(R"({"tool": "run", "arguments": {"a": [[[1]]]}})", options).call);
  // Within the default limit (256) a deep but legal call is read.
  std::string ok = R"({"tool": "run", "arguments": {"a": )" + std::string(200, '[') + std::string(200, ']') + "}}";
  EXPECT_TRUE(read(ok).call);
}

TEST(WireReadCall, ReadCallValue) {
  CallRead r = read_call_value(json::parse(R"({"tool": "run", "grant": {"id": "a", "x": 1}})"));
  ASSERT_TRUE(r.call);
  EXPECT_EQ(r.call->grant.attributes, json::parse(R"({"x": 1})"));
  EXPECT_FALSE(read_call_value(json::array()).call);
  CallReadOptions options;
  options.default_now_ms = 7;
  EXPECT_EQ(read_call_value(json::parse(R"({"tool": "run"})"), options).call->now_ms, 7);
}

TEST(WireDecision, AllowHasExactlyFourFields) {
  Decision d;
  d.verdict = Verdict::allow;
  d.code = "allowed";
  d.rule = "/tools/run";
  d.message = "Allowed.";
  EXPECT_EQ(to_json(d), json::parse(R"({"decision": "allow", "code": "allowed", "rule": "/tools/run", "message": "Allowed."})"));
}

TEST(WireDecision, RetryAfterOnlyForRateLimitedAndApprovalIdOnlyForApproval) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {
      "run": {"rate_limit": "1/minute"}, "deploy": {"action": "require_approval"}}})");
  ASSERT_TRUE(plan);
  // rate_limited
  Decision limited = test::decide(plan, make_call("run", {}, "a", kT0 + 1000), {CounterState{1, 0}});
  json out = to_json(limited);
  EXPECT_EQ(out["decision"], "deny");
  EXPECT_EQ(out["code"], "rate_limited");
  EXPECT_EQ(out["rule"], "/tools/run/rate_limit");
  EXPECT_EQ(out["retry_after_ms"], 59000);
  EXPECT_FALSE(out.contains("approval_id"));
  EXPECT_EQ(out.size(), 5u);
  // approval_required
  Decision approval = test::decide(plan, make_call("deploy"));
  out = to_json(approval);
  EXPECT_EQ(out["decision"], "approval_required");
  EXPECT_EQ(out["code"], "approval_required");
  EXPECT_TRUE(out["approval_id"].is_string());
  EXPECT_EQ(out["approval_id"].get<std::string>().size(), 64u);
  EXPECT_FALSE(out.contains("retry_after_ms"));
  EXPECT_EQ(out.size(), 5u);
  // Other denials: neither.
  for (const Call& call : {make_call("other"), make_call("")}) {
    out = to_json(test::decide(plan, call));
    EXPECT_EQ(out["decision"], "deny");
    EXPECT_FALSE(out.contains("retry_after_ms"));
    EXPECT_FALSE(out.contains("approval_id"));
    EXPECT_EQ(out.size(), 4u);
  }
  EXPECT_EQ(to_json(invalid_call("bad")), json::parse(R"({"decision": "deny", "code": "invalid_call", "rule": "",
      "message": "Malformed tool call: bad"})"));
}

// The text encodings for hot paths equal to_json(...) once parsed.
TEST(WireText, DecisionTextEqualsToJson) {
  std::vector<Decision> decisions;
  Decision allow;
  allow.verdict = Verdict::allow;
  allow.code = "allowed";
  allow.rule = "/tools/a~1b";
  allow.message = "Allowed.";
  decisions.push_back(allow);
  Decision limited = allow;
  limited.verdict = Verdict::deny;
  limited.code = "rate_limited";
  limited.message = "quote \" backslash \\ newline \n tab \t cr \r bs \b ff \f nul " + std::string(1, '\0') +
                    " ctl \x01\x1f del \x7f é 日本 😀 </script>";
  limited.retry_after_ms = 59000;
  decisions.push_back(limited);
  Decision approval = allow;
  approval.verdict = Verdict::approval_required;
  approval.code = "approval_required";
  approval.approval_id = std::string(64, 'a');
  decisions.push_back(approval);
  decisions.push_back(invalid_call("the tool name is missing"));
  for (const Decision& d : decisions) {
    const std::string text = decision_text(d);
    json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(parsed.is_discarded()) << text;
    EXPECT_EQ(parsed, to_json(d)) << text;
  }
  std::string out;
  append_json_string(out, std::string("a\x02\"", 3));
  EXPECT_EQ(out, "\"a\\u0002\\\"\"");
}

TEST(WireText, CountersTextEqualsToJson) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny",
    "all_tools": {"limits": [{"counter": "all\"\\", "window": "hour", "max": 9007199254740991, "scope": "global", "algorithm": "sliding"}]},
    "tools": {"t": {"limits": [{"window": "day", "max": 100000, "cost_from": "args.amount"},
                               {"window": "10s", "max": 3, "key": "args.who"}]}}})");
  ASSERT_TRUE(plan);
  for (const json& amount : {json(1234.5), json(0), json(1e300), json(0.1), json(7)}) {
    Evaluation e = evaluate(*plan, make_call("t", {{"amount", amount}, {"who", "é\n😀"}}, "g\"1", -12345));
    ASSERT_FALSE(e.decision);
    const std::string text = counters_text(e.pending.counters);
    json parsed = json::parse(text, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded()) << text;
    EXPECT_EQ(parsed, to_json(e.pending)["counters"]) << text;
  }
  EXPECT_EQ(counters_text({}), "[]");
}

TEST(WirePending, RoundTrip) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny",
    "all_tools": {"limits": [{"counter": "all", "window": "hour", "max": 1000, "scope": "global", "algorithm": "sliding"}]},
    "tools": {"create_refund": {"action": "require_approval", "approval": {"timeout": "5m"},
      "limits": [{"counter": "spend", "window": "day", "max": 100000, "cost_from": "args.amount", "on_deny": "Budget."},
                 {"window": "10s", "max": 3, "key": "args.charge"}]}}})");
  ASSERT_TRUE(plan);
  Evaluation e = evaluate(*plan, make_call("create_refund", {{"amount", 1234.5}, {"charge", "ch_1"}}, "support",
                                           kT0 + 12345));
  ASSERT_FALSE(e.decision);
  ASSERT_EQ(e.pending.counters.size(), 3u);
  ASSERT_TRUE(e.pending.approval);

  json wire = to_json(e.pending);
  EXPECT_EQ(wire["pending"], true);
  EXPECT_EQ(wire["tool"], "create_refund");
  EXPECT_EQ(wire["now"], kT0 + 12345);
  EXPECT_EQ(wire["allow_rule"], "/tools/create_refund");
  EXPECT_EQ(wire["approval"]["timeout_ms"], 300000);
  EXPECT_EQ(wire["approval"]["rule"], "/tools/create_refund/action");
  EXPECT_EQ(wire["counters"][0]["cost"], 1234.5);
  EXPECT_EQ(wire["counters"][0]["max"], 100000);
  EXPECT_TRUE(wire["counters"][0]["max"].is_number_integer());
  EXPECT_EQ(wire["counters"][0]["scope"], "grant");
  EXPECT_EQ(wire["counters"][0]["grant"], "support");
  EXPECT_EQ(wire["counters"][0]["bucket_start_ms"], kT0);
  EXPECT_EQ(wire["counters"][1]["window_ms"], 10000);
  EXPECT_EQ(wire["counters"][1]["bucket_start_ms"], kT0 + 10000);
  EXPECT_EQ(wire["counters"][2]["scope"], "global");
  EXPECT_EQ(wire["counters"][2]["grant"], "");
  EXPECT_EQ(wire["counters"][2]["algorithm"], "sliding");
  EXPECT_EQ(wire["limits"][0]["message"], "Budget.");
  EXPECT_EQ(wire["limits"][2]["counter"], 2);

  // The wire form survives a text round trip (as it does through a JS host).
  std::optional<PendingCall> back = read_pending(json::parse(wire.dump()));
  ASSERT_TRUE(back);
  EXPECT_EQ(to_json(*back), wire);
  EXPECT_EQ(back->counters[2].scope, Scope::global);
  EXPECT_EQ(back->counters[2].algorithm, Algorithm::sliding);
  EXPECT_EQ(back->counters[0].cost, 1234.5);
  EXPECT_EQ(back->approval->id, e.pending.approval->id);

  // And decides the same.
  for (bool approved : {false, true}) {
    for (double used : {0.0, 3.0, 99000.0}) {
      std::vector<CounterState> states(3, CounterState{used, used});
      Decision original = finish(e.pending, approved, states);
      Decision replay = finish(*back, approved, states);
      EXPECT_EQ(to_json(original), to_json(replay)) << approved << " " << used;
    }
  }
}

TEST(WirePending, WithoutApproval) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"run": {"rate_limit": "10/minute"}}})");
  Evaluation e = evaluate(*plan, make_call("run"));
  ASSERT_FALSE(e.decision);
  json wire = to_json(e.pending);
  EXPECT_FALSE(wire.contains("approval"));
  std::optional<PendingCall> back = read_pending(wire);
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->approval);
  EXPECT_EQ(to_json(*back), wire);
}

TEST(WirePending, RejectsMalformed) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"run": {"action": "require_approval",
      "rate_limit": "10/minute"}}})");
  Evaluation e = evaluate(*plan, make_call("run"));
  const json good = to_json(e.pending);
  ASSERT_TRUE(read_pending(good));
  EXPECT_FALSE(read_pending(json::array()));
  EXPECT_FALSE(read_pending(json("pending")));

  // Each edit makes it malformed.
  const char* edits[] = {
      R"([{"op": "remove", "path": "/now"}])",
      R"([{"op": "replace", "path": "/now", "value": "soon"}])",
      R"([{"op": "remove", "path": "/tool"}])",
      R"([{"op": "remove", "path": "/allow_rule"}])",
      R"([{"op": "remove", "path": "/counters"}])",
      R"([{"op": "replace", "path": "/counters", "value": {}}])",
      R"([{"op": "replace", "path": "/counters/0", "value": 1}])",
      R"([{"op": "remove", "path": "/counters/0/key"}])",
      R"([{"op": "remove", "path": "/counters/0/cost"}])",
      R"([{"op": "replace", "path": "/counters/0/max", "value": "10"}])",
      R"([{"op": "replace", "path": "/counters/0/window_ms", "value": 0}])",
      R"([{"op": "remove", "path": "/counters/0/bucket_start_ms"}])",
      R"([{"op": "replace", "path": "/counters/0/scope", "value": "everyone"}])",
      R"([{"op": "replace", "path": "/counters/0/algorithm", "value": "leaky"}])",
      R"([{"op": "remove", "path": "/limits"}])",
      R"([{"op": "replace", "path": "/limits/0/counter", "value": 1}])",
      R"([{"op": "replace", "path": "/limits/0/counter", "value": -1}])",
      R"([{"op": "remove", "path": "/limits/0/rule"}])",
      R"([{"op": "replace", "path": "/approval", "value": true}])",
      R"([{"op": "remove", "path": "/approval/id"}])",
      R"([{"op": "replace", "path": "/approval/timeout_ms", "value": null}])",
  };
  for (const char* edit : edits) {
    json changed = good.patch(json::parse(edit));
    EXPECT_FALSE(read_pending(changed)) << edit;
  }
}

TEST(WireStates, ReadStates) {
  auto states = read_states(json::parse(R"([{"current": 3, "previous": 1.5}, {"current": 0, "previous": 0}])"));
  ASSERT_TRUE(states);
  ASSERT_EQ(states->size(), 2u);
  EXPECT_EQ((*states)[0].current, 3);
  EXPECT_EQ((*states)[0].previous, 1.5);
  EXPECT_TRUE(read_states(json::array()));
  for (const char* bad : {"{}", "null", R"([1])", R"([{"current": 1}])", R"([{"previous": 1}])",
                          R"([{"current": -1, "previous": 0}])", R"([{"current": 0, "previous": -0.5}])",
                          R"([{"current": "1", "previous": 0}])", R"([{"current": 1, "previous": null}])",
                          R"([{"current": 1, "previous": 0}, []])"}) {
    EXPECT_FALSE(read_states(json::parse(bad))) << bad;
  }
}


TEST(WireReadTimestamp, RejectsImpossibleDatesAndOffsets) {
  EXPECT_FALSE(read_timestamp(json("2026-02-31T00:00:00Z")));
  EXPECT_FALSE(read_timestamp(json("2026-04-31")));
  EXPECT_FALSE(read_timestamp(json("2025-02-29")));
  EXPECT_EQ(read_timestamp(json("2024-02-29")), std::optional<std::int64_t>(1709164800000));  // leap year
  EXPECT_FALSE(read_timestamp(json("2026-01-01T00:00:00+24:00")));
  EXPECT_FALSE(read_timestamp(json("2026-01-01T00:00:00+01:60")));
  EXPECT_EQ(read_timestamp(json("2026-01-01T01:00:00+01:00")), std::optional<std::int64_t>(kT0));
}

TEST(WireReadCall, ToolNamesWithControlCharactersAreMalformed) {
  for (const char* text : {R"({"tool": "x\u0000y"})", R"({"tool": "run\n"})", R"({"tool": "a\u007f"})", R"({"tool": "\t"})"}) {
    CallRead read = read_call(text);
    EXPECT_FALSE(read.call) << text;
    EXPECT_NE(read.error.find("control characters"), std::string::npos) << text;
  }
  EXPECT_TRUE(read_call(R"({"tool": "get-sum"})").call);
  EXPECT_TRUE(read_call(R"({"tool": "réglages.lire"})").call);
}

}  // namespace
}  // namespace toolgate
