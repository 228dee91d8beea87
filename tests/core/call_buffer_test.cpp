// The binary call form (call_buffer.h): it must read exactly as the same call
// in JSON text does, and any malformed buffer must be an invalid_call with a
// reason, never a crash.
#include "call_buffer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "json_reader.h"
#include "toolgate.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using Bytes = std::vector<std::uint8_t>;

Bytes encode(const std::string& text) {
  JsonReadOptions options;
  options.record_positions = false;
  options.max_depth = 100000;  // the nesting test encodes past the call limit
  JsonReadResult read = read_json(text, options);
  EXPECT_TRUE(read.ok()) << text;
  auto bytes = encode_call_buffer(read.value);
  EXPECT_TRUE(bytes) << text;
  return bytes ? *bytes : Bytes{};
}

CallReadOptions options_at(std::int64_t now) {
  CallReadOptions options;
  options.default_now_ms = now;
  return options;
}

void expect_same_as_text(const std::string& text) {
  SCOPED_TRACE(text);
  CallRead from_text = read_call(text, options_at(42));
  CallRead from_buffer = read_call_buffer(encode(text), options_at(42));
  ASSERT_EQ(from_text.call.has_value(), from_buffer.call.has_value()) << from_text.error << " | " << from_buffer.error;
  EXPECT_EQ(from_text.error, from_buffer.error);
  if (!from_text.call) return;
  EXPECT_EQ(from_text.call->tool, from_buffer.call->tool);
  // Same value and same number types: JSON text reads 5 as unsigned, -5 as
  // signed, 5.5 as float, and the messages and hashes depend on the type.
  EXPECT_EQ(from_text.call->arguments.dump(), from_buffer.call->arguments.dump());
  EXPECT_EQ(from_text.call->arguments, from_buffer.call->arguments);
  EXPECT_EQ(from_text.call->grant.id, from_buffer.call->grant.id);
  EXPECT_EQ(from_text.call->grant.attributes.dump(), from_buffer.call->grant.attributes.dump());
  EXPECT_EQ(from_text.call->now_ms, from_buffer.call->now_ms);
  EXPECT_EQ(from_text.expect.has_value(), from_buffer.expect.has_value());
}

TEST(CallBuffer, ReadsAsJsonTextDoes) {
  for (const char* text : {
           R"({"tool": "run"})",
           R"({"tool": "create_refund", "arguments": {"amount": 120, "currency": "usd", "charge": "ch_123", "reason": "duplicate", "notify": true}, "grant": {"id": "alice", "role": "support"}, "now": 1767225600000})",
           R"({"tool": "t", "arguments": {"n": -5, "f": 5.5, "z": 0, "big": 9007199254740991, "neg": -9007199254740991, "e": 1e21, "tiny": 5e-324}})",
           R"({"tool": "t", "arguments": {"a": [1, "x", null, false, [], {}], "o": {"k": {"k": {"k": [[[]]]}}}}})",
           R"({"tool": "t", "arguments": {"é": "😀", "": "", "nul": "a\u0000b"}, "grant": "bob"})",
           R"({"tool": "t", "now": "2026-01-01T00:00:00Z"})",
           R"({"tool": "t", "expect": {"decision": "allow"}})",
           // Malformed calls give the same reason either way.
           R"({"tool": ""})",
           R"({"tool": "a\u0001b"})",
           R"({"tool": 5})",
           R"({"tool": "t", "arguments": []})",
           R"({"tool": "t", "grant": {"role": "x"}})",
           R"({"tool": "t", "now": "yesterday"})",
           R"({"tool": "t", "extra": 1})",
           R"(["tool"])",
           R"("run")",
           R"(null)",
       }) {
    expect_same_as_text(text);
  }
}

TEST(CallBuffer, UnsafeIntegersHaveNoBinaryForm) {
  EXPECT_FALSE(encode_call_buffer(json::parse(R"({"n": 9007199254740992})")));
  EXPECT_FALSE(encode_call_buffer(json::parse(R"({"n": -9007199254740992})")));
  EXPECT_FALSE(encode_call_buffer(json::parse(R"({"n": 18446744073709551615})")));
  EXPECT_TRUE(encode_call_buffer(json::parse(R"({"n": 9007199254740991})")));
}

