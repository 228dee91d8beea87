// Inputs the fuzzers (tests/fuzz) and the native-vs-WebAssembly differential
// test (tests/differential) found, kept as regression tests: each names the
// target that found it and what was wrong.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "json_reader.h"
#include "test_support.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using test::compile_ok;
using test::kT0;
using test::make_call;

// RFC 3629 well-formed UTF-8: whatever carries a message (JSON above all)
// must be able to hold it.
bool is_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > text.size()) return false;
    std::uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (std::size_t k = 1; k < n; ++k) {
      unsigned char d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// fuzz_policy, fuzz_evaluate: the JSON reader's syntax error quotes what it
// last read ("last read: '\"\xC4i'"), and that was the invalid UTF-8 it
// stopped at. The diagnostic (and a call's invalid_call message) then held
// invalid UTF-8: not representable in JSON, and to_json(...).dump() threw.
TEST(FuzzRegressions, SyntaxErrorsQuoteInputAsValidUtf8) {
  const std::string policy = "{\"version\":\"1\",\"tools\":{\"\xC4i\":{}}}";
  CompileResult compiled = compile_policy(policy);
  ASSERT_FALSE(compiled.ok());
  ASSERT_EQ(compiled.diagnostics.size(), 1u);
  EXPECT_EQ(compiled.diagnostics[0].code, "json_syntax");
  EXPECT_TRUE(is_utf8(compiled.diagnostics[0].message)) << compiled.diagnostics[0].message;
  EXPECT_NE(compiled.diagnostics[0].message.find("\xEF\xBF\xBD"), std::string::npos)
      << "the invalid byte is shown as U+FFFD: " << compiled.diagnostics[0].message;
  EXPECT_NO_THROW(to_json(compiled.diagnostics).dump());

  for (std::string call : {std::string("{\"tool\":\"run\",\"expect\":{\"rule\":\"/hide/\x98\x98\x98\"}}"),
                           std::string("{\"tool\":\"\xF0\x9F\x98\"}"), std::string("{\"tool\":\"\xED\xA0\x80\"}")}) {
    CallRead read = read_call(call);
    ASSERT_FALSE(read.call);
    Decision decision = invalid_call(read.error);
    EXPECT_TRUE(is_utf8(decision.message)) << decision.message;
    EXPECT_FALSE(json::parse(decision_text(decision), nullptr, false).is_discarded()) << decision_text(decision);
    EXPECT_NO_THROW(to_json(decision).dump());
  }
}

// fuzz_evaluate (and the differential generator's 'é' x 40 values): messages
// quote values shortened to 40 or 60 bytes, and the cut fell inside a
// multi-byte character, so a denial's message was invalid UTF-8. (Through
// WebAssembly the glue turned the stray byte into U+FFFD, hiding it.)
TEST(FuzzRegressions, ShortenedValuesInMessagesKeepWholeCharacters) {
  auto plan = compile_ok(R"({"version":"1","default":"deny","tools":{"a":{"require":[
      {"path":"args.x","op":"eq","value":"éééééééééééééééééééééééééééééééééééééééé"}]}}})");
  ASSERT_TRUE(plan);
  Decision required = test::decide(plan, make_call("a"));
  EXPECT_EQ(required.code, "requirement_failed");
  EXPECT_TRUE(is_utf8(required.message)) << required.message;
  EXPECT_EQ(required.message, "Requirement not met: args.x eq \"ééééééééééééééééééé....");

  Decision unknown = test::decide(plan, make_call(std::string(81, 'x') + "ééééééééééééééééééééééééééééééééééééééé"));
  EXPECT_EQ(unknown.code, "default_deny");
  EXPECT_TRUE(is_utf8(unknown.message)) << unknown.message;

  for (std::string emoji : {"😀", "é", "€"}) {
    std::string value;
    while (value.size() < 100) value += emoji;
    for (std::size_t prefix = 0; prefix < 4; ++prefix) {
      Decision decision = test::decide(plan, make_call(std::string(prefix, 'x') + value));
      EXPECT_TRUE(is_utf8(decision.message)) << decision.message;
    }
  }
}