TEST(CallBuffer, EveryTruncationIsAnInvalidCall) {
  Bytes whole = encode(R"({"tool": "run", "arguments": {"a": [1, 2.5, "x", null, true], "b": {"c": "é"}}, "grant": "g", "now": 5})");
  ASSERT_TRUE(read_call_buffer(whole).call);
  for (std::size_t length = 0; length < whole.size(); ++length) {
    CallRead read = read_call_buffer(std::span<const std::uint8_t>(whole.data(), length));
    EXPECT_FALSE(read.call) << length;
    EXPECT_FALSE(read.error.empty()) << length;
  }
  Bytes longer = whole;
  longer.push_back(0);
  CallRead trailing = read_call_buffer(longer);
  EXPECT_FALSE(trailing.call);
  EXPECT_NE(trailing.error.find("bytes after the call"), std::string::npos) << trailing.error;
}

TEST(CallBuffer, RefusesWhatJsonTextCouldNotHold) {
  // {"tool": <string with bytes>}
  auto with_tool_bytes = [](Bytes tool) {
    Bytes out = {7, 1, 0, 0, 0, 4, 0, 0, 0, 't', 'o', 'o', 'l', 5};
    Bytes length = {static_cast<std::uint8_t>(tool.size()), 0, 0, 0};
    out.insert(out.end(), length.begin(), length.end());
    out.insert(out.end(), tool.begin(), tool.end());
    return out;
  };
  ASSERT_TRUE(read_call_buffer(with_tool_bytes({'r', 'u', 'n'})).call);
  for (Bytes bad : {Bytes{0xFF}, Bytes{0xC3}, Bytes{0xED, 0xA0, 0x80} /* a surrogate */, Bytes{0xC0, 0x80} /* overlong */,
                    Bytes{0xF4, 0x90, 0x80, 0x80} /* above U+10FFFF */}) {
    CallRead read = read_call_buffer(with_tool_bytes(bad));
    EXPECT_FALSE(read.call);
    EXPECT_NE(read.error.find("not UTF-8"), std::string::npos) << read.error;
  }
  // A repeated key, which a JS object cannot hold and JSON text must not smuggle.
  Bytes repeated = {7, 2, 0, 0, 0, 4, 0, 0, 0, 't', 'o', 'o', 'l', 5, 1, 0, 0, 0, 'a',
                    4, 0, 0, 0, 't', 'o', 'o', 'l', 5, 1, 0, 0, 0, 'b'};
  CallRead read = read_call_buffer(repeated);
  EXPECT_FALSE(read.call);
  EXPECT_NE(read.error.find("repeats a key"), std::string::npos) << read.error;
  // Non-finite numbers, unsafe "integers", unknown tags, counts that lie.
  for (Bytes bad : {
           Bytes{4, 0, 0, 0, 0, 0, 0, 0xF0, 0x7F},          // +Infinity
           Bytes{3, 0, 0, 0, 0, 0, 0, 0x40, 0x43},          // 2^53 as an "integer"
           Bytes{3, 0, 0, 0, 0, 0, 0, 0xE0, 0x3F},          // 0.5 as an "integer"
           Bytes{9},                                        // no such tag
           Bytes{6, 0xFF, 0xFF, 0xFF, 0xFF},                // an array of 2^32 - 1 elements in 5 bytes
           Bytes{7, 0xFF, 0xFF, 0xFF, 0x7F},                // the same for an object
           Bytes{5, 0xFF, 0xFF, 0xFF, 0xFF, 'a'},           // a string longer than the buffer
       }) {
    CallRead bad_read = read_call_buffer(bad);
    EXPECT_FALSE(bad_read.call);
    EXPECT_FALSE(bad_read.error.empty());
  }
}

TEST(CallBuffer, NestingLimitMatchesTheTextReader) {
  std::string text = R"({"tool": "t", "arguments": {"a": )";
  for (int i = 0; i < 300; ++i) text += "[";
  for (int i = 0; i < 300; ++i) text += "]";
  text += "}}";
  CallRead from_text = read_call(text);
  CallRead from_buffer = read_call_buffer(encode(text));
  EXPECT_FALSE(from_text.call);
  EXPECT_FALSE(from_buffer.call);
  EXPECT_EQ(from_text.error, from_buffer.error);
}

// Decoding only what the policy reads must never change a decision.
TEST(CallBuffer, ReadingOnlyWhatThePolicyUsesDecidesTheSame) {
  auto compiled = compile_policy(R"({
    "version": "1", "default": "allow",
    "hide": ["secret_*"],
    "all_tools": {"deny_if": [{"conditions": [{"path": "args.force", "op": "eq", "value": true}]}]},
    "tools": {
      "refund": {"require": [{"path": "args.currency", "op": "in", "value": ["usd"]}],
                 "deny_if": [{"conditions": [{"path": "args.amount.value", "op": "gt", "value": 500}]}],
                 "limits": [{"window": "hour", "max": 1000, "cost_from": "args.cost", "key": "args.0"}]},
      "approve": {"action": "require_approval"},
      "schema": {"args": {"type": "object", "additionalProperties": false}},
      "denied": {"action": "deny"},
      "glob_*": {"deny_if": [{"conditions": [{"path": "args.path", "op": "starts_with", "value": "/etc"}]}]}
    }})");
  ASSERT_TRUE(compiled.plan);
  const Plan& plan = *compiled.plan;
  EXPECT_EQ(plan.argument_use("refund").keys, (std::vector<std::string>{"0", "amount", "cost", "currency", "force"}));
  EXPECT_TRUE(plan.argument_use("approve").all);
  EXPECT_TRUE(plan.argument_use("schema").all);
  EXPECT_TRUE(plan.argument_use("denied").keys.empty());
  EXPECT_TRUE(plan.argument_use("secret_x").keys.empty());
  EXPECT_EQ(plan.argument_use("glob_a").keys, (std::vector<std::string>{"force", "path"}));
  EXPECT_EQ(plan.argument_use("unlisted").keys, (std::vector<std::string>{"force"}));

  const std::string arguments =
      R"({"amount": {"value": 900}, "currency": "usd", "cost": 3, "0": "k", "force": false, "path": "/etc/x",
          "blob": ")" + std::string(10000, 'x') + R"(", "nested": {"deep": [1, 2, {"x": null}]}, "extra": 1.5})";
  for (const char* tool : {"refund", "approve", "schema", "denied", "secret_x", "glob_a", "unlisted"}) {
    for (const std::string& args : {arguments, std::string(R"({"amount": {"value": 10}, "currency": "usd", "cost": 1, "0": "k"})"),
                                     std::string(R"({"force": true})"), std::string("{}")}) {
      std::string text = std::string(R"({"tool": ")") + tool + R"(", "arguments": )" + args + R"(, "grant": "g", "now": 5})";
      SCOPED_TRACE(text.substr(0, 200));
      CallRead whole = read_call_buffer(encode(text));
      CallRead filtered = read_call_buffer(encode(text), {}, plan);
      ASSERT_TRUE(whole.call && filtered.call);
      EXPECT_FALSE(filtered.call->arguments.contains("blob") && !plan.argument_use(tool).all);
      Evaluation a = evaluate(plan, *whole.call);
      Evaluation b = evaluate(plan, *filtered.call);
      ASSERT_EQ(a.decision.has_value(), b.decision.has_value());
      if (a.decision) {
        EXPECT_EQ(to_json(*a.decision), to_json(*b.decision));
      } else {
        EXPECT_EQ(to_json(a.pending), to_json(b.pending));
      }
    }
  }
  // A call whose tool is not a string is decoded whole: the same reason as text.
  CallRead odd = read_call_buffer(encode(R"({"tool": 5, "arguments": {"blob": "x"}})"), {}, plan);
  EXPECT_EQ(odd.error, read_call(R"({"tool": 5, "arguments": {"blob": "x"}})").error);
}

}  // namespace
}  // namespace toolgate