// fuzz_wire: read_pending (the WebAssembly finish() input, which JS hosts may
// build) converted any JSON number to int64 for now, window_ms,
// bucket_start_ms and timeout_ms: 1e300 is undefined behaviour (UBSan:
// float-cast-overflow), and a `now` far outside its bucket made the sliding
// estimate negative, so finish() allowed a call whose counts were far over
// the limit. Pending calls now hold only what evaluate() can produce.
TEST(FuzzRegressions, ReadPendingRefusesNumbersEvaluateNeverWrites) {
  auto plan = compile_ok(R"({"version":"1","default":"deny","tools":{"run":{"action":"require_approval",
      "limits":[{"window":"minute","max":1,"algorithm":"sliding"}]}}})");
  ASSERT_TRUE(plan);
  Evaluation e = evaluate(*plan, make_call("run", json::object(), "alice", kT0 + 30000));
  ASSERT_FALSE(e.decision);
  const json good = to_json(e.pending);
  ASSERT_TRUE(read_pending(good));

  const char* edits[] = {
      R"([{"op": "replace", "path": "/now", "value": 1e300}])",
      R"([{"op": "replace", "path": "/now", "value": -1e300}])",
      R"([{"op": "replace", "path": "/now", "value": 8640000000000001}])",
      R"([{"op": "replace", "path": "/now", "value": 1767225630000.5}])",
      R"([{"op": "replace", "path": "/counters/0/window_ms", "value": 1e300}])",
      R"([{"op": "replace", "path": "/counters/0/window_ms", "value": 60000.5}])",
      R"([{"op": "replace", "path": "/counters/0/bucket_start_ms", "value": -1e300}])",
      R"([{"op": "replace", "path": "/counters/0/bucket_start_ms", "value": 1767225660000}])",
      R"([{"op": "replace", "path": "/counters/0/bucket_start_ms", "value": 1767225540000}])",
      R"([{"op": "replace", "path": "/counters/0/cost", "value": -1}])",
      R"([{"op": "replace", "path": "/counters/0/max", "value": -1}])",
      R"([{"op": "replace", "path": "/approval/timeout_ms", "value": 1e300}])",
      R"([{"op": "replace", "path": "/approval/timeout_ms", "value": -1}])",
  };
  for (const char* edit : edits) {
    json changed = good.patch(json::parse(edit));
    EXPECT_FALSE(read_pending(changed)) << edit;
  }

  // The case that allowed: now 9e15 ms away from its bucket, previous count 1e300.
  json far = good.patch(json::parse(R"([{"op": "replace", "path": "/now", "value": 9000000000000000},
      {"op": "replace", "path": "/counters/0/bucket_start_ms", "value": -9000000000000000}])"));
  EXPECT_FALSE(read_pending(far));

  // Extreme but real: the longest window ("999999999d") and the Date range's ends.
  auto wide = compile_ok(R"({"version":"1","default":"deny","tools":{"run":{"action":"require_approval",
      "approval":{"timeout":"999999999d"},"limits":[{"window":"999999999d","max":1}]}}})");
  ASSERT_TRUE(wide);
  for (std::int64_t now : {-8640000000000000LL, 0LL, 8640000000000000LL}) {
    Evaluation edge = evaluate(*wide, make_call("run", json::object(), "alice", now));
    ASSERT_FALSE(edge.decision);
    auto back = read_pending(json::parse(to_json(edge.pending).dump()));
    ASSERT_TRUE(back) << to_json(edge.pending).dump();
    EXPECT_EQ(to_json(*back), to_json(edge.pending));
  }
}

// fuzz_wire (scripts/fuzz.sh 240, after 1.1 M executions): read_pending took
// any strings back, and finish() copies some of them into the decision as they
// stand: {"approval": {"message": ""}} came back as an approval_required
// decision with an empty message (and an empty limit message as a rate_limited
// one; an empty rule, an approval id that is no SHA-256 likewise). A pending
// call read back now holds only text evaluate() can write: messages non-empty,
// rules JSON Pointers, approval ids 64 lowercase hex, tool names as read_call
// takes them, counter keys "tg1:" with the grant their scope says, limits
// naming a counter by a whole index with a max >= 1, all valid UTF-8.
TEST(FuzzRegressions, ReadPendingRefusesTextEvaluateNeverWrites) {
  auto plan = compile_ok(R"({"version":"1","default":"deny","tools":{"run":{"action":"require_approval",
      "limits":[{"window":"minute","max":2}]}}})");
  ASSERT_TRUE(plan);
  Evaluation e = evaluate(*plan, make_call("run", json::object(), "alice", kT0));
  ASSERT_FALSE(e.decision);
  const json good = to_json(e.pending);
  ASSERT_TRUE(read_pending(good));

  // The input fuzz_wire stopped on, reduced: an approval with nothing to say.
  json found = json::parse(R"({"now":0,"allow_rule":"/tools/run","tool":"run","counters":[],"limits":[],
      "approval":{"id":"0000000000000000000000000000000000000000000000000000000000000000","timeout_ms":0,
                  "rule":"/tools/run/action","message":""}})");
  EXPECT_FALSE(read_pending(found));

  const char* edits[] = {
      R"([{"op": "replace", "path": "/approval/message", "value": ""}])",
      R"([{"op": "replace", "path": "/approval/rule", "value": ""}])",
      R"([{"op": "replace", "path": "/approval/rule", "value": "tools/run/action"}])",
      R"([{"op": "replace", "path": "/approval/id", "value": ""}])",
      R"([{"op": "replace", "path": "/approval/id", "value": "x"}])",
      R"([{"op": "replace", "path": "/approval/id",
           "value": "ABCDEF0000000000000000000000000000000000000000000000000000000000"}])",
      R"([{"op": "replace", "path": "/limits/0/message", "value": ""}])",
      R"([{"op": "replace", "path": "/limits/0/rule", "value": ""}])",
      R"([{"op": "replace", "path": "/limits/0/counter", "value": 0.5}])",
      R"([{"op": "replace", "path": "/limits/0/max", "value": 0}])",
      R"([{"op": "replace", "path": "/limits/0/max", "value": 0.5}])",
      R"([{"op": "replace", "path": "/allow_rule", "value": ""}])",
      R"([{"op": "replace", "path": "/tool", "value": ""}])",
      R"([{"op": "replace", "path": "/tool", "value": "r\u0000un"}])",
      R"([{"op": "replace", "path": "/counters/0/key", "value": ""}])",
      R"([{"op": "replace", "path": "/counters/0/key", "value": "mine"}])",
      R"([{"op": "replace", "path": "/counters/0/grant", "value": ""}])",
      R"([{"op": "replace", "path": "/counters/0/scope", "value": "global"}])",
  };
  for (const char* edit : edits) {
    json changed = good.patch(json::parse(edit));
    EXPECT_FALSE(read_pending(changed)) << edit;
  }

  // Invalid UTF-8 (a C++ host can build such a value; JSON text cannot carry it).
  json bad_utf8 = good;
  bad_utf8["approval"]["message"] = std::string("needs approval \xC3");
  EXPECT_FALSE(read_pending(bad_utf8));

  // What evaluate() writes still reads back, and every decision finish() makes
  // from it says something.
  auto back = read_pending(json::parse(good.dump()));
  ASSERT_TRUE(back);
  for (bool approved : {false, true}) {
    for (double used : {0.0, 2.0}) {
      std::vector<CounterState> states{{used, 0}};
      Decision decision = finish(*back, approved, states);
      EXPECT_FALSE(decision.message.empty()) << decision.code;
      EXPECT_FALSE(decision.rule.empty()) << decision.code;
      EXPECT_EQ(to_json(decision), to_json(finish(e.pending, approved, states)));
    }
  }
}

// fuzz_evaluate harness (seen in review, then confirmed with it): a spend
// limit's cost_from of 1e300 reached number_json(), which converted it to
// int64 before checking the range: undefined behaviour (UBSan
// float-cast-overflow) in to_json(pending) and counters_text(). The
// sanitizer build of this test catches it.
TEST(FuzzRegressions, HugeCostFromIsWrittenWithoutOverflow) {
  auto plan = compile_ok(R"({"version":"1","default":"deny","tools":{"spend":{"limits":[
      {"window":"day","max":100,"cost_from":"args.amount"}]}}})");
  ASSERT_TRUE(plan);
  for (double amount : {1e300, 9.3e18, -0.0, 9007199254740993.0, 1.5}) {
    Evaluation e = evaluate(*plan, make_call("spend", json{{"amount", amount}}));
    if (amount < 0) amount = 0;  // -0 is a non-negative cost
    ASSERT_FALSE(e.decision) << amount;
    json wire = to_json(e.pending);
    EXPECT_EQ(wire["counters"][0]["cost"].get<double>(), amount);
    EXPECT_EQ(json::parse(counters_text(e.pending.counters)), wire["counters"]);
    EXPECT_EQ(test::decide(plan, make_call("spend", json{{"amount", amount}})).code, amount <= 100 ? "allowed" : "rate_limited");
  }
}

// differential (seed 1, case 1164): a sliding limit over "999999999d"
// (8.64e16 ms, a window the language accepts) gave retry_after_ms
// 172546597526397984, beyond 2^53: the native host printed it exactly, the
// JavaScript API read it as 172546597526397980. Waits are capped at 2^53 - 1,
// where every JSON reader agrees.
TEST(FuzzRegressions, RetryAfterStaysWhereJavaScriptNumbersAreExact) {
  for (const char* algorithm : {"sliding", "fixed"}) {
    test::Session session(std::string(R"({"version":"1","default":"deny","tools":{"run":{"limits":[
        {"window":"999999999d","max":2,"cost":2,"algorithm":")") + algorithm + R"("}]}}})");
    EXPECT_EQ(session.call("run").code, "allowed");
    Decision denied = session.call("run", json::object(), "alice", kT0 + 1);
    ASSERT_EQ(denied.code, "rate_limited") << algorithm;
    ASSERT_TRUE(denied.retry_after_ms);
    EXPECT_LE(*denied.retry_after_ms, 9007199254740991) << algorithm;
    EXPECT_GE(*denied.retry_after_ms, 1);
  }
}

}  // namespace
}  // namespace toolgate
